"""The installed wheel, shared by this folder's tests (built and installed once per session).

The wheel is built with `pip wheel --no-deps` (only watchkeeper itself; build isolation gives
setuptools from pip's cache). The fresh venv gets the wheel *with* its dependencies resolved
from the index, as a user's `pip install` would: that is what proves the declared
dependencies are enough to run (the test venv also holds the test extras, boto3, kubernetes,
which would hide a missing one). It is created without pip (`--without-pip`, 0.4 s instead of
3 s) and filled by this interpreter's pip (`pip --python`); pip's cache keeps it to ~20 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import ROOT


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    work: Path
    """An empty directory outside the source tree: the cwd of every command."""

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def script(self) -> Path:
        return self.venv / "bin" / "watchkeeper"

    @property
    def site_packages(self) -> Path:
        out = self.run_python("import sysconfig; print(sysconfig.get_path('purelib'))")
        return Path(out.stdout.strip())

    def env(self, **extra: str) -> dict[str, str]:
        """No PYTHONPATH, no config, no systemd of the caller's; HOME and state inside work."""
        drop = ("PYTHON", "WATCHKEEPER_", "NOTIFY_SOCKET", "VIRTUAL_ENV", "STATE_DIRECTORY")
        env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        env.update(HOME=str(self.work / "home"), STATE_DIRECTORY=str(self.work / "state"))
        env.update(extra)
        return env

    def wk(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.script), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.work,
            env=self.env(**env),
        )

    def run_python(self, code: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.work,
            env=self.env(**env),
            check=True,
        )


def pip(*args: str, python: Path | None = None) -> None:
    """This interpreter's pip (targeting `python`'s environment when given), quiet."""
    target = ["--python", str(python)] if python is not None else []
    done = subprocess.run(
        [sys.executable, "-m", "pip", *target, *args, "--quiet", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"pip {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


def new_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path / "bin" / "python"


SKIP = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "state"
)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of the working tree, built from a copy: setuptools builds in the source
    directory, and a stale build/ there could slip deleted modules into the wheel."""
    base = tmp_path_factory.mktemp("wheel")
    tree = base / "tree"
    shutil.copytree(ROOT, tree, ignore=SKIP)
    out = base / "dist"
    pip("wheel", "--no-deps", "--wheel-dir", str(out), str(tree))
    (built,) = out.glob("watchkeeper-*.whl")
    return built


@pytest.fixture(scope="session")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    base = tmp_path_factory.mktemp("installed")
    python = new_venv(base / "venv")
    pip("install", str(wheel), python=python)
    work = base / "work"
    (work / "home").mkdir(parents=True)
    yield Installed(wheel=wheel, venv=base / "venv", work=work)


def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())
