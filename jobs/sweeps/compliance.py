"""The compliance frameworks a sweep's findings evidence, and the controls of each that rules
name in `RuleMeta.controls` (`cis-aws:5.2`, `soc2:CC6.6`, `hipaa:164.312(a)(1)`).

Why here, as data: an auditor asks "which controls pass, which fail, on which resources"; each
rule says which controls it evidences, beside its metadata, and reports group by them.

Not vendored: the control titles below are our own short paraphrases of the public section
headings, written for this mapping (the benchmarks' texts are licensed by their owners and are
not copied). Section numbers follow the versions named; the mapping is a judgement a reviewer
should check against the versions their auditor uses.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Framework:
    id: str
    name: str
    source: str
    """Where the framework is published."""
    controls: Mapping[str, str]
    """Control id → what it asks, in our words."""


FRAMEWORKS: dict[str, Framework] = {
    f.id: f
    for f in (
        Framework(
            "cis-aws",
            "CIS Amazon Web Services Foundations Benchmark v3.0.0",
            "https://www.cisecurity.org/benchmark/amazon_web_services",
            {
                "1.4": "No access keys for the root user",
                "1.5": "MFA on the root user",
                "1.8": "Password policy: minimum length 14",
                "1.9": "Password policy: no password reuse",
                "1.10": "MFA for every IAM user with a console password",
                "1.12": "Credentials unused for 45 days or more are disabled",
                "1.14": "Access keys rotated every 90 days or less",
                "1.16": "No IAM policy grants full *:* administrative privileges",
                "2.1.1": "S3 bucket policies deny plain-HTTP requests",
                "2.1.2": "MFA Delete on S3 buckets",
                "2.1.4": "S3 buckets block public access",
                "2.2.1": "EBS encryption by default in every region",
                "2.3.1": "RDS instances encrypted at rest",
                "2.3.3": "RDS instances not publicly accessible",
                "3.1": "CloudTrail enabled in all regions",
                "3.2": "CloudTrail log file validation enabled",
                "3.5": "AWS Config enabled in all regions",
                "3.8": "Rotation of customer-created symmetric KMS keys",
                "3.9": "VPC flow logging in every VPC",
                "4.16": "AWS Security Hub enabled",
                "5.2": "No security group admits 0.0.0.0/0 to administration ports",
                "5.3": "No security group admits ::/0 to administration ports",
                "5.4": "The default security group of every VPC restricts all traffic",
                "5.6": "EC2 instance metadata requires IMDSv2",
            },
        ),
        Framework(
            "cis-k8s",
            "CIS Kubernetes Benchmark v1.9.0",
            "https://www.cisecurity.org/benchmark/kubernetes",
            {
                "5.1.1": "cluster-admin used only where required",
                "5.1.2": "Access to Secrets kept to those who need it",
                "5.1.3": "No wildcards in Roles and ClusterRoles",
                "5.1.5": "Default service accounts not actively used",
                "5.1.6": "Service account tokens mounted only where needed",
                "5.2.2": "No privileged containers",
                "5.2.3": "No containers sharing the host PID namespace",
                "5.2.4": "No containers sharing the host IPC namespace",
                "5.2.5": "No containers sharing the host network namespace",
                "5.2.6": "No containers allowing privilege escalation",
                "5.2.7": "No root containers",
                "5.2.12": "No HostPath volumes",
                "5.3.2": "Every namespace has NetworkPolicies",
                "5.4.1": "Secrets as files rather than environment variables",
                "5.7.3": "Security context applied to pods and containers",
            },
        ),
        Framework(
            "soc2",
            "SOC 2 Trust Services Criteria (AICPA, 2017, revised points of focus 2022)",
            "https://www.aicpa-cima.com/resources/download/2017-trust-services-criteria-with-revised-points-of-focus-2022",
            {
                "CC6.1": "Logical access security over protected information assets",
                "CC6.2": "Credentials issued and removed for authorised users only",
                "CC6.3": "Access granted on least privilege, changed and removed as roles change",
                "CC6.6": "Protection against threats from outside the system boundary",
                "CC6.7": "Data protected in transmission",
                "CC7.1": "Detection of configuration changes that introduce vulnerabilities",
                "CC7.2": "Monitoring of system components for anomalies and attacks",
                "A1.2": "Backups and recovery infrastructure",
            },
        ),
        Framework(
            "hipaa",
            "HIPAA Security Rule, technical safeguards (45 CFR §164.312)",
            "https://www.ecfr.gov/current/title-45/subtitle-A/subchapter-C/part-164/subpart-C/section-164.312",
            {
                "164.312(a)(1)": "Access control: only authorised persons and software",
                "164.312(a)(2)(iv)": "Encryption and decryption of ePHI",
                "164.312(b)": "Audit controls: record and examine activity",
                "164.312(c)(1)": "Integrity: ePHI not improperly altered or destroyed",
                "164.312(d)": "Person or entity authentication",
                "164.312(e)(1)": "Transmission security",
            },
        ),
    )
}


class UnknownControl(ValueError):
    pass


def split(control: str) -> tuple[Framework, str]:
    """(framework, control id) of `cis-aws:5.2`; UnknownControl when either is unknown."""
    framework, _, number = control.partition(":")
    if framework not in FRAMEWORKS or number not in FRAMEWORKS[framework].controls:
        raise UnknownControl(f"{control!r} is not a control of a known framework")
    return FRAMEWORKS[framework], number


def in_framework(controls: Iterable[str], framework: str) -> list[str]:
    """The controls of `framework` among `controls`, by their ids within it."""
    prefix = f"{framework}:"
    return [c.removeprefix(prefix) for c in controls if c.startswith(prefix)]


def rule_controls(kind: str = "security") -> dict[str, tuple[str, ...]]:
    """Every rule of `kind` with the controls it evidences, by rule id (loads the rule modules,
    which import no cloud SDK; {} when they cannot load)."""
    from jobs.sweeps import RULE_MODULES

    return _controls(RULE_MODULES.get(kind, ()))


@functools.cache
def _controls(modules: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    import importlib

    found: dict[str, tuple[str, ...]] = {}
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        found |= {rule.meta.id: rule.meta.controls for rule in module.RULES}
    return found


def framework_rules(framework: str, kind: str = "security") -> set[str]:
    """The rules that evidence a control of `framework`."""
    prefix = f"{framework}:"
    return {
        rule
        for rule, controls in rule_controls(kind).items()
        if any(c.startswith(prefix) for c in controls)
    }
