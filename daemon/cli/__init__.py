"""The `watchkeeper` command line: this module is the app (the `main` group); each command
group is a module of this package, and `_common` holds what they share.

Command modules import the app's rooms inside their functions (so `--help` stays fast) and
never import this module back. Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration
error — always with a one-line message on stderr, never a traceback.
"""

from __future__ import annotations

import click

from daemon import __version__
from daemon.cli import (
    ask,
    backup,
    checks,
    config,
    controls,
    costs,
    demo,
    heartbeats,
    history,
    init,
    investigate,
    keys,
    mcp,
    models,
    notify,
    run,
    service,
    sweeps,
    uptime,
)
from daemon.cli._output import AppGroup


@click.group(
    cls=AppGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(__version__, prog_name="watchkeeper")
def main() -> None:
    """watchkeeper stands watch over your infrastructure: scheduled health checks, incidents
    notified once, and (with models configured) local triage and cloud root-cause analysis.

    Start with `watchkeeper demo`; then `watchkeeper init` writes a starter config.
    Shell completion: eval "$(_WATCHKEEPER_COMPLETE=bash_source watchkeeper)".

    On a terminal, output is laid out to its width and coloured (not with NO_COLOR set,
    --no-color, or TERM=dumb); on a pipe or a file it is plain text, one row per line.
    """


for command in (
    run.run,
    checks.check,
    checks.status,
    checks.incidents,
    controls.ack,
    controls.silence,
    heartbeats.ping,
    heartbeats.heartbeat,
    uptime.uptime,
    history.history,
    config.config,
    notify.notify,
    demo.demo,
    keys.keys,
    models.models,
    models.route,
    costs.costs,
    costs.audit,
    ask.ask,
    investigate.investigate,
    investigate.digest,
    mcp.mcp,
    sweeps.sweep,
    sweeps.findings,
    init.init,
    service.service,
    backup.backup,
):
    main.add_command(command)
