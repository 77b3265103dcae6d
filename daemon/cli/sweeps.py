"""Sweep commands: `sweep security|cost` runs sweeps now, `findings` lists the latest findings.
Registered by daemon.cli.app; imports stay inside commands so `watchkeeper --help` stays fast.

Findings are what a sweep is for: they never make the exit code non-zero. Only a sweep that
could not run (no rule applies, every rule failed, the state database failed) exits 1.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from daemon.cli._common import (
    config_option,
    echo,
    emit_json,
    handle_errors,
    json_option,
    load,
    open_store,
)
from daemon.util.tables import table

if TYPE_CHECKING:
    from daemon.config.settings import Settings
    from daemon.config.sweeps import SweepConfig
    from daemon.models import Severity
    from daemon.store.sweeps import SweepRunRecord
    from daemon.sweeps.runner import Progress, RuleOutcome, SweepRun

KINDS = ("security", "cost")
SEVERITY_NAMES = ("critical", "high", "medium", "low", "info")
FRAMEWORK_NAMES = ("cis-aws", "cis-k8s", "soc2", "hipaa")
FORMATS = ("text", "json", "ocsf", "ocsf-jsonl")
OCSF_FORMATS = ("ocsf", "ocsf-jsonl")
"""jobs.sweeps.compliance.FRAMEWORKS' ids, named here so `--help` loads nothing (a test checks)."""


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

    path, settings = load(config_path)
    chosen = choose(settings.sweeps, kind, name, path)
    for config in chosen:
        if not config.enabled:
            echo(
                f"watchkeeper: sweep {config.name} is disabled (enabled = false in {path}): "
                "running it once as asked; set enabled = true for the daemon to run it on "
                "its schedule",
                err=True,
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


def choose(
    sweeps: Sequence[SweepConfig], kind: str, name: str | None, path: Path
) -> list[SweepConfig]:
    """The sweeps `sweep KIND [--name NAME]` runs: the named one (even when disabled), or every
    enabled one of the kind; a usage error naming what exists when there is none."""
    of_kind = [s for s in sweeps if s.kind == kind]
    if name:
        named = [s for s in sweeps if s.name == name]
        if named and named[0].kind != kind:
            other = named[0].kind
            raise click.UsageError(
                f"sweep {name} is a {other} sweep: run `watchkeeper sweep {other} --name {name}`"
            )
        if not named:
            known = ", ".join(s.name for s in of_kind) or "none"
            raise click.UsageError(f"no {kind} sweep named {name!r}; configured: {known}")
        return named
    enabled = [s for s in of_kind if s.enabled]
    if enabled:
        return enabled
    if of_kind:
        names = ", ".join(s.name for s in of_kind)
        were = "is" if len(of_kind) == 1 else "are"
        raise click.UsageError(
            f"the {kind} sweep {names} {were} disabled (enabled = false in {path}): set "
            f"enabled = true to run it now and on its schedule, or run it once with "
            f"`watchkeeper sweep {kind} --name {of_kind[0].name}`"
        )
    raise click.UsageError(
        f'no enabled {kind} sweep is configured: add a [[sweeps]] table with kind = "{kind}"'
    )


def run_text(run: SweepRun, sent: bool) -> str:
    """What one run changed — the counts come from `change_counts`, as the notification's
    title does, so the two always agree — then its errors and reports."""
    from daemon.sweeps.reports import (
        change_counts,
        current,
        not_run,
        ordered,
        rule_errors,
        savings,
        scope_errors,
        usd,
    )

    record, news = run.record, run.changes
    present = current(record)
    unknown = sum(t.state == "unknown" and not t.muted for t in record.findings)
    muted = sum(t.muted for t in record.findings if t.state != "resolved")
    since = " since the last notification" if sent else ""
    head = (
        f"{record.sweep} ({record.kind}, {record.status}): {len(present)} open — "
        f"{' · '.join(change_counts(news))}{since} · {muted} muted"
    )
    if record.kind == "cost":
        head += f" · est. savings {usd(savings(present))}/month"
    lines = [head]
    for state, items in (("new", news.new), ("changed", news.changed), ("resolved", news.resolved)):
        for t in ordered(items):
            f, change = t.finding, f" ({t.change})" if state == "changed" and t.change else ""
            lines.append(
                f"  {state} [{f.severity.value.upper()}] {f.rule} {f.resource} — {f.title}{change}"
            )
    for failure in scope_errors(record):
        lines.append(
            f"  could not sweep {failure['scope']}: {failure['error']} — {not_run(failure)}"
        )
    for error in rule_errors(record):
        lines.append(f"  rule error: {error['rule']}: {error['error']}")
    if unknown:
        lines.append(f"  not re-checked (their rule failed): {unknown}")
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
@click.option(
    "--framework",
    type=click.Choice(FRAMEWORK_NAMES),
    help="Only findings that evidence a control of this compliance framework (each shows "
    "its controls).",
)
@click.option(
    "--format",
    "output",
    type=click.Choice(FORMATS),
    help="text (default); json (as --json); ocsf: security findings as an array of OCSF "
    "1.8.0 findings; ocsf-jsonl: the same, one finding a line.",
)
@config_option
@json_option
@handle_errors
def findings(
    kind: str | None,
    severity: str | None,
    only_new: bool,
    framework: str | None,
    output: str | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """The findings of the latest run of every configured sweep. --json prints an array of
    report objects (filters apply to `findings`; each `summary` stays the whole run's).
    --format ocsf prints security findings as OCSF objects (muted ones Suppressed, the ones
    the run resolved Resolved); the same filters apply."""
    from daemon.models import Severity
    from daemon.sweeps.reports import report_json

    if as_json and output not in (None, "json"):
        raise click.UsageError(f"--json and --format {output} ask for two formats: pick one")
    if output in OCSF_FORMATS and kind == "cost":
        raise click.UsageError(
            "--format ocsf lists security findings; OCSF has no class for cost findings"
        )

    _, settings = load(config_path)
    store = open_store(settings)
    try:
        runs = store.sweeps.latest_runs()
    finally:
        store.close()
    names = {s.name for s in settings.sweeps}
    floor = Severity(severity) if severity else Severity.INFO
    if output in OCSF_FORMATS:
        found = _ocsf(runs, names, floor, only_new, framework)
        if output == "ocsf":
            emit_json(found)
        elif found:
            from daemon.sweeps.ocsf import as_json_lines

            echo(as_json_lines(found).rstrip("\n"))
        return
    documents = []
    for record in runs:
        if record.sweep not in names or (kind and record.kind != kind):
            continue
        document = report_json(record)
        document["findings"] = [
            f
            for f in document["findings"]
            if Severity(f["severity"]) >= floor
            and (not only_new or f["state"] == "new")
            and (not framework or any(c.startswith(f"{framework}:") for c in f["controls"]))
        ]
        documents.append(document)
    if as_json or output == "json":
        emit_json(documents)
        return
    echo(findings_text(documents, framework) if documents else nothing_yet(settings.sweeps, kind))


def _ocsf(
    runs: Sequence[SweepRunRecord],
    names: set[str],
    floor: Severity,
    only_new: bool,
    framework: str | None,
) -> list[dict[str, Any]]:
    """The latest security runs' findings as OCSF objects, filtered as the other formats are."""
    from daemon import __version__
    from daemon.sweeps.ocsf import ocsf_findings
    from jobs.sweeps import rules

    metas = {rule.meta.id: rule.meta for rule in rules("security")}
    found: list[dict[str, Any]] = []
    for record in runs:
        if record.sweep not in names or record.kind != "security":
            continue
        kept = tuple(
            t
            for t in record.findings
            if t.finding.severity >= floor
            and (not only_new or t.state == "new")
            and (
                not framework
                or any(
                    c.startswith(f"{framework}:")
                    for c in (metas[t.finding.rule].controls if t.finding.rule in metas else ())
                )
            )
        )
        found += ocsf_findings(replace(record, findings=kept), metas, __version__)
    return found


def nothing_yet(sweeps: Sequence[SweepConfig], kind: str | None) -> str:
    """Why `findings` has nothing to list, and the command that changes that."""
    kinds = [kind] if kind else sorted({s.kind for s in sweeps}, key=KINDS.index)
    configured = [s for s in sweeps if s.kind in kinds]
    what = f"no {kind} sweep" if kind else "no sweep"
    if not configured:
        return (
            f'{what} is configured: add a [[sweeps]] table with kind = "{kind or "security"}" '
            "(see config.example.toml)"
        )
    commands = []
    for k in kinds:
        of_kind = [s for s in configured if s.kind == k]
        if any(s.enabled for s in of_kind):
            commands.append(f"`watchkeeper sweep {k}`")
        elif of_kind:
            commands.append(f"`watchkeeper sweep {k} --name {of_kind[0].name}`")
    return f"{what} has run yet ({' or '.join(commands)} runs one now)"


def findings_text(documents: list[dict[str, Any]], framework: str | None = None) -> str:
    from daemon.sweeps.reports import not_run

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
                )
                + _controls(f, framework),
            ]
            for f in document["findings"]  # in the reports' order: most severe first
        ]
        lines += (
            table(["SEVERITY", "STATE", "RULE", "RESOURCE", "TITLE"], rows, indent="  ").split("\n")
            if rows
            else ["  no findings"]
        )
        lines += [
            f"  could not sweep {e['scope']}: {e['error']} — {not_run(e)}"
            for e in summary.get("scope_errors", [])
        ]
        lines += [f"  rule error: {e['rule']}: {e['error']}" for e in summary["rule_errors"]]
        lines.append("")
    return "\n".join(lines).rstrip()


def _controls(finding: dict[str, Any], framework: str | None) -> str:
    """` (cis-aws 5.2, 5.3)`: the controls of `framework` the finding evidences."""
    if not framework:
        return ""
    prefix = f"{framework}:"
    mine = [c.removeprefix(prefix) for c in finding.get("controls", []) if c.startswith(prefix)]
    return f" ({framework} {', '.join(mine)})" if mine else ""
