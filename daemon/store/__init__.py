"""The state: one SQLite database (`database`), or one PostgreSQL database (`postgres`)
shared by several processes, and a repository per concern over it —
results, incidents, outbox, ledger (+ routes), sweeps, controls (acknowledgements and
silences), heartbeats, baseline snapshots — plus the one-daemon-per-directory lock and
`backup`, a consistent copy taken while the daemon runs.

Imports only `daemon.models`, `daemon.errors` and `daemon.util`; never the network, never a
secret value. `Store` is the face: `Store.open(state_dir)`, then `store.incidents.get(42)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.store.capabilities import Capabilities
from daemon.store.controls import Controls
from daemon.store.database import Database
from daemon.store.heartbeats import Heartbeats
from daemon.store.incidents import Incidents
from daemon.store.lease import LeaderLease
from daemon.store.ledger import Ledger, Routes
from daemon.store.members import Members
from daemon.store.outbox import Outbox
from daemon.store.results import Results
from daemon.store.rollups import HOUR, MINUTE, Rollups, floor_to
from daemon.store.snapshots import Snapshots
from daemon.store.sweeps import Sweeps


class Store:
    """The repositories over one open database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.results = Results(db)
        self.rollups = Rollups(db)
        self.incidents = Incidents(db)
        self.outbox = Outbox(db)
        self.ledger = Ledger(db)
        self.routes = Routes(db)
        self.sweeps = Sweeps(db)
        self.controls = Controls(db)
        self.heartbeats = Heartbeats(db)
        self.lease = LeaderLease(db)
        self.capabilities = Capabilities(db)
        self.members = Members(db)
        self.snapshots = Snapshots(db)

    @classmethod
    def open(cls, state_dir: Path, url: str | None = None, password: str | None = None) -> Store:
        """Create (0700/0600) or open and migrate the SQLite database in `state_dir`; or,
        given a `postgresql://` `url` (and its password apart), connect to that database and
        migrate it. StateError when unusable."""
        if url is None:
            return cls(Database.open(state_dir))
        from daemon.store.postgres import PostgresDatabase

        return cls(PostgresDatabase.open(url, password))

    @property
    def path(self) -> Path:
        return self.db.path

    def prune(self, older_than: datetime) -> int:
        """Retention: check results and finished outbox rows older than `older_than`."""
        return self.results.prune(older_than) + self.outbox.prune(older_than)

    def maintenance(
        self, now: datetime, retention: timedelta, minutes: timedelta, hours: timedelta
    ) -> Iterator[tuple[str, int]]:
        """Keep the database the size its retention says, one short transaction a step
        (`(what, rows)` each): roll up what closed, prune raw results after `retention` (at a
        whole hour, and never a row not rolled up yet), minute buckets after `minutes`, hour
        buckets after `hours`, finished outbox rows, then give free pages back (SQLite)."""
        for written in self.rollups.steps(now):
            yield "rolled up", written
        marks = [m for m in self.rollups.marks().values() if m is not None]
        keep_from = min([(now - retention).timestamp(), *marks])
        raw_cutoff = datetime.fromtimestamp(floor_to(keep_from, HOUR), UTC)
        for removed in self.results.prune_steps(raw_cutoff):
            yield "results pruned", removed
        for size, keep in ((MINUTE, minutes), (HOUR, hours)):
            for removed in self.rollups.prune_steps(size, now - keep):
                yield "buckets pruned", removed
        yield "outbox pruned", self.outbox.prune(now - retention)
        for released in self.db.vacuum_steps():
            yield "pages released", released

    def maintain(
        self, now: datetime, retention: timedelta, minutes: timedelta, hours: timedelta
    ) -> dict[str, int]:
        """Every `maintenance` step at once: rows (or pages) per kind of step."""
        totals: dict[str, int] = {}
        for what, count in self.maintenance(now, retention, minutes, hours):
            totals[what] = totals.get(what, 0) + count
        return totals

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
