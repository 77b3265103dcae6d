"""The security sweep as OCSF 1.8.0 findings: one JSON object per finding, the format Security
Lake, Security Hub, Prowler and most SIEM pipelines read. Pure: no I/O, no clock.

Which class. A watchkeeper security finding is the result of checking one resource's
configuration against a rule, and most rules evidence controls of a standard (CIS, SOC 2,
HIPAA). OCSF models exactly that as a **Compliance Finding** (2003): "the results of evaluations
performed against resources, to check compliance with various Industry Frameworks or Security
Standards"; it is the only finding class with a `compliance` object (standards, control,
requirements, pass/fail), and AWS Security Hub emits its control checks as that class too.
A **Detection Finding** (2004) has no `compliance` attribute, so controls would be lost to
every schema-aware reader. Hence: a finding whose rule maps controls is a Compliance Finding
(`compliance.control` = the rule, `standards` = the frameworks, `requirements` = the
`framework:control` ids); a finding whose rule maps none is a Detection Finding. Both share
every other field, and the tests validate both against the official schema.

Fields: `finding_info.uid` is the finding's stable id (rule + resource), so a consumer
deduplicates across nights; `status` is New (new or still open), Resolved or Suppressed (muted,
with the mute's reason); `activity_id` Create/Update/Close follows new/open/resolved.
Evidence and names are untrusted: controls are shown as escapes and credential-shaped text is
masked before it is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from daemon.models import Severity
from daemon.redaction import mask_credentials
from daemon.store.sweeps import SweepRunRecord, TrackedFinding
from daemon.sweeps.reports import ordered
from daemon.util.text import printable
from jobs.sweeps.compliance import FRAMEWORKS

if TYPE_CHECKING:
    from jobs.sweeps.base import RuleMeta

OCSF_VERSION = "1.8.0"
PROFILES = ["cloud"]
FINDINGS_CATEGORY = 2
COMPLIANCE_FINDING = 2003
DETECTION_FINDING = 2004
CLASS_NAMES = {COMPLIANCE_FINDING: "Compliance Finding", DETECTION_FINDING: "Detection Finding"}
VENDOR = "watchkeeper"
SEVERITY_ID = {
    Severity.INFO: 1,
    Severity.LOW: 2,
    Severity.MEDIUM: 3,
    Severity.HIGH: 4,
    Severity.CRITICAL: 5,
}
SEVERITY_NAME = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
ACTIVITY = {"new": (1, "Create"), "open": (2, "Update"), "unknown": (2, "Update")}
CLOSE = (3, "Close")
STATUS_NEW, STATUS_SUPPRESSED, STATUS_RESOLVED = (1, "New"), (3, "Suppressed"), (4, "Resolved")
AWS_ACCOUNT = 10  # account.type_id "AWS Account"
RULE = 1  # analytic.type_id "Rule"
COMPLIANCE_PASS, COMPLIANCE_FAIL = (1, "Pass"), (3, "Fail")


def ocsf_findings(
    run: SweepRunRecord, metas: Mapping[str, RuleMeta], version: str
) -> list[dict[str, Any]]:
    """One OCSF object per finding of a security run: present ones (muted ones as Suppressed)
    and the ones resolved by this run (Resolved), most severe first."""
    if run.kind != "security":
        return []
    return [_finding(t, run, metas.get(t.finding.rule), version) for t in ordered(run.findings)]


def as_json_lines(findings: Iterable[Mapping[str, Any]]) -> str:
    """JSON Lines: one finding a line. JSON escapes every control character, so no untrusted
    text can start a line of its own."""
    return "".join(json.dumps(f, ensure_ascii=False, sort_keys=True) + "\n" for f in findings)


def _finding(
    t: TrackedFinding, run: SweepRunRecord, meta: RuleMeta | None, version: str
) -> dict[str, Any]:
    f = t.finding
    controls = list(meta.controls) if meta is not None else []
    class_uid = COMPLIANCE_FINDING if controls else DETECTION_FINDING
    resolved = t.state == "resolved"
    activity_id, activity = CLOSE if resolved else ACTIVITY[t.state]
    status_id, status = (
        STATUS_RESOLVED if resolved else STATUS_SUPPRESSED if t.muted else STATUS_NEW
    )
    severity_id = SEVERITY_ID[f.severity]
    cloud = f.rule.split(".", 1)[0]
    title = _text(f.title)
    info: dict[str, Any] = {
        "uid": _text(f.id),
        "title": title,
        "desc": _text(f.evidence.strip() or f.title),
        "first_seen_time": _ms(t.first_seen),
        "types": [_text(meta.service if meta is not None and meta.service else cloud)],
        "analytic": {"uid": f.rule, "name": f.rule, "type_id": RULE, "type": "Rule"},
    }
    if not resolved:
        info["last_seen_time"] = _ms(run.started_at)
    event: dict[str, Any] = {
        "class_uid": class_uid,
        "class_name": CLASS_NAMES[class_uid],
        "category_uid": FINDINGS_CATEGORY,
        "category_name": "Findings",
        "activity_id": activity_id,
        "activity_name": activity,
        "type_uid": class_uid * 100 + activity_id,
        "type_name": f"{CLASS_NAMES[class_uid]}: {activity}",
        "time": _ms(run.finished_at),
        "severity_id": severity_id,
        "severity": SEVERITY_NAME[severity_id],
        "status_id": status_id,
        "status": status,
        "message": title,
        "metadata": {
            "version": OCSF_VERSION,
            "profiles": list(PROFILES),
            "product": {"name": VENDOR, "vendor_name": VENDOR, "version": version},
            "log_name": f"sweep/{_text(run.sweep)}",
            "uid": _text(f"{run.id}/{f.id}"),
        },
        "finding_info": info,
        "cloud": _cloud(t, cloud),
        "resources": [_resource(t, cloud)],
        "remediation": _remediation(t, meta),
    }
    if t.muted and t.mute:
        event["status_detail"] = _text(t.mute)
    if controls:
        event["compliance"] = _compliance(f.rule, controls, resolved)
    return event


def _cloud(t: TrackedFinding, cloud: str) -> dict[str, Any]:
    f = t.finding
    if cloud != "aws":
        return {"provider": "Kubernetes" if cloud == "k8s" else cloud}
    entry: dict[str, Any] = {"provider": "AWS"}
    if f.account:
        entry["account"] = {"uid": _text(f.account), "type_id": AWS_ACCOUNT, "type": "AWS Account"}
    if f.location and f.location != "global":
        entry["region"] = _text(f.location)
    return entry


def _resource(t: TrackedFinding, cloud: str) -> dict[str, Any]:
    """`uid` is the ARN (or `namespace/kind/name`), `type` what the ARN says the resource is."""
    f = t.finding
    resource: dict[str, Any] = {"uid": _text(f.resource), "type": _text(resource_type(f.resource))}
    fields = f.resource.split(":", 5)
    if fields[0] == "arn" and len(fields) == 6:
        resource["cloud_partition"] = _text(fields[1])
        name = fields[5].rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        resource["name"] = _text(name or fields[5])
        if fields[3]:
            resource["region"] = _text(fields[3])
    elif cloud == "k8s":
        resource["name"] = _text(f.resource.rsplit("/", 1)[-1])
        resource["namespace"] = _text(f.location.rsplit("/", 1)[-1])
    else:
        resource["name"] = _text(f.resource)
        if f.location and f.location != "global":
            resource["region"] = _text(f.location)
    return resource


def resource_type(resource: str) -> str:
    """`s3`, `rds:db`, `ec2:security-group`, `lambda:function`; `k8s:<Kind>` for Kubernetes."""
    fields = resource.split(":", 5)
    if fields[0] == "arn" and len(fields) == 6:
        service, rest = fields[2], fields[5]
        for separator in ("/", ":"):
            if separator in rest:
                return f"{service}:{rest.split(separator, 1)[0]}"
        return service
    parts = resource.split("/")
    return f"k8s:{parts[-2]}" if len(parts) >= 2 else "account"


def _remediation(t: TrackedFinding, meta: RuleMeta | None) -> dict[str, Any]:
    f = t.finding
    desc = f.remediation
    if f.remediation_cli:
        desc += f"\nFrom the command line: {f.remediation_cli}"
    entry: dict[str, Any] = {"desc": _text(desc)}
    if meta is not None and meta.reference:
        entry["references"] = [meta.reference]
    return entry


def _compliance(rule: str, controls: Sequence[str], resolved: bool) -> dict[str, Any]:
    frameworks = sorted({c.split(":", 1)[0] for c in controls})
    status_id, status = COMPLIANCE_PASS if resolved else COMPLIANCE_FAIL
    return {
        "control": rule,
        "standards": [FRAMEWORKS[f].name if f in FRAMEWORKS else f for f in frameworks],
        "requirements": list(controls),
        "status_id": status_id,
        "status": status,
    }


def _ms(value: datetime) -> int:
    """OCSF `timestamp_t`: milliseconds since the epoch."""
    return int(value.timestamp() * 1000)


def _text(untrusted: str) -> str:
    """Untrusted text as data: credential-shaped values masked, controls shown as escapes."""
    return printable(mask_credentials(untrusted))
