"""Sweep commands: `sweep security|cost` runs sweeps now, `findings` lists the latest findings.
Registered by daemon.cli.app; imports stay inside commands so `watchkeeper --help` stays fast.

Findings are what a sweep is for: they never make the exit code non-zero. Only a sweep that
could not run (no rule applies, every rule failed, the state database failed) exits 1.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from daemon.cli._common import config_option, echo, emit_json, handle_errors, json_option, load
from daemon.util.tables import table

if TYPE_CHECKING:
    from daemon.config.settings import Settings
    from daemon.config.sweeps import SweepConfig
    from daemon.sweeps.runner import Progress, RuleOutcome, SweepRun

KINDS = ("security", "cost")
SEVERITY_NAMES = ("critical", "high", "medium", "low", "info")


async def run_now(
    settings: Settings,
    sweeps: Sequence[SweepConfig],
    send: bool,
    progress: Callable[[str], Progress] | None = None,
) -> list[tuple[SweepConfig, SweepRun | str]]:
    """Each sweep in turn, sharing one runtime; a sweep that cannot run becomes its reason.
    `progress(name)` gives a sweep's progress callback. With `send`, what was queued is
    delivered before returning."""
    from daemon.runtime import open_runtime
    from daemon.sweeps.runner import SweepError, run_sweep
    from daemon.util.time import utcnow

    done: list[tuple[SweepConfig, SweepRun | str]] = []
    async with open_runtime(settings) as rt:
        for sweep in sweeps:
            try:
                run = await run_sweep(
                    settings,
                    sweep,
                    rt.store,
                    rt.ai,
                    rt.ctx,
                    utcnow(),
                    notify_targets=send,
                    progress=None if progress is None else progress(sweep.name),
                )
            except SweepError as exc:
                done.append((sweep, str(exc)))
                continue
            done.append((sweep, run))
        if send:
            await rt.notifier.deliver_due()
    return done


def _progress(name: str) -> Progress:
    def report(outcome: RuleOutcome, done: int, total: int) -> None:
        if outcome.error:
            what = f"error — {outcome.error}"
        else:
            count = len(outcome.findings)
            what = f"{count} finding{'' if count == 1 else 's'}"
        echo(f"{name} [{done}/{total}] {outcome.meta.id}: {what}", err=True)

    return report


@click.command()
@click.argument("kind", type=click.Choice(KINDS))
@click.option("--name", help="Run only this sweep (even when disabled).")
@click.option(
    "--notify", "send", is_flag=True, help="Also send what changed to the sweep's targets."
)
@config_option
@json_option
@handle_errors
def sweep(kind: str, name: str | None, send: bool, config_path: Path | None, as_json: bool) -> None:
    """Run the enabled KIND sweeps now (or --name): rules, comparison with the last run,
    reports under the state directory. --json prints one report object, or an array of them
    when several sweeps ran. Exits 0 even with findings, 1 when a sweep could not run."""
    from daemon.sweeps.reports import report_json

    _, settings = load(config_path)
    of_kind = [s for s in settings.sweeps if s.kind == kind]
    chosen = [s for s in of_kind if s.name == name] if name else [s for s in of_kind if s.enabled]
    if name and not chosen:
        known = ", ".join(s.name for s in of_kind) or "none"
        raise click.UsageError(f"no {kind} sweep named {name!r}; configured: {known}")
    if not chosen:
        raise click.UsageError(
            f'no enabled {kind} sweep is configured: add a [[sweeps]] table with kind = "{kind}"'
        )
    progress = _progress if sys.stderr.isatty() else None
    outcomes = asyncio.run(run_now(settings, chosen, send, progress))
    failed = False
    documents = []
    for _, run in outcomes:
        if isinstance(run, str):
            echo(f"watchkeeper: {run}", err=True)
            failed = True
            continue
        failed = failed or run.failed
        if as_json:
            documents.append(report_json(run.record))
        else:
            echo(run_text(run, send))
    if as_json and documents:
        emit_json(documents[0] if len(documents) == 1 else documents)
    if failed:
        sys.exit(1)


def run_text(run: SweepRun, sent: bool) -> str:
    from daemon.sweeps.reports import current, savings, usd

    record = run.record
    present = current(record)
    states = {
        s: sum(t.state == s and not t.muted for t in record.findings)
        for s in ("new", "open", "resolved", "unknown")
    }
    muted = sum(t.muted for t in record.findings if t.state != "resolved")
    head = (
        f"{record.sweep} ({record.kind}, {record.status}): {len(present)} open — "
        f"{states['new']} new · {states['resolved']} resolved · {muted} muted"
    )
    if record.kind == "cost":
        head += f" · est. savings {usd(savings(present))}/month"
    lines = [head]
    for t in record.findings:
        if t.state == "new" and not t.muted:
            f = t.finding
            lines.append(f"  new [{f.severity.value.upper()}] {f.rule} {f.resource} — {f.title}")
    for error in record.detail.get("rule_errors", []):
        lines.append(f"  rule error: {error['rule']}: {error['error']}")
    if states["unknown"]:
        lines.append(f"  not re-checked (their rule failed): {states['unknown']}")
    if record.detail.get("summary"):
        lines.append(f"  {record.detail['summary']}")
    reports = record.detail.get("reports", {})
    if reports:
        lines.append("  reports: " + ", ".join(reports.values()))
    if sent:
        lines.append(
            f"  notification queued for {run.queued} target(s)"
            if run.message is not None
            else "  nothing changed since the last notification: nothing sent"
        )
    return "\n".join(lines)


@click.command()
@click.option("--kind", type=click.Choice(KINDS), help="Only sweeps of this kind.")
@click.option(
    "--severity", type=click.Choice(SEVERITY_NAMES), help="Only findings at or above this."
)
@click.option("--new", "only_new", is_flag=True, help="Only findings new in the latest run.")
@config_option
@json_option
@handle_errors
def findings(
    kind: str | None, severity: str | None, only_new: bool, config_path: Path | None, as_json: bool
) -> None:
    """The findings of the latest run of every configured sweep. --json prints an array of
    report objects (filters apply to `findings`; each `summary` stays the whole run's)."""
    from daemon.models import Severity
    from daemon.store import Store
    from daemon.sweeps.reports import report_json

    _, settings = load(config_path)
    store = Store.open(settings.daemon.state_dir)
    try:
        runs = store.sweeps.latest_runs()
    finally:
        store.close()
    names = {s.name for s in settings.sweeps}
    floor = Severity(severity) if severity else Severity.INFO
    documents = []
    for record in runs:
        if record.sweep not in names or (kind and record.kind != kind):
            continue
        document = report_json(record)
        document["findings"] = [
            f
            for f in document["findings"]
            if Severity(f["severity"]) >= floor and (not only_new or f["state"] == "new")
        ]
        documents.append(document)
    if as_json:
        emit_json(documents)
        return
    echo(findings_text(documents))


def findings_text(documents: list[dict[str, Any]]) -> str:
    if not documents:
        return "no sweep has run yet (`watchkeeper sweep security` runs one now)"
    lines: list[str] = []
    for document in documents:
        meta, summary = document["sweep"], document["summary"]
        lines.append(
            f"{meta['name']} ({meta['kind']}) — run {meta['run_id']} at {meta['started_at']}: "
            f"{summary['new']} new · {summary['open']} open · {summary['resolved']} resolved · "
            f"{summary['muted']} muted"
        )
        rows = [
            [
                f["severity"].upper(),
                f["state"],
                f["rule"],
                f["resource"],
                f["title"]
                + (
                    f" (${f['est_monthly_savings_usd']:,.2f}/month)"
                    if f["est_monthly_savings_usd"]
                    else ""
                ),
            ]
            for f in document["findings"]
        ]
        lines += (
            table(["SEVERITY", "STATE", "RULE", "RESOURCE", "TITLE"], rows, indent="  ").split("\n")
            if rows
            else ["  no findings"]
        )
        lines += [f"  rule error: {e['rule']}: {e['error']}" for e in summary["rule_errors"]]
        lines.append("")
    return "\n".join(lines).rstrip()
