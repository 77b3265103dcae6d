"""watchkeeper's tests: the tree mirrors daemon/ and jobs/; tests/peers/ holds the loopback
peers they share; tests/reliability/ runs the daemon as a process under faults."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The repository root (config.example.toml, systemd/, bench/)."""
