"""The `watchkeeper` console script: makes sure `import daemon` finds watchkeeper's own package
before importing anything of it, then hands over to `daemon.cli.main`.

watchkeeper's import packages are named `daemon` and `jobs`. Another distribution with a
package of that name (python-daemon is the common one) installed into the same environment
overwrites or shadows them, and every command would die in an ImportError traceback. This
module has a name nobody else uses, so its own import is not shadowed, and it says in one line
what happened (exit 2). Standard library only, and cheap: `watchkeeper --help` stays fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

MARKER = "__watchkeeper__"
"""Set to True in watchkeeper's `daemon/__init__.py`; another `daemon` package has no such name."""

ADVICE = "install watchkeeper in its own environment (pipx or a venv)"


def main() -> None:
    problem = shadowing_problem()
    if problem is not None:
        sys.stderr.write(f"watchkeeper: {problem}\n")
        raise SystemExit(2)
    from daemon.cli import main as cli

    cli()


def shadowing_problem() -> str | None:
    """None when `daemon` is watchkeeper's and `jobs` sits beside it; else what to print."""
    daemon_dir = _package_dir("daemon")
    if daemon_dir is None:
        return f"watchkeeper's package `daemon` is missing from this environment: {ADVICE}"
    try:
        ours = getattr(importlib.import_module("daemon"), MARKER, False) is True
    except Exception:  # a foreign package that cannot even be imported here
        ours = False
    if not ours:
        return _foreign("daemon", daemon_dir)
    jobs_dir = _package_dir("jobs")
    if jobs_dir is None:
        return f"watchkeeper's package `jobs` is missing from this environment: {ADVICE}"
    if jobs_dir.parent != daemon_dir.parent:  # both are installed side by side, always
        return _foreign("jobs", jobs_dir)
    return None


def _package_dir(name: str) -> Path | None:
    """Where `import name` would load from, without running it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    origin = Path(spec.origin)
    return origin.parent if origin.name == "__init__.py" else origin


def _foreign(name: str, where: Path) -> str:
    owner = _owner(name, where)
    found = f"{owner}, at {where}" if owner else f"at {where}"
    return f"another package named `{name}` ({found}) shadows watchkeeper's: {ADVICE}"


def _owner(name: str, where: Path) -> str | None:
    """`python-daemon 3.1.2`: the installed distribution (not watchkeeper) that lists the
    shadowing package among its files. Only run on the way to an error: it reads every
    distribution's file list."""
    from importlib.metadata import distributions

    here = where.resolve()
    for dist in distributions():
        dist_name = dist.metadata["Name"] or "?"
        if dist_name.lower() == "watchkeeper":
            continue
        for file in dist.files or ():
            if file.parts == (name, "__init__.py"):
                package = Path(str(dist.locate_file(file))).resolve().parent
            elif file.parts == (f"{name}.py",):
                package = Path(str(dist.locate_file(file))).resolve()
            else:
                continue
            if package == here:
                return f"{dist_name} {dist.version}"
    return None
