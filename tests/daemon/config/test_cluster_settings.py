"""`[cluster]` and vantage settings: sharding needs the shared database, a quorum is between 1
and the number of locations, locations need sharding — each refused in one line (exit 2) that
names the key; node and location come from the environment so one file serves every node."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config.load import load_settings
from daemon.errors import ConfigError
from tests.cli import run_cli

PG = '[store]\nurl = "postgresql://wk@db/wk"\n\n[cluster]\nmode = "sharded"\n'


def write(tmp_path: Path, text: str, check: str = "") -> Path:
    path = tmp_path / "config.toml"
    body = f'[daemon]\nstate_dir = "state"\n\n{text}\n'
    if check:
        body += f'\n[[checks]]\nname = "shop"\ntype = "tcp"\nhost = "127.0.0.1"\nport = 1\n{check}'
    path.write_text(body, encoding="utf-8")
    return path


def problems(path: Path) -> str:
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    return "\n".join(f"{p.key}: {p.message}" for p in raised.value.problems)


def test_sharded_with_vantage_points_and_the_default_majority(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, PG, 'locations = ["eu-1", "us-1", "ap-1"]\n'))
    assert settings.cluster.mode == "sharded"
    (spec,) = settings.checks
    assert spec.locations == ["eu-1", "us-1", "ap-1"] and spec.quorum is None
    assert spec.needed == 2


def test_node_and_location_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHKEEPER_STORE__NODE", "web-3")
    monkeypatch.setenv("WATCHKEEPER_CLUSTER__LOCATION", "eu-1")
    settings = load_settings(write(tmp_path, PG))
    assert settings.store.node == "web-3" and settings.cluster.location == "eu-1"


@pytest.mark.parametrize(
    ("text", "check", "complaint"),
    [
        ('[cluster]\nmode = "sharded"', "", 'cluster.mode: "sharded" needs a shared PostgreSQL'),
        ("", 'locations = ["eu-1"]\n', "vantage points need [cluster] mode"),
        (PG, 'locations = ["eu-1", "us-1"]\nquorum = 3\n', "quorum 3 is more than the 2"),
        (PG, 'locations = ["eu-1", "us-1"]\nquorum = 0\n', "greater than or equal to 1"),
        (PG, "quorum = 1\n", "quorum needs locations"),
        (PG, 'locations = ["eu-1", "eu-1"]\n', "each location may be listed once"),
        (PG, 'locations = ["eu 1"]\n', "is not a location name"),
        (PG + 'location = "eu west"\n', "", "cluster.location"),
    ],
)
def test_bad_cluster_settings_are_refused(
    tmp_path: Path, text: str, check: str, complaint: str
) -> None:
    assert complaint in problems(write(tmp_path, text, check))


def test_the_cli_refuses_sharding_without_postgresql_in_one_line(tmp_path: Path) -> None:
    done = run_cli("run", "--config", str(write(tmp_path, '[cluster]\nmode = "sharded"')))
    assert done.returncode == 2
    assert "cluster.mode" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_cycle_of_its_own_is_refused_in_sharded_mode(tmp_path: Path, postgres_url: str) -> None:
    """`run --once` and `check --record` commit a cycle as a single node does; in a sharded
    cluster the leader evaluates the members' stored results from a cursor and would judge
    such a cycle's results twice — so both are refused in one line, exit 2."""
    text = f'[store]\nurl = "{postgres_url}"\n\n[cluster]\nmode = "sharded"\n'
    config = str(write(tmp_path, text, 'interval = "30s"'))
    for args in (("run", "--once"), ("check", "shop", "--record")):
        done = run_cli(*args, "--config", config)
        assert done.returncode == 2, (args, done.stderr)
        assert "cluster.mode" in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
