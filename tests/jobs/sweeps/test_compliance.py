"""The compliance mapping is data every security rule carries, naming controls that exist."""

from __future__ import annotations

import pytest

from daemon.cli.sweeps import FRAMEWORK_NAMES
from jobs.sweeps import rules
from jobs.sweeps.compliance import (
    FRAMEWORKS,
    UnknownControl,
    framework_rules,
    in_framework,
    rule_controls,
    split,
)


def test_every_security_rule_evidences_a_known_control() -> None:
    for rule in rules("security"):
        assert rule.meta.controls, f"{rule.meta.id} maps to no control"
        for control in rule.meta.controls:
            framework, number = split(control)  # raises for an unknown one
            assert framework.controls[number]


def test_aws_rules_map_to_aws_frameworks_and_kubernetes_rules_to_kubernetes_ones() -> None:
    for rule in rules("security"):
        cloud = rule.meta.id.split(".")[0]
        wrong = "cis-k8s:" if cloud == "aws" else "cis-aws:"
        assert not [c for c in rule.meta.controls if c.startswith(wrong)], rule.meta.id


def test_the_command_line_offers_every_framework() -> None:
    assert set(FRAMEWORK_NAMES) == set(FRAMEWORKS)


def test_lookups() -> None:
    assert "aws.iam.root_mfa" in framework_rules("cis-aws")
    assert "k8s.pod.privileged" in framework_rules("cis-k8s")
    assert "k8s.pod.privileged" not in framework_rules("cis-aws")
    assert rule_controls()["aws.iam.root_mfa"][0] == "cis-aws:1.5"
    assert in_framework(["cis-aws:5.2", "soc2:CC6.6", "cis-aws:5.3"], "cis-aws") == ["5.2", "5.3"]
    with pytest.raises(UnknownControl):
        split("cis-aws:99.9")
    with pytest.raises(UnknownControl):
        split("iso27001:A.9")


def test_trusted_accounts_must_be_account_ids() -> None:
    from daemon.config.sweeps import SweepConfig

    good = {"name": "s", "kind": "security", "aws": {}, "trusted_accounts": ["210987654321"]}
    assert SweepConfig.model_validate(good).options()["trusted_accounts"] == ["210987654321"]
    with pytest.raises(ValueError, match="'prod' is not an AWS account id"):
        SweepConfig.model_validate(good | {"trusted_accounts": ["prod"]})
