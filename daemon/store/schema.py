"""The state database's schema: versioned migrations, and the pragmas of its connection.

Migrations are appended, never edited once shipped; a database newer than this code is refused.
Timestamps are ISO-8601 UTC text with microseconds, so they sort as text. Tables, and the
repository that owns each:

- `check_results` (results): one row per CheckResult; pruned after `daemon.retention`.
- `check_rollups`, `rollup_marks` (rollups): per-check minute and hour aggregates of the
  results, kept for `daemon.minute_rollups` / `daemon.hour_rollups`, and up to when each size
  is rolled up (bucket starts are POSIX seconds, not text).
- `engine_state`, `check_states`, `incidents`, `incident_events`, `investigations`
  (incidents): the engine's state as JSON (one row, without its per-check part), each check's
  engine state (one row a check, rewritten only when it changed), each incident and its
  events, each root-cause analysis.
- `outbox` (outbox): messages to deliver, per target; `claimed_by`/`claimed_until` hold the
  lease of the process delivering a row, so two processes never send it twice.
- `ledger`, `budget_reservations`, `budget_notices`, `routing_overrides` (ledger): model calls,
  budget holds of calls in flight, the once-per-period notices, runtime routes.
- `sweep_runs`, `sweep_findings` (sweeps): each sweep run and its findings.
- `acknowledgements`, `silences` (controls): what operators told it — written by the CLI
  while a daemon runs, read by the daemon every cycle (it never owns these rows).
- `heartbeat_pings`, `heartbeat_tokens` (heartbeats): jobs checking in, and the SHA-256 of
  each generated ping token (never the token itself).
- `leader_lease` (lease): which process of several sharing a PostgreSQL database is active,
  until when, and its fencing epoch.
- `cluster_members` (members): the nodes of a sharded cluster, their location and heartbeat.
- `baseline_snapshots` (snapshots): each check's baseline windows as bytes and the newest
  result they cover, so a restart restores them instead of re-reading every check's results.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from daemon.errors import StateError
from daemon.store.capabilities import MIGRATION as _V12
from daemon.store.capabilities import MIGRATION_BASE_URL as _V13
from daemon.store.members import MIGRATION as _V14
from daemon.store.rollups import MIGRATION as _V15
from daemon.store.snapshots import MIGRATION as _V16

BUSY_TIMEOUT_MS = 5000

_V1 = """
CREATE TABLE check_results (id INTEGER PRIMARY KEY AUTOINCREMENT, check_name TEXT NOT NULL,
    status TEXT NOT NULL, started_at TEXT NOT NULL, latency_ms REAL, subject TEXT,
    evidence TEXT NOT NULL, values_json TEXT NOT NULL, labels_json TEXT NOT NULL);
CREATE INDEX check_results_by_check ON check_results (check_name, started_at);
CREATE INDEX check_results_by_time ON check_results (started_at);
CREATE TABLE engine_state (id INTEGER PRIMARY KEY CHECK (id = 1), data TEXT NOT NULL,
    updated_at TEXT NOT NULL);
CREATE TABLE incidents (id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL,
    check_name TEXT NOT NULL, severity TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'resolved')), opened_at TEXT NOT NULL,
    resolved_at TEXT, data TEXT NOT NULL);
CREATE INDEX incidents_by_status ON incidents (status, opened_at);
CREATE TABLE incident_events (id INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents (id), kind TEXT NOT NULL,
    at TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX incident_events_by_incident ON incident_events (incident_id, id);
CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id INTEGER REFERENCES incident_events (id), target TEXT NOT NULL,
    title TEXT NOT NULL, body TEXT NOT NULL, notify_type TEXT NOT NULL,
    created_at TEXT NOT NULL, next_attempt_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    delivered_at TEXT, updated_at TEXT NOT NULL);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
"""
_V2 = """
CREATE TABLE ledger (id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, task TEXT NOT NULL,
    incident_id INTEGER, sweep_id TEXT, provider TEXT NOT NULL, model TEXT NOT NULL,
    host TEXT NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL, cost_usd TEXT,
    latency_ms REAL, outcome TEXT NOT NULL, request_bytes INTEGER NOT NULL,
    key_source TEXT NOT NULL, detail TEXT NOT NULL, local INTEGER NOT NULL);
CREATE INDEX ledger_by_time ON ledger (ts);
CREATE TABLE budget_reservations (id INTEGER PRIMARY KEY AUTOINCREMENT,
    provider TEXT NOT NULL, amount_usd TEXT NOT NULL, created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL);
CREATE TABLE budget_notices (period_key TEXT PRIMARY KEY, claimed_at TEXT NOT NULL);
CREATE TABLE routing_overrides (task TEXT PRIMARY KEY, refs_json TEXT NOT NULL,
    updated_at TEXT NOT NULL);
"""
_V3 = """
ALTER TABLE outbox ADD COLUMN payload TEXT;
"""
_V4 = """
CREATE TABLE investigations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    at TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX investigations_incident ON investigations (incident_id, id);
"""
_V5 = """
CREATE TABLE sweep_runs (id TEXT PRIMARY KEY, sweep TEXT NOT NULL, kind TEXT NOT NULL,
    started_at TEXT NOT NULL, finished_at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'partial', 'failed')),
    notified INTEGER NOT NULL, data TEXT NOT NULL);
CREATE INDEX sweep_runs_by_sweep ON sweep_runs (sweep, started_at);
CREATE TABLE sweep_findings (run_id TEXT NOT NULL REFERENCES sweep_runs (id),
    finding_id TEXT NOT NULL, rule TEXT NOT NULL, severity TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('new', 'open', 'resolved', 'unknown')),
    muted INTEGER NOT NULL, first_seen TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (run_id, finding_id));
ALTER TABLE outbox ADD COLUMN attach TEXT;
"""
_V6 = """
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until TEXT;
"""
_V7 = """
ALTER TABLE ledger ADD COLUMN reserved_usd TEXT;
"""
_V8 = """
CREATE TABLE acknowledgements (incident_id INTEGER PRIMARY KEY REFERENCES incidents (id),
    by_whom TEXT NOT NULL, at TEXT NOT NULL, note TEXT NOT NULL);
CREATE TABLE silences (id INTEGER PRIMARY KEY AUTOINCREMENT,
    matcher TEXT NOT NULL CHECK (matcher IN ('check', 'tag', 'match')), pattern TEXT NOT NULL,
    starts_at TEXT NOT NULL, ends_at TEXT NOT NULL, reason TEXT NOT NULL,
    created_by TEXT NOT NULL, created_at TEXT NOT NULL, expired_at TEXT);
CREATE INDEX silences_by_end ON silences (ends_at);
"""
_V9 = """
CREATE TABLE heartbeat_pings (id INTEGER PRIMARY KEY AUTOINCREMENT, check_name TEXT NOT NULL,
    at TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('start', 'success', 'fail')),
    exit_code INTEGER, message TEXT NOT NULL, source TEXT NOT NULL);
CREATE INDEX heartbeat_pings_by_check ON heartbeat_pings (check_name, id);
CREATE TABLE heartbeat_tokens (check_name TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL);
"""
_V10 = """
CREATE TABLE check_states (check_name TEXT PRIMARY KEY, data TEXT NOT NULL);
"""
_V11 = """
CREATE TABLE leader_lease (id INTEGER PRIMARY KEY CHECK (id = 1), holder TEXT NOT NULL,
    node TEXT NOT NULL, epoch INTEGER NOT NULL, acquired_at TEXT NOT NULL,
    renewed_at TEXT NOT NULL, expires_at TEXT NOT NULL);
"""
_MIGRATIONS: tuple[str, ...] = (
    _V1,
    _V2,
    _V3,
    _V4,
    _V5,
    _V6,
    _V7,
    _V8,
    _V9,
    _V10,
    _V11,
    _V12,
    _V13,
    _V14,
    _V15,
    _V16,
)
"""`_MIGRATIONS[n]` takes the schema from version n to n + 1: `;`-separated statements, run in
one transaction together with the `user_version` bump. Append; never edit a shipped one."""
SCHEMA_VERSION = len(_MIGRATIONS)


def configure(conn: sqlite3.Connection) -> None:
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # takes effect only on a new file
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"cannot switch to WAL journal mode (got {mode!r})")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("BEGIN IMMEDIATE")  # re-read the version under the write lock
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StateError(
                f"{path} has schema version {version}, but this watchkeeper knows only up to "
                f"{SCHEMA_VERSION}: it was written by a newer release; upgrade watchkeeper or "
                "point daemon.state_dir elsewhere"
            )
        for number in range(version, SCHEMA_VERSION):
            for statement in _MIGRATIONS[number].split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
