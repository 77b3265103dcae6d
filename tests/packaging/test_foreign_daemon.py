"""python-daemon also ships an import package named `daemon`. Installed beside watchkeeper it
overwrites watchkeeper's `daemon/__init__.py`; earlier on sys.path it shadows it. Either way
every command must say what happened in one line and exit 2, never die in a traceback."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging.conftest import Installed, new_venv, pip

pytestmark = pytest.mark.slow

ADVICE = "shadows watchkeeper's: install watchkeeper in its own environment (pipx or a venv)"


def _says_python_daemon_shadows(done: subprocess.CompletedProcess[str], where: Path) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    message = done.stderr.strip()
    pattern = (
        r"watchkeeper: another package named `daemon` \(python-daemon [0-9][^,]*, at "
        + re.escape(str(where / "daemon"))
        + r"\) "
        + re.escape(ADVICE)
    )
    assert re.fullmatch(pattern, message), message


@pytest.fixture(scope="module")
def clobbered(
    installed: Installed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, Path]]:
    """A venv where python-daemon was installed after watchkeeper, into the same
    site-packages (`pip install python-daemon` in watchkeeper's own venv). watchkeeper's
    dependencies come from the session's venv through a .pth line (installed already and
    unchanged by this), so only watchkeeper and python-daemon are installed here."""
    base = tmp_path_factory.mktemp("clobbered")
    python = new_venv(base / "venv")
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    pip("install", "--no-deps", str(installed.wheel), python=python)
    pip("install", "python-daemon", python=python)
    # Last: with it in place pip would call watchkeeper "already installed" and skip it.
    (site / "zz_watchkeeper_deps.pth").write_text(f"{installed.site_packages}\n")
    yield base / "venv", site


def test_python_daemon_in_the_same_environment_is_named(
    installed: Installed, clobbered: tuple[Path, Path]
) -> None:
    venv, site = clobbered
    for args in (["--version"], ["check", "--config", "nowhere.toml"], ["--help"]):
        done = subprocess.run(
            [str(venv / "bin" / "watchkeeper"), *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=installed.work,
            env=installed.env(),
        )
        _says_python_daemon_shadows(done, site)


def test_python_daemon_earlier_on_the_path_is_named(installed: Installed, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    pip("install", "--target", str(target), "python-daemon")
    done = installed.wk("--version", PYTHONPATH=str(target))
    _says_python_daemon_shadows(done, target)
    # The same installation without it is fine: nothing of watchkeeper was changed.
    assert installed.wk("--version").returncode == 0


def test_the_check_costs_nothing_when_all_is_well(installed: Installed) -> None:
    """The entry module imports only `daemon` (three names) before the CLI; heavy modules
    stay unloaded for --help, as the CLI test of the source tree demands too."""
    code = (
        "import sys, _watchkeeper\n"
        "assert _watchkeeper.shadowing_problem() is None\n"
        "print(sorted(m for m in ('pydantic', 'httpx', 'importlib.metadata') if m in sys.modules))"
    )
    assert installed.run_python(code).stdout.strip() == "[]"
    assert sys.executable  # the test venv is not the one under test
