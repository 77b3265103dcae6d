"""What a sweep run says per compliance framework: for each control its rules evidence, pass or
fail, with the rules and resources behind it — what an auditor asks for — as Markdown (the
report's last section), as JSON (`compliance` in report.json), and a filter for `findings
--framework`. Pure: no I/O, no clock.

A control fails when a rule mapped to it has an open, unmuted finding; passes when every rule
mapped to it ran cleanly; is `not evaluated` when one of them could not run (a rule error or a
scope failure) and nothing failed. Controls no rule of the sweep evidences are left out: the
report never claims a control it did not look at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from daemon.store.sweeps import SweepRunRecord
from daemon.sweeps.reports import current, md, rule_errors, scope_errors
from jobs.sweeps.compliance import FRAMEWORKS, split

if TYPE_CHECKING:
    from jobs.sweeps.base import RuleMeta

Status = Literal["fail", "not evaluated", "pass"]
ORDER: dict[Status, int] = {"fail": 0, "not evaluated": 1, "pass": 2}


def compliance(run: SweepRunRecord, metas: Mapping[str, RuleMeta]) -> dict[str, Any]:
    """Per framework, per control: status, rules, failing resources (see the module's doc)."""
    failing: dict[str, list[str]] = {}
    for t in current(run):
        if not t.muted:
            failing.setdefault(t.finding.rule, []).append(t.finding.resource)
    broken = {e["rule"] for e in rule_errors(run)}
    broken |= {rule for e in scope_errors(run) for rule in e["rules"]}
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for rule, meta in sorted(metas.items()):
        for control in meta.controls:
            framework, number = split(control)
            entry = table.setdefault(framework.id, {}).setdefault(
                number,
                {"title": framework.controls[number], "rules": [], "resources": []},
            )
            entry["rules"].append(rule)
            entry["resources"] += failing.get(rule, [])
            entry.setdefault("broken", False)
            entry["broken"] |= rule in broken
    result: dict[str, Any] = {}
    for framework_id in (f for f in FRAMEWORKS if f in table):
        controls = []
        for number, entry in table[framework_id].items():
            status: Status = (
                "fail" if entry["resources"] else "not evaluated" if entry["broken"] else "pass"
            )
            controls.append(
                {
                    "control": number,
                    "title": entry["title"],
                    "status": status,
                    "rules": entry["rules"],
                    "resources": sorted(set(entry["resources"])),
                }
            )
        controls.sort(key=lambda c: (ORDER[c["status"]], _number(c["control"])))
        result[framework_id] = {
            "name": FRAMEWORKS[framework_id].name,
            "passed": sum(c["status"] == "pass" for c in controls),
            "failed": sum(c["status"] == "fail" for c in controls),
            "controls": controls,
        }
    return result


def _number(control: str) -> tuple[Any, ...]:
    """`5.10` after `5.2`; `CC6.1` and `164.312(a)(1)` in text order."""
    return tuple(int(p) if p.isdigit() else p for p in control.replace("(", ".").split("."))


def compliance_markdown(run: SweepRunRecord, metas: Mapping[str, RuleMeta]) -> str:
    """The report's compliance section ("" when no rule of the run maps to a control)."""
    frameworks = compliance(run, metas)
    if not frameworks:
        return ""
    lines = ["", "## Compliance", ""]
    lines.append(
        "Controls the rules of this sweep evidence, per framework (mapping: "
        "jobs/sweeps/compliance.py). A control fails when one of its rules has an open finding."
    )
    for summary in frameworks.values():
        lines += [
            "",
            f"### {md(summary['name'])} — {summary['failed']} failing, {summary['passed']} passing",
            "",
            "| Control | Status | Rules | Failing resources |",
            "|---|---|---|---|",
        ]
        for c in summary["controls"]:
            rules = ", ".join(f"`{r}`" for r in c["rules"])
            resources = "<br>".join(md(r) for r in _few(c["resources"]))
            lines.append(
                f"| {c['control']} {c['title']} | {c['status'].upper()} | {rules} | {resources} |"
            )
    return "\n".join(lines) + "\n"


def _few(resources: Sequence[str], limit: int = 10) -> list[str]:
    if len(resources) <= limit:
        return list(resources)
    return [*resources[:limit], f"… and {len(resources) - limit} more"]
