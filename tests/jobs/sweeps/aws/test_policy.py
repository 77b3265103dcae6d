"""The resource-policy evaluator against a table of policies with known verdicts: principals,
action wildcards, Deny statements and the conditions that restrict (or only look as if)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobs.sweeps.aws.policy import PolicyError, access, full_admin, requires_tls

OWN = "123456789012"
OTHER = "210987654321"


def allow(principal: Any = "*", action: Any = "es:*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": action, **extra}


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def ip(*ranges: str, op: str = "IpAddress") -> dict[str, Any]:
    return {"Condition": {op: {"aws:SourceIp": list(ranges)}}}


def cond(op: str, key: str, value: Any) -> dict[str, Any]:
    return {"Condition": {op: {key: value}}}


TABLE: list[tuple[str, dict[str, Any], str]] = [
    ("principal * without condition", doc(allow()), "public"),
    ('principal {"AWS": "*"}', doc(allow({"AWS": "*"})), "public"),
    ('principal {"AWS": ["*"]} among others', doc(allow({"AWS": [OTHER, "*"]})), "public"),
    ("canonical user *", doc(allow({"CanonicalUser": "*"})), "public"),
    ("own account root", doc(allow({"AWS": f"arn:aws:iam::{OWN}:root"})), "private"),
    ("own account id", doc(allow({"AWS": OWN})), "private"),
    ("own role", doc(allow({"AWS": f"arn:aws:iam::{OWN}:role/app"})), "private"),
    ("other account root", doc(allow({"AWS": f"arn:aws:iam::{OTHER}:root"})), "cross-account"),
    ("other account id", doc(allow({"AWS": OTHER})), "cross-account"),
    ("service principal", doc(allow({"Service": "sns.amazonaws.com"})), "private"),
    ("Deny only", doc({"Effect": "Deny", "Principal": "*", "Action": "*"}), "private"),
    ("empty policy", doc(), "private"),
    ("IpAddress aws:SourceIp *", doc(allow(**ip("*"))), "public"),
    ("IpAddress aws:SourceIp 0.0.0.0/0", doc(allow(**ip("0.0.0.0/0"))), "public"),
    ("IpAddress aws:SourceIp ::/0", doc(allow(**ip("::/0"))), "public"),
    (
        "IpAddress aws:SourceIp 0.0.0.0/1 (half the internet)",
        doc(allow(**ip("0.0.0.0/1"))),
        "public",
    ),
    ("one wildcard among ranges", doc(allow(**ip("10.0.0.0/8", "*"))), "public"),
    ("IpAddress aws:SourceIp private range", doc(allow(**ip("10.0.0.0/8"))), "private"),
    ("IpAddress aws:SourceIp public /24", doc(allow(**ip("203.0.113.0/24"))), "private"),
    ("IpAddress aws:SourceIp one address", doc(allow(**ip("198.51.100.7/32"))), "private"),
    ("NotIpAddress private range", doc(allow(**ip("10.0.0.0/8", op="NotIpAddress"))), "public"),
    (
        "StringEquals aws:SourceVpc",
        doc(allow(**cond("StringEquals", "aws:SourceVpc", "vpc-1"))),
        "private",
    ),
    (
        "StringEquals aws:SourceVpce",
        doc(allow(**cond("StringEquals", "aws:sourcevpce", ["vpce-1"]))),
        "private",
    ),
    (
        "StringLike aws:SourceVpce *",
        doc(allow(**cond("StringLike", "aws:SourceVpce", "*"))),
        "public",
    ),
    (
        "StringEqualsIfExists aws:SourceVpc",
        doc(allow(**cond("StringEqualsIfExists", "aws:SourceVpc", "vpc-1"))),
        "public",
    ),
    (
        "StringNotEquals aws:SourceVpc",
        doc(allow(**cond("StringNotEquals", "aws:SourceVpc", "vpc-1"))),
        "public",
    ),
    (
        "StringEquals aws:SourceAccount",
        doc(allow(**cond("StringEquals", "aws:SourceAccount", OWN))),
        "private",
    ),
    (
        "ArnLike aws:SourceArn",
        doc(allow(**cond("ArnLike", "aws:SourceArn", "arn:aws:s3:::b"))),
        "private",
    ),
    ("ArnLike aws:SourceArn *", doc(allow(**cond("ArnLike", "aws:SourceArn", "*"))), "public"),
    (
        "StringEquals aws:PrincipalOrgID",
        doc(allow(**cond("StringEquals", "aws:PrincipalOrgID", "o-abc"))),
        "private",
    ),
    (
        "ForAnyValue:StringLike aws:PrincipalOrgPaths",
        doc(allow(**cond("ForAnyValue:StringLike", "aws:PrincipalOrgPaths", "o-abc/*"))),
        "private",
    ),
    (
        "Bool aws:SecureTransport true only",
        doc(allow(**cond("Bool", "aws:SecureTransport", "true"))),
        "public",
    ),
    (
        "StringLike aws:Referer",
        doc(allow(**cond("StringLike", "aws:Referer", "https://example.com/*"))),
        "public",
    ),
    ("Null aws:SourceVpc false", doc(allow(**cond("Null", "aws:SourceVpc", "false"))), "public"),
    (
        "unknown service key is trusted",
        doc(allow(**cond("StringEquals", "kms:ViaService", "s3.eu-west-1.amazonaws.com"))),
        "private",
    ),
    (
        "SecureTransport and SourceIp * together",
        doc(
            allow(
                Condition={
                    "Bool": {"aws:SecureTransport": "true"},
                    "IpAddress": {"aws:SourceIp": "*"},
                }
            )
        ),
        "public",
    ),
    (
        "SecureTransport and SourceVpce together",
        doc(
            allow(
                Condition={
                    "Bool": {"aws:SecureTransport": "true"},
                    "StringEquals": {"aws:SourceVpce": "vpce-1"},
                }
            )
        ),
        "private",
    ),
    (
        "public Allow cancelled by an unconditional Deny of everything",
        doc(allow(), {"Effect": "Deny", "Principal": "*", "Action": "es:*"}),
        "private",
    ),
    (
        "public Allow narrowed by a Deny for all but a VPC endpoint",
        doc(
            allow(),
            {
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "*",
                **cond("StringNotEquals", "aws:SourceVpce", "vpce-1"),
            },
        ),
        "private",
    ),
    (
        "public Allow, Deny only for plain HTTP: still public",
        doc(
            allow(),
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "*",
                **cond("Bool", "aws:SecureTransport", "false"),
            },
        ),
        "public",
    ),
    (
        "public Allow, Deny of another action: still public",
        doc(
            allow(action="es:*"), {"Effect": "Deny", "Principal": "*", "Action": "es:ESHttpDelete"}
        ),
        "public",
    ),
    (
        "Deny for one account does not cancel a public Allow",
        doc(allow(), {"Effect": "Deny", "Principal": {"AWS": OTHER}, "Action": "*"}),
        "public",
    ),
    (
        "NotAction allows the rest",
        doc({"Effect": "Allow", "Principal": "*", "NotAction": "es:ESHttpDelete"}),
        "public",
    ),
    ("a single statement, not a list", {"Statement": allow()}, "public"),
]


@pytest.mark.parametrize(
    ("policy", "verdict"), [(p, v) for _, p, v in TABLE], ids=[n for n, _, _ in TABLE]
)
def test_verdict(policy: dict[str, Any], verdict: str) -> None:
    assert access(policy, OWN).verdict == verdict
    assert access(json.dumps(policy), OWN).verdict == verdict  # as AWS returns it: a string


def test_actions_with_wildcards_match_the_actions_asked_about() -> None:
    policy = doc(allow(action="sqs:Send*"))
    assert access(policy, OWN, actions={"sqs:SendMessage"}).public
    assert access(policy, OWN, actions={"SQS:SENDMESSAGE"}).public  # IAM ignores case
    assert access(policy, OWN, actions={"sqs:*"}).public
    assert not access(policy, OWN, actions={"sqs:ReceiveMessage"}).public
    assert access(doc(allow(action="*")), OWN, actions={"sqs:ReceiveMessage"}).public


def test_trusted_accounts_are_not_cross_account() -> None:
    policy = doc(allow({"AWS": f"arn:aws:iam::{OTHER}:root"}))
    assert access(policy, OWN, trusted={OTHER}).verdict == "private"


def test_the_verdict_says_which_statement_lets_whom_in_and_why() -> None:
    policy = doc(allow(action="es:ESHttpGet", Sid="Open", **ip("*")), allow({"AWS": OTHER}, "es:*"))
    found = access(policy, OWN)
    assert found.describe() == (
        "Open allows es:ESHttpGet to anyone (aws:SourceIp allows *); "
        f"statement 2 allows es:* to account {OTHER} (no condition)"
    )


def test_restrictions_are_named() -> None:
    policy = doc(allow(Sid="Vpce", **cond("StringEquals", "aws:SourceVpce", "vpce-1")))
    assert access(policy, OWN).restricted == ("Vpce: aws:SourceVpce is vpce-1",)
    unknown = doc(allow(**cond("StringEquals", "s3:x-amz-acl", "private")))
    assert access(unknown, OWN).restricted == (
        "statement 1: StringEquals s3:x-amz-acl (not judged)",
    )


@pytest.mark.parametrize("bad", ["not json", "[1, 2]", '{"Statement": "x"}'])
def test_a_document_that_is_not_a_policy_is_refused(bad: str) -> None:
    with pytest.raises(PolicyError):
        access(bad, OWN)


def test_tls_only_policies() -> None:
    deny_http = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": "*",
        **cond("Bool", "aws:SecureTransport", "false"),
    }
    assert requires_tls(doc(deny_http))
    assert requires_tls(
        doc({**deny_http, "Condition": {"Bool": {"aws:SecureTransport": ["false"]}}})
    )
    assert not requires_tls(doc({**deny_http, "Effect": "Allow"}))
    assert not requires_tls(doc({**deny_http, "Principal": {"AWS": OTHER}}))
    assert not requires_tls(
        doc({**deny_http, "Condition": {"Bool": {"aws:SecureTransport": "true"}}})
    )
    assert not requires_tls(None)


def test_full_admin() -> None:
    assert full_admin(doc({"Effect": "Allow", "Action": "*", "Resource": "*"}))
    assert full_admin(doc({"Effect": "Allow", "Action": ["*"], "Resource": ["*"]}))
    assert not full_admin(doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}))
    assert not full_admin(doc({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b"}))
    mfa = cond("Bool", "aws:MultiFactorAuthPresent", "true")
    assert not full_admin(doc({"Effect": "Allow", "Action": "*", "Resource": "*", **mfa}))
