"""The security sweep as SARIF 2.1.0, in the shape GitHub code scanning accepts. Pure: no I/O,
no clock.

A cloud resource is not a file, but code scanning rejects a result without
`physicalLocation.artifactLocation.uri` (and asks for a region). Each result therefore names its
resource as a relative URI under the `RESOURCE` base (`aws/<account>/<region>/<service>/<id>`,
`k8s/<context>/<namespace>/<kind>/<name>`) with the placeholder region 1:1 (there are no lines),
the exact resource as a logical location, and a fingerprint made from the finding's stable id,
so an alert follows the resource from night to night. Evidence is untrusted: it never forms an
embedded link or carries a control character.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from daemon.models import Finding, Severity
from daemon.store.sweeps import SweepRunRecord, TrackedFinding
from daemon.sweeps.reports import code_fence, ordered, rule_errors, scope_errors
from daemon.util.text import clip, printable
from daemon.util.time import iso_utc

if TYPE_CHECKING:
    from jobs.sweeps.base import RuleMeta

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
RESOURCE_BASE = "RESOURCE"
"""The `uriBaseId` of every result's location: the swept estate, which has no files."""
FINGERPRINT = "watchkeeperFindingId/v1"
LINE_HASH = "primaryLocationLineHash"
"""The only fingerprint code scanning reads. For a file it hashes the alert's line; a resource
has no lines, so it hashes what identifies the alert instead: the finding's id."""
PLACEHOLDER_REGION = {"startLine": 1, "startColumn": 1, "endLine": 1, "endColumn": 1}
"""Code scanning requires a region; a resource has none, so every alert sits at its start."""
DESCRIPTION_CHARS = 1024  # code scanning's limit for short and full descriptions
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}
"""`security-severity`: the CVSS-like score code scanning buckets (9.0+ critical, 7.0+ high,
4.0+ medium, above 0 low)."""
LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
_BASE_DESCRIPTION = (
    "Not a file: a resource in the swept estate, named "
    "<partition>/<account>/<region>/<service>/<resource> for AWS and "
    "<k8s>/<context>/<namespace>/<kind>/<name> for Kubernetes. The exact resource is each "
    "result's logical location."
)


def report_sarif(
    run: SweepRunRecord,
    metas: Mapping[str, RuleMeta],
    version: str,
    information_uri: str | None = None,
) -> dict[str, Any]:
    """Every rule that ran, with its remediation as help; one result per finding present now
    (muted ones as suppressed); rule and scope errors as tool notifications."""
    present = ordered(t for t in run.findings if t.state != "resolved")
    rule_ids = sorted({t.finding.rule for t in present} | set(metas))
    rules = [_rule(rule, metas.get(rule), present) for rule in rule_ids]
    index = {rule: i for i, rule in enumerate(rule_ids)}
    driver: dict[str, Any] = {"name": "watchkeeper", "version": version, "rules": rules}
    if information_uri:
        driver["informationUri"] = information_uri
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": driver},
                "automationDetails": {"id": f"watchkeeper/{run.sweep}/{run.id}"},
                "originalUriBaseIds": {RESOURCE_BASE: {"description": {"text": _BASE_DESCRIPTION}}},
                "invocations": [
                    {
                        "executionSuccessful": run.status != "failed",
                        "startTimeUtc": iso_utc(run.started_at),
                        "endTimeUtc": iso_utc(run.finished_at),
                        "toolExecutionNotifications": _notifications(run, index),
                    }
                ],
                "results": [_result(t, index[t.finding.rule]) for t in present],
            }
        ],
    }


def resource_uri(finding: Finding) -> str:
    """The relative URI that names `finding`'s resource: stable from run to run, readable in an
    alert list, each segment percent-encoded (never a scheme, never `..`)."""
    fields = finding.resource.split(":", 5)
    if fields[0] == "arn" and len(fields) == 6:
        _, partition, service, region, account, rest = fields
        owner = account or finding.account or "-"
        return _path(partition, owner, region or "global", service, *re.split("[:/]", rest))
    cloud = finding.rule.split(".", 1)[0]
    namespace = finding.resource.split("/", 1)[0]
    if cloud == "k8s" and finding.location.endswith(f"/{namespace}"):
        context = finding.location.removesuffix(f"/{namespace}")
        return _path("k8s", context, *finding.resource.split("/"))
    return _path(cloud, finding.account or "-", finding.location, *finding.resource.split("/"))


def line_hash(finding: Finding) -> str:
    """`<16 hex digits>:1`, as code scanning's own line hashes look, from the finding's id."""
    digest = hashlib.sha256(finding.id.encode("utf-8")).hexdigest()[:16]
    return f"{digest}:1"


def _path(*segments: str) -> str:
    return "/".join(_segment(s) for s in segments)


def _segment(text: str) -> str:
    encoded = quote(text, safe="")
    return encoded.replace(".", "%2E") if set(encoded) <= {"."} and encoded else encoded or "-"


def _text(untrusted: str) -> str:
    """Plain SARIF text from untrusted text: controls shown as escapes, and no `](` left to
    make an embedded link (SARIF §3.11.6) pointing anywhere."""
    return printable(untrusted).replace("](", "] (")


def _rule(rule: str, meta: RuleMeta | None, present: Sequence[TrackedFinding]) -> dict[str, Any]:
    sample = next((t.finding for t in present if t.finding.rule == rule), None)
    title = meta.title if meta else sample.title if sample else rule
    severity = meta.severity if meta else sample.severity if sample else Severity.MEDIUM
    remediation = meta.remediation if meta else sample.remediation if sample else rule
    template = meta.remediation_cli if meta else None
    text, markdown = remediation, remediation
    if template:
        text += f"\n\nFrom the command line:\n{template}"
        markdown += (
            "\n\nFrom the command line (each finding says which values go in the "
            f"`{{placeholders}}`):\n\n{code_fence(template)}"
        )
    tags = ["security", rule.split(".", 1)[0]]
    if meta is not None and meta.service:
        tags.append(meta.service)
    controls = list(meta.controls) if meta is not None else []
    tags += [f"compliance/{control}" for control in controls]
    risk = meta.risk if meta is not None and meta.risk else title
    entry: dict[str, Any] = {
        "id": rule,
        "name": "".join(part.capitalize() for part in re.split(r"[._:-]", rule) if part),
        "shortDescription": {"text": clip(title, DESCRIPTION_CHARS)},
        "fullDescription": {"text": clip(risk, DESCRIPTION_CHARS)},
        "help": {"text": text, "markdown": markdown},
        "defaultConfiguration": {"level": LEVEL[severity]},
        "properties": {
            "security-severity": SECURITY_SEVERITY[severity],
            "precision": "very-high",  # rules read the configuration itself, nothing inferred
            "tags": tags,
        },
    }
    if controls:
        entry["properties"]["compliance"] = controls
    if meta is not None and meta.reference:
        entry["helpUri"] = meta.reference
    return entry


def _result(t: TrackedFinding, rule_index: int) -> dict[str, Any]:
    f = t.finding
    message = f.evidence.strip() or f.title
    if f.remediation_cli:
        message += f"\nFix: {f.remediation_cli}"
    result: dict[str, Any] = {
        "ruleId": f.rule,
        "ruleIndex": rule_index,
        "level": LEVEL[f.severity],
        "message": {"text": _text(message)},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": resource_uri(f), "uriBaseId": RESOURCE_BASE},
                    "region": dict(PLACEHOLDER_REGION),
                },
                "logicalLocations": [
                    {"name": f.resource, "fullyQualifiedName": f.resource, "kind": "resource"}
                ],
                "message": {"text": _text(f"{f.resource} in {f.location}")},
            }
        ],
        "partialFingerprints": {LINE_HASH: line_hash(f), FINGERPRINT: f.id},
        "baselineState": "new" if t.state == "new" else "updated" if t.change else "unchanged",
        "properties": {
            "security-severity": SECURITY_SEVERITY[f.severity],
            "state": "open" if t.state == "unknown" else t.state,
            "firstSeen": iso_utc(t.first_seen),
        },
    }
    if f.account:
        result["properties"]["account"] = f.account
    if t.mute is not None:
        result["suppressions"] = [{"kind": "external", "justification": _text(t.mute)}]
    return result


def _notifications(run: SweepRunRecord, index: Mapping[str, int]) -> list[dict[str, Any]]:
    notes: list[dict[str, Any]] = []
    for failure in scope_errors(run):
        count = len(failure["rules"])
        text = f"{failure['scope']}: {failure['error']} ({count} rule{'' if count == 1 else 's'} "
        notes.append(
            {
                "level": "error",
                "message": {"text": _text(text + "did not run)")},
                "properties": {"rulesNotRun": list(failure["rules"])},
            }
        )
    for error in rule_errors(run):
        rule: dict[str, Any] = {"id": error["rule"]}
        if error["rule"] in index:
            rule["index"] = index[error["rule"]]
        notes.append(
            {
                "level": "error",
                "message": {"text": _text(f"{error['rule']}: {error['error']}")},
                "associatedRule": rule,
            }
        )
    return notes
