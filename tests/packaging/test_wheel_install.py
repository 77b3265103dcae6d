"""The README's server install, for real: the wheel of this tree in a fresh venv, run from an
empty directory — version, init, validate, check, the service unit — with nothing from the
source tree on the path."""

from __future__ import annotations

import plistlib
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests import ROOT
from tests.packaging.conftest import Installed, wheel_names

pytestmark = pytest.mark.slow


def test_the_wheel_carries_the_setup_files_and_the_entry_module(wheel: Path) -> None:
    names = wheel_names(wheel)
    for name in ("config.example.toml", "watchkeeper.service", "io.watchkeeper.agent.plist"):
        assert f"daemon/data/{name}" in names
    for name in ("templates/base.html", "templates/overview.html", "static/style.css"):
        assert f"daemon/web/{name}" in names  # the console renders from the package
    assert "_watchkeeper.py" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(wheel) as archive:
        assert "watchkeeper = _watchkeeper:main" in archive.read(entry_points).decode()


def test_the_installed_package_is_not_the_source_tree(installed: Installed) -> None:
    out = installed.run_python("import daemon, _watchkeeper; print(daemon.__file__)").stdout
    location = Path(out.strip())
    assert location.is_relative_to(installed.venv)
    assert not location.is_relative_to(ROOT)


def test_version(installed: Installed) -> None:
    done = installed.wk("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "watchkeeper, version 0.1.0"


def test_init_validate_and_check_from_the_wheel(installed: Installed) -> None:
    config = installed.work / "etc" / "watchkeeper" / "config.toml"
    done = installed.wk("init", "--path", str(config))
    assert done.returncode == 0, done.stderr
    assert f"wrote {config}" in done.stdout
    assert config.read_text(encoding="utf-8").startswith("# watchkeeper — a documented")

    done = installed.wk("config", "validate", "--config", str(config))
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr

    # The starter is honest: every enabled check passes where nothing else runs.
    done = installed.wk("check", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "localhost-dns" in done.stdout and "root-disk" in done.stdout

    again = installed.wk("init", "--path", str(config))
    assert again.returncode == 2
    assert "already exists; not overwritten" in again.stderr


def test_the_systemd_unit_names_this_installation(installed: Installed) -> None:
    config = installed.work / "unit" / "config.toml"
    done = installed.wk("service", "unit", "--systemd", "--config", str(config))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert f"ExecStart={installed.script} run" in lines
    assert f"Environment=WATCHKEEPER_CONFIG={config}" in lines
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    unit = installed.work / "watchkeeper.service"
    unit.write_text(done.stdout, encoding="utf-8")
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # The real ExecStart path exists here, so verify checks it as it would on a server.
    complaints = (verify.stdout + verify.stderr).splitlines()
    assert [line for line in complaints if unit.name in line] == []


def test_the_launchd_plist_names_this_installation(installed: Installed) -> None:
    done = installed.wk("service", "unit", "--launchd")
    assert done.returncode == 0, done.stderr
    plist = plistlib.loads(done.stdout.encode())
    home = installed.work / "home"
    assert plist["ProgramArguments"] == [str(installed.script), "run"]
    assert plist["EnvironmentVariables"]["WATCHKEEPER_CONFIG"] == str(
        home / ".config" / "watchkeeper" / "config.toml"
    )
    assert plist["StandardOutPath"] == str(home / "Library/Logs/watchkeeper/watchkeeper.log")
    assert "/Users/YOU" not in done.stdout
