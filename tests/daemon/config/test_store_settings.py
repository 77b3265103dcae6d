"""`[store]`: the PostgreSQL URL never carries a password, the password is a secret reference,
and a bad value is one line naming the setting (exit 2), never echoing a secret."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from daemon.config.load import load_settings
from daemon.errors import ConfigError
from tests.cli import run_cli


def write(tmp_path: Path, store: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[daemon]\nstate_dir = "state"\n\n[store]\n{store}\n', encoding="utf-8")
    return path


def test_the_default_is_the_sqlite_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""))
    assert settings.store.url is None and settings.store.lease == timedelta(seconds=10)


def test_a_postgresql_url_with_its_password_apart(tmp_path: Path) -> None:
    settings = load_settings(
        write(tmp_path, 'url = "postgresql://wk@db:5432/wk"\npassword = "secret:PGPASS"')
    )
    assert settings.store.url == "postgresql://wk@db:5432/wk"
    assert settings.store.password == "secret:PGPASS"


@pytest.mark.parametrize(
    ("store", "complaint"),
    [
        ('url = "postgresql://wk:hunter2@db/wk"', "holds a password"),
        ('url = "mysql://wk@db/wk"', "must be a postgresql:// URL"),
        ('url = "postgresql://wk@db/wk"\npassword = "hunter2"', "secret:NAME"),
        ('url = "postgresql://wk@db/wk"\nlease = "1s"', "between 3s and 300s"),
    ],
)
def test_bad_store_settings_are_refused(tmp_path: Path, store: str, complaint: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, store))
    text = str(raised.value) + "".join(p.message for p in raised.value.problems)
    assert complaint in text
    assert "hunter2" not in text


def test_the_cli_says_what_and_where_and_keeps_the_password(tmp_path: Path) -> None:
    config = write(tmp_path, 'url = "postgresql://wk:hunter2@db/wk"')
    done = run_cli("status", "--config", str(config))
    assert done.returncode == 2
    assert "store.url" in done.stderr and "Traceback" not in done.stderr
    assert "hunter2" not in done.stderr + done.stdout


def test_backup_points_to_pg_dump_on_postgresql(tmp_path: Path) -> None:
    config = write(tmp_path, 'url = "postgresql://wk@db/wk"')
    done = run_cli("backup", str(tmp_path / "copy.db"), "--config", str(config))
    assert done.returncode == 2 and "pg_dump" in done.stderr
