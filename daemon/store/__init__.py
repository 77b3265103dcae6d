"""The state: one SQLite database (`database`) and a repository per concern over it —
results, incidents, outbox, ledger (+ routes), sweeps, controls (acknowledgements and
silences), heartbeats — plus the one-daemon-per-directory lock and `backup`, a consistent copy
taken while the daemon runs.

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
from daemon.store.ledger import Ledger, Routes
from daemon.store.outbox import Outbox
from daemon.store.results import Results
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
        self.capabilities = Capabilities(db)

    @classmethod
    def open(cls, state_dir: Path) -> Store:
        """Create (0700/0600) or open and migrate the database; StateError when unusable."""
        return cls(Database.open(state_dir))

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
