"""The web stack is loaded only when a listener is configured."""

from __future__ import annotations

import subprocess
import sys

STACK = ("uvicorn", "starlette", "jinja2", "prometheus_client", "h11", "mcp")


def test_a_daemon_without_a_listener_never_imports_the_web_stack() -> None:
    code = (
        "import sys\n"
        "import daemon.service.daemon, daemon.service.once, daemon.cli.checks\n"
        f"print('LOADED', [m for m in {STACK!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "LOADED []" in out.stdout, out.stdout + out.stderr


def test_the_console_imports_the_stack_when_it_serves() -> None:
    code = (
        "import sys, asyncio\n"
        "from daemon.service.health import HealthReport, serve_health\n"
        "async def main():\n"
        "    server = await serve_health('127.0.0.1', 0, lambda: HealthReport(True))\n"
        "    server.close(); await server.wait_closed()\n"
        "asyncio.run(main())\n"
        "print('LOADED', sorted(m for m in ('uvicorn', 'starlette') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "LOADED ['starlette', 'uvicorn']" in out.stdout, out.stdout + out.stderr
