"""`watchkeeper service unit`: the shipped unit and plist with this installation's real paths,
as hardened as the shipped unit, valid for systemd-analyze and plistlib; never over a file."""

from __future__ import annotations

import os
import plistlib
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.cli.service import this_command
from tests import DATA

PY = sys.executable
needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed"
)


def wk(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("WATCHKEEPER_")}
    full.update(env)
    return subprocess.run(
        [PY, "-m", "daemon", "service", "unit", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=full,
    )


def unit_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def analyze(*args: str) -> str:
    done = subprocess.run(
        ["systemd-analyze", *args], capture_output=True, text=True, timeout=60, check=False
    )
    return done.stdout + done.stderr


def exposure(path: Path) -> float:
    out = analyze("security", "--offline=yes", "--no-pager", str(path))
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", out)
    assert match, out[-2000:]
    return float(match.group(1))


def test_this_command_is_the_console_script_beside_the_interpreter() -> None:
    script = Path(os.path.abspath(PY)).parent / "watchkeeper"
    assert script.is_file()  # the test venv's own install
    assert this_command() == (str(script),)


def test_the_systemd_unit_changes_only_the_installation_lines(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    done = wk("--systemd", "--config", str(config))
    assert done.returncode == 0, done.stderr
    shipped = unit_lines((DATA / "watchkeeper.service").read_text(encoding="utf-8"))
    made = unit_lines(done.stdout)
    changed = sorted(set(made) - set(shipped))
    assert changed == sorted(
        [f"ExecStart={this_command()[0]} run", f"Environment=WATCHKEEPER_CONFIG={config}"]
    )
    assert len(made) == len(shipped)
    assert done.stdout.startswith("# Written by `watchkeeper service unit` (watchkeeper ")


def test_user_and_state_dir(tmp_path: Path) -> None:
    done = wk("--config", str(tmp_path / "c.toml"), "--user", "wk", "--state-dir", "/var/lib/wk/a")
    assert done.returncode == 0, done.stderr
    lines = unit_lines(done.stdout)
    assert "User=wk" in lines
    assert not any(line.startswith("DynamicUser=") for line in lines)
    assert "StateDirectory=wk/a" in lines


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--state-dir", "/srv/wk"], "--state-dir /srv/wk: under systemd the state directory"),
        (["--state-dir", "/var/lib"], "give a directory inside /var/lib/"),
        (["--user", "root"], "--user 'root': give the name of an unprivileged system account"),
        (["--user", "a b"], "--user 'a b'"),
        (["--config", "/etc/wk/my config.toml"], "has characters a unit file would have to quote"),
        (["--config", "/etc/wk/100%.toml"], "has characters a unit file would have to quote"),
        (["--launchd", "--user", "wk"], "--user applies to systemd"),
    ],
)
def test_what_a_unit_cannot_say_is_refused(args: list[str], says: str) -> None:
    done = wk(*args)
    assert done.returncode == 2
    assert says in done.stderr
    assert done.stdout == ""


def test_paths_the_sandbox_hides_are_warned_about() -> None:
    done = wk("--systemd", "--config", "/home/someone/config.toml")
    assert done.returncode == 0
    assert "warning: /home/someone/config.toml is under /home, /root or /run/user" in done.stderr


@needs_analyze
def test_the_generated_unit_verifies_and_is_as_hardened_as_the_shipped_one(
    tmp_path: Path,
) -> None:
    for variant, args in (("dynamic", []), ("static", ["--user", "watchkeeper"])):
        unit = tmp_path / variant / "watchkeeper.service"
        done = wk("--config", str(tmp_path / "c.toml"), "--write", str(unit), *args)
        assert done.returncode == 0, done.stderr
        # The ExecStart path is this install's real script, so verify checks it exists.
        complaints = [line for line in analyze("verify", "--man=no", str(unit)).splitlines()]
        assert [line for line in complaints if unit.name in line] == []
        assert exposure(unit) <= exposure(DATA / "watchkeeper.service") <= 2.0


def test_write_refuses_an_existing_file(tmp_path: Path) -> None:
    unit = tmp_path / "watchkeeper.service"
    unit.write_text("mine")
    done = wk("--write", str(unit))
    assert done.returncode == 2
    assert f"{unit}: already exists; not overwritten" in done.stderr
    assert unit.read_text() == "mine"


def test_the_launchd_plist_has_real_paths_and_its_log_directory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    agent = home / "Library" / "LaunchAgents" / "io.watchkeeper.agent.plist"
    done = wk(
        "--launchd", "--state-dir", str(tmp_path / "state"), "--write", str(agent), HOME=str(home)
    )
    assert done.returncode == 0, done.stderr
    text = agent.read_text(encoding="utf-8")
    assert "/Users/YOU" not in text
    plist = plistlib.loads(text.encode())
    logs = home / "Library" / "Logs" / "watchkeeper"
    assert plist["Label"] == "io.watchkeeper.agent"
    assert plist["ProgramArguments"] == [*this_command(), "run"]
    assert plist["EnvironmentVariables"]["WATCHKEEPER_CONFIG"] == str(
        home / ".config" / "watchkeeper" / "config.toml"
    )
    assert plist["EnvironmentVariables"]["WATCHKEEPER_DAEMON__STATE_DIR"] == str(tmp_path / "state")
    assert plist["StandardOutPath"] == str(logs / "watchkeeper.log")
    assert plist["StandardErrorPath"] == str(logs / "watchkeeper.err.log")
    assert logs.is_dir()  # launchd would not create it
    assert stat.S_IMODE(agent.stat().st_mode) == 0o644
    # The template's explanation (one procedure: bootstrap into gui/<uid>) travels along.
    assert "launchctl bootstrap gui/$(id -u) ~/Library/LaunchAgents/" in text
    assert f"launchctl bootstrap gui/$(id -u) {agent}" in done.stdout


def test_the_shipped_templates_are_what_the_generator_edits() -> None:
    """Every line the generator replaces occurs exactly once in the template (or it raises)."""
    from pathlib import PurePosixPath

    from daemon.data import LAUNCHD_PLIST, SYSTEMD_UNIT, read_bytes, read_text
    from daemon.data.units import Install, launchd_plist, systemd_unit

    install = Install(
        command=("/opt/watchkeeper/bin/watchkeeper",),
        config=PurePosixPath("/etc/watchkeeper/config.toml"),
        state_dir=PurePosixPath("/var/lib/watchkeeper"),
        user="watchkeeper",
    )
    unit = systemd_unit(read_text(SYSTEMD_UNIT), install, header="# test")
    assert "ExecStart=/opt/watchkeeper/bin/watchkeeper run\n" in unit
    assert "StateDirectory=watchkeeper\n" in unit
    plist = launchd_plist(read_bytes(LAUNCHD_PLIST), install, home=PurePosixPath("/Users/ann"))
    assert plistlib.loads(plist)["StandardOutPath"].startswith("/Users/ann/Library/Logs/")
