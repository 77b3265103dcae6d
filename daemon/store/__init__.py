"""The state: one SQLite database (`database`), or one PostgreSQL database (`postgres`)
shared by several processes, and a repository per concern over it —
results, incidents, outbox, ledger (+ routes), sweeps, controls (acknowledgements and
silences), heartbeats, baseline snapshots — plus the one-daemon-per-directory lock and
`backup`, a consistent copy taken while the daemon runs.

Imports only `daemon.models`, `daemon.errors` and `daemon.util`; never the network, never a
secret value. `Store` is the face: `Store.open(state_dir)`, then `store.incidents.get(42)`.
"""

from __future__ import annotations

from datetime import datetime
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
from daemon.store.snapshots import Snapshots
from daemon.store.sweeps import Sweeps


class Store:
    """The repositories over one open database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.results = Results(db)
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

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
