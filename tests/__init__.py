"""watchkeeper's tests: the tree mirrors daemon/ and jobs/; tests/peers/ holds the loopback
peers they share; tests/reliability/ runs the daemon as a process under faults."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The repository root (daemon/, jobs/, bench/)."""
DATA = ROOT / "daemon" / "data"
"""The files the package carries for setup: config.example.toml, the systemd unit, the plist."""
