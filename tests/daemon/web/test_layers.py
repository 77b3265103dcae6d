"""The new rooms import only downwards: `daemon.report` (the builders the CLI, the console and
MCP share) never reaches cli, service, web or runtime; `daemon.web` never reaches cli
or service — lazy imports inside functions included (the AST sees them all)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3] / "daemon"
FORBIDDEN = {
    "report": ("daemon.cli", "daemon.service", "daemon.web", "daemon.runtime"),
    "web": ("daemon.cli", "daemon.service"),
}


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append(node.module)
    return found


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_room_imports_only_downwards(room: str) -> None:
    files = sorted((ROOT / room).rglob("*.py"))
    assert files
    wrong = [
        f"{path.relative_to(ROOT.parent)}: {name}"
        for path in files
        for name in _imports(path)
        if name.startswith(FORBIDDEN[room])
    ]
    assert wrong == []
