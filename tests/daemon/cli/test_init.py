"""`watchkeeper init`: the starter config where the daemon reads it, never over a file, with
modes the service's own user can read whatever the umask, and the next steps."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.cli.init import default_config_path
from tests import DATA

PY = sys.executable


def wk(*args: str, umask: int = 0o022, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("WATCHKEEPER_")}
    full.update(env)
    return subprocess.run(
        [PY, "-m", "daemon", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=full,
        preexec_fn=lambda: os.umask(umask),
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_writes_the_example_with_readable_modes_under_a_strict_umask(tmp_path: Path) -> None:
    target = tmp_path / "etc" / "watchkeeper" / "config.toml"
    done = wk("init", "--path", str(target), umask=0o077)
    assert done.returncode == 0, done.stderr
    # A DynamicUser service must read it: 0644 and 0755 whatever root's umask is.
    assert mode(target) == 0o644
    assert mode(target.parent) == 0o755
    assert mode(target.parent.parent) == 0o755
    example = (DATA / "config.example.toml").read_text(encoding="utf-8")
    written = target.read_text(encoding="utf-8")
    assert written == example.replace("--config config.example.toml", f"--config {target}")
    assert f"created {target.parent.parent}/" in done.stdout
    assert f"wrote {target}" in done.stdout


def test_init_prints_the_next_steps(tmp_path: Path) -> None:
    target = tmp_path / "config.toml"
    lines = wk("init", "--path", str(target)).stdout.splitlines()
    assert f"  2. watchkeeper config validate --config {target}" in lines
    assert f"  3. watchkeeper notify test --config {target}" in lines
    assert any(f"watchkeeper service unit --systemd --config {target} --write" in x for x in lines)


def test_init_refuses_to_overwrite_and_leaves_the_file_alone(tmp_path: Path) -> None:
    target = tmp_path / "config.toml"
    target.write_text("# mine\n")
    done = wk("init", "--path", str(target))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"{target}: already exists; not overwritten (edit it, or move it away first)"
    )
    assert target.read_text() == "# mine\n"


def test_init_refuses_a_dangling_symlink(tmp_path: Path) -> None:
    """Writing through it would create a file wherever the link points."""
    target = tmp_path / "config.toml"
    target.symlink_to(tmp_path / "elsewhere.toml")
    assert wk("init", "--path", str(target)).returncode == 2
    assert not (tmp_path / "elsewhere.toml").exists()


def test_init_defaults_to_the_config_the_daemon_reads(tmp_path: Path) -> None:
    target = tmp_path / "from-env.toml"
    done = wk("init", WATCHKEEPER_CONFIG=str(target))
    assert done.returncode == 0, done.stderr
    assert target.is_file()
    # ...and that is the file `config validate` without --config then finds.
    check = wk("config", "validate", WATCHKEEPER_CONFIG=str(target), STATE_DIRECTORY=str(tmp_path))
    assert (check.returncode, check.stdout.strip()) == (0, "ok"), check.stderr


def test_default_path_for_a_user_and_for_root(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("WATCHKEEPER_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert default_config_path() == tmp_path / "xdg" / "watchkeeper" / "config.toml"
    monkeypatch.setattr(os, "geteuid", lambda: 0)  # what the systemd unit reads
    assert default_config_path() == Path("/etc/watchkeeper/config.toml")


def test_an_unwritable_place_is_one_line_and_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = wk("init", "--path", str(blocker / "config.toml"))
    assert done.returncode == 2
    assert done.stderr.startswith(f"{blocker / 'config.toml'}: cannot write: ")
    assert "Traceback" not in done.stderr
