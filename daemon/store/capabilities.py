"""What each provider+model at each server was found to support: the structured-output,
tool-calling and thinking modes that worked (or were refused), so the daemon does not pay a
refused attempt on every call. An entry older than its re-probe age is ignored and the
strongest mode tried again.

Keyed by provider, base URL and model: two servers serving the same model name (a llama.cpp
box and a vLLM box, or one provider pointed elsewhere) differ in what they accept. A row
remembered before the base URL was kept (`base_url = ''`) still applies to any server until
that server's own outcome is remembered.

Owns `model_capabilities` (migrations `MIGRATION` and `MIGRATION_BASE_URL` below, appended in
`schema`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from daemon.util.time import db_ts

if TYPE_CHECKING:  # `schema` imports this module's MIGRATION; `database` imports `schema`
    from daemon.store.database import Database

MIGRATION = """
CREATE TABLE model_capabilities (provider TEXT NOT NULL, model TEXT NOT NULL,
    feature TEXT NOT NULL CHECK (feature IN ('structured', 'tools')), mode TEXT NOT NULL,
    checked_at TEXT NOT NULL, detail TEXT NOT NULL,
    PRIMARY KEY (provider, model, feature));
"""
"""The schema change that adds this repository's table (one migration of its own)."""

MIGRATION_BASE_URL = """
CREATE TABLE model_capabilities_next (provider TEXT NOT NULL, base_url TEXT NOT NULL,
    model TEXT NOT NULL,
    feature TEXT NOT NULL CHECK (feature IN ('structured', 'tools', 'think')),
    mode TEXT NOT NULL, checked_at TEXT NOT NULL, detail TEXT NOT NULL,
    PRIMARY KEY (provider, base_url, model, feature));
INSERT INTO model_capabilities_next (provider, base_url, model, feature, mode, checked_at,
    detail) SELECT provider, '', model, feature, mode, checked_at, detail
    FROM model_capabilities;
DROP TABLE model_capabilities;
ALTER TABLE model_capabilities_next RENAME TO model_capabilities;
"""
"""The table keyed by the server too (a primary key cannot be altered in SQLite: the table is
rebuilt); old rows keep `base_url = ''`, read as "any server". Adds the `think` feature."""

REPROBE_AFTER = timedelta(days=1)
"""After this long a remembered step-down is forgotten: a server upgrade may have added the
stronger mode, and one refused attempt a day is cheap."""


@dataclass(frozen=True)
class Capability:
    provider: str
    model: str
    feature: str
    """"structured", "tools" or "think"."""
    mode: str
    """The mode that worked: "schema" / "json" / "prompt", or "native" / "none"."""
    checked_at: datetime
    detail: str = ""
    base_url: str = ""
    """The server it was found at ('': remembered before servers were told apart)."""
    """What was refused on the way down, e.g. "structured:schema"."""


class Capabilities:
    def __init__(self, db: Database) -> None:
        self.db = db

    def remember(
        self,
        provider: str,
        model: str,
        feature: str,
        mode: str,
        *,
        detail: str = "",
        base_url: str = "",
        now: datetime | None = None,
    ) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO model_capabilities (provider, base_url, model, feature, mode, "
                "checked_at, detail) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (provider, "
                "base_url, model, feature) DO UPDATE SET mode = excluded.mode, "
                "checked_at = excluded.checked_at, detail = excluded.detail",
                (
                    provider,
                    base_url,
                    model,
                    feature,
                    mode,
                    db_ts(now or datetime.now(UTC)),
                    detail[:300],
                ),
            )

    def mode(
        self,
        provider: str,
        model: str,
        feature: str,
        *,
        base_url: str = "",
        now: datetime,
        reprobe_after: timedelta = REPROBE_AFTER,
    ) -> str | None:
        """The remembered mode at `base_url` (else one remembered before servers were told
        apart), or None when unknown or due for a re-probe."""
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT mode, checked_at, base_url FROM model_capabilities WHERE provider = ? "
                "AND model = ? AND feature = ? AND base_url IN (?, '')",
                (provider, model, feature, base_url),
            ).fetchall()
        row = max(rows, key=lambda r: r[2] == base_url, default=None)
        if row is None or datetime.fromisoformat(row[1]) < now - reprobe_after:
            return None
        return str(row[0])

    def all(self) -> list[Capability]:
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT provider, model, feature, mode, checked_at, detail, base_url FROM "
                "model_capabilities ORDER BY provider, model, base_url, feature"
            ).fetchall()
        return [
            Capability(r[0], r[1], r[2], r[3], datetime.fromisoformat(r[4]), r[5], r[6])
            for r in rows
        ]
