"""The one evaluator of AWS resource policies (S3, OpenSearch, SNS, SQS, Lambda, ECR, KMS,
Secrets Manager): who a policy lets in, for which actions, and whether its conditions really
restrict them. Pure functions over the policy document; no I/O, no clock.

Why conditions are read, not skipped: `Condition: {"IpAddress": {"aws:SourceIp": "*"}}` looks
like a restriction and is none, while `StringEquals aws:SourceVpce` shuts the internet out.
The verdict of an `Allow` statement for `*` is decided by its conditions (ANDed: one that
restricts is enough):

- `aws:SourceIp` under `IpAddress`: restricts unless a listed range is a wildcard (`*`,
  `0.0.0.0/0`, `::/0`, or an IPv4 range wider than /8); private ranges (RFC 1918, loopback,
  link-local) restrict to networks the internet cannot be; `NotIpAddress` lets everyone else in.
- `aws:SourceVpc`, `aws:SourceVpce`, `aws:SourceAccount`, `aws:SourceOwner`, `aws:SourceArn`,
  `aws:PrincipalOrgID`, `aws:PrincipalAccount`, `aws:PrincipalArn` (and `…OrgPaths`) under a
  positive operator (`StringEquals`, `StringLike`, `ArnEquals`, `ArnLike`) restrict unless the
  value is `*`; with the `IfExists` suffix they do not (an anonymous request carries none of
  them, so the test passes); under a negated operator they exclude, not restrict.
- `aws:SecureTransport`, `aws:UserAgent`, `aws:Referer`, `aws:CurrentTime`… do not say who:
  they never restrict (the Referer and UserAgent are whatever the caller sends).
- Any other key restricts (a service key such as `s3:x-amz-acl` or `kms:ViaService` we cannot
  judge): the verdict names it as `unjudged`, so a reader sees what was trusted.

A `Deny` for everyone covering the same actions cancels a public `Allow` when it has no
condition, and restricts it when its condition excludes all but known parties
(`StringNotEquals aws:SourceVpce`, `NotIpAddress aws:SourceIp` on private ranges, …).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal

Verdict = Literal["public", "cross-account", "private"]

IDENTITY_KEYS = frozenset(
    {
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:sourceaccount",
        "aws:sourceowner",
        "aws:sourcearn",
        "aws:principalorgid",
        "aws:principalorgpaths",
        "aws:principalaccount",
        "aws:principalarn",
        "aws:userid",
        "aws:username",
        "aws:sourceorgid",
        "aws:sourceorgpaths",
        "aws:resourceorgid",
    }
)
"""Keys whose specific value names who may call: a positive test on them restricts."""
SAYS_NOTHING_OF_WHO = frozenset(
    {
        "aws:securetransport",
        "aws:useragent",
        "aws:referer",
        "aws:currenttime",
        "aws:epochtime",
        "aws:requestedregion",
        "aws:viaawsservice",
        "aws:calledvia",
        "aws:calledviafirst",
        "aws:calledvialast",
        "aws:tokenissuetime",
        "aws:multifactorauthpresent",
        "aws:multifactorauthage",
        "s3:tlsversion",
        "s3:signatureversion",
        "s3:authtype",
    }
)
"""Keys that do not narrow who may call, so a condition on them restricts nothing."""
POSITIVE = ("stringequals", "stringlike", "arnequals", "arnlike", "stringequalsignorecase")
NEGATIVE = ("stringnotequals", "stringnotlike", "arnnotequals", "arnnotlike")
WIDEST_IPV4_PREFIX = 8
"""An IPv4 `aws:SourceIp` range wider than this (e.g. `0.0.0.0/1`) is treated as the internet."""
_ACCOUNT = re.compile(r"^(?:\d{12}|arn:aws[\w-]*:iam::(\d{12}):.+)$")


class PolicyError(ValueError):
    """The policy is not a JSON policy document."""


@dataclass(frozen=True)
class Grant:
    """One `Allow` statement that lets someone outside the account in."""

    statement: str
    """`Sid` when it has one, else `statement N` (1-based)."""
    actions: tuple[str, ...]
    principals: tuple[str, ...]
    """`*` for anyone, else the other accounts (12 digits)."""
    because: str
    """Why its conditions do not keep the outside out, e.g. `aws:SourceIp allows *`."""
    unjudged: tuple[str, ...] = ()

    @property
    def public(self) -> bool:
        return "*" in self.principals


@dataclass(frozen=True)
class Access:
    """What a policy lets in from outside its account."""

    verdict: Verdict
    grants: tuple[Grant, ...] = ()
    restricted: tuple[str, ...] = ()
    """Public statements that conditions or a Deny keep in check, and how (for evidence)."""

    @property
    def public(self) -> bool:
        return self.verdict == "public"

    def describe(self) -> str:
        """`statement Allow1 allows sqs:SendMessage to anyone (no condition); …`."""
        parts = []
        for grant in self.grants:
            who = "anyone" if grant.public else "account " + ", ".join(grant.principals)
            actions = ", ".join(grant.actions)
            parts.append(f"{grant.statement} allows {actions} to {who} ({grant.because})")
        return "; ".join(parts)


def parse(policy: str | dict[str, Any] | None) -> list[dict[str, Any]]:
    """The statements of a policy document (a JSON string or its decoded form)."""
    if policy is None or policy == "":
        return []
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except json.JSONDecodeError as exc:
            raise PolicyError(f"the policy is not JSON: {exc.msg} at {exc.pos}") from exc
    if not isinstance(policy, dict):
        raise PolicyError("the policy is not a JSON object")
    statements = policy.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    if not isinstance(statements, list) or not all(isinstance(s, dict) for s in statements):
        raise PolicyError("the policy's Statement is not a list of objects")
    return statements


def listed(value: Any) -> list[str]:
    """A policy field that may be one string or a list of them, as a list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


# -- principals and actions ------------------------------------------------------------------


def principals(statement: dict[str, Any], own: str) -> tuple[str, ...]:
    """Who outside account `own` the statement names: `*`, or other accounts' ids. Service
    principals and the account's own identities are inside; federated ones left out."""
    principal = statement.get("Principal")
    if principal == "*":
        return ("*",)
    if not isinstance(principal, dict):
        return ()
    outside: list[str] = []
    for kind in ("AWS", "CanonicalUser"):
        for value in listed(principal.get(kind)):
            if value == "*":
                return ("*",)
            match = _ACCOUNT.match(value)
            account = (match.group(1) or value) if match else None
            if account and account != own and account not in outside:
                outside.append(account)
    return tuple(outside)


def action_matches(patterns: Iterable[str], action: str) -> bool:
    """Whether one of the statement's action patterns covers `action` (or, when `action` is
    itself a pattern such as `sqs:*`, whether they overlap). Case-insensitive, as IAM is."""
    action = action.lower()
    for pattern in (p.lower() for p in patterns):
        if fnmatchcase(action, pattern) or fnmatchcase(pattern, action):
            return True
    return False


def statement_actions(statement: dict[str, Any], wanted: Collection[str] | None) -> list[str]:
    """The statement's actions that matter: all of them, or those overlapping `wanted`."""
    if "NotAction" in statement:
        excluded = listed(statement["NotAction"])
        candidates = list(wanted) if wanted else ["*"]
        if all(covers(excluded, a) for a in candidates):
            return []
        return [f"all but {', '.join(excluded)}"]
    actions = listed(statement.get("Action"))
    if wanted is None:
        return actions
    return [a for a in actions if any(action_matches([a], w) for w in wanted)]


def covers(patterns: Iterable[str], action: str) -> bool:
    """Whether one of `patterns` covers all of `action` (itself possibly a pattern: `es:*` is
    covered by `*` and `es:*`, not by `es:ESHttpDelete`)."""
    return any(fnmatchcase(action.lower(), p.lower()) for p in patterns)


# -- conditions ------------------------------------------------------------------------------


def _operator(name: str) -> tuple[str, bool]:
    """(`stringequals`, if-exists) of an operator such as `ForAnyValue:StringEqualsIfExists`."""
    bare = name.split(":")[-1].lower()
    return bare.removesuffix("ifexists"), bare.endswith("ifexists")


def _wide(value: str) -> bool:
    if value.strip() == "*":
        return True
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return False
    return network.prefixlen == 0 or (
        network.version == 4 and network.prefixlen < WIDEST_IPV4_PREFIX
    )


def _private(value: str) -> bool:
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return False
    return network.is_private or network.is_loopback or network.is_link_local


def condition_verdict(condition: Any) -> tuple[str | None, tuple[str, ...]]:
    """(what restricts an anonymous caller, keys trusted without judging) of a statement's
    Condition block; (None, …) when nothing in it keeps the internet out."""
    if not isinstance(condition, dict):
        return None, ()
    restricting: str | None = None
    unjudged: list[str] = []
    for operator, tests in condition.items():
        op, if_exists = _operator(str(operator))
        if not isinstance(tests, dict):
            continue
        for key, raw in tests.items():
            k, values = str(key).lower(), listed(raw)
            why = _restricts(op, if_exists, k, values)
            if why == "unjudged":
                unjudged.append(f"{operator} {key}")
                restricting = restricting or f"{operator} {key} (not judged)"
            elif why and not restricting:
                restricting = f"{key} {why}"
    return restricting, tuple(unjudged)


def _restricts(op: str, if_exists: bool, key: str, values: list[str]) -> str | None:
    """How one test restricts an anonymous caller (`is …`), None when it does not,
    `unjudged` for keys this evaluator does not know."""
    if key == "aws:sourceip":
        if op != "ipaddress" or not values or any(_wide(v) for v in values):
            return None
        return "is " + ", ".join(values)
    if key in SAYS_NOTHING_OF_WHO or op == "null":
        return None
    if key in IDENTITY_KEYS:
        if op in NEGATIVE or if_exists or not values or any(v.strip() == "*" for v in values):
            return None
        return "is " + ", ".join(values) if op in POSITIVE else "unjudged"
    return "unjudged"


def excluding(condition: Any) -> str | None:
    """What a Deny's condition lets through (so it restricts the Allows it covers): a negated
    identity test (`StringNotEquals aws:SourceVpce vpce-1`) or `NotIpAddress` on specific
    ranges. None when the Deny applies to everyone or to callers by no identity."""
    if not isinstance(condition, dict):
        return None
    for operator, tests in condition.items():
        op, _ = _operator(str(operator))
        if not isinstance(tests, dict):
            continue
        for key, raw in tests.items():
            k, values = str(key).lower(), listed(raw)
            if not values or any(_wide(v) if k == "aws:sourceip" else v == "*" for v in values):
                continue
            if k == "aws:sourceip" and op == "notipaddress":
                return f"denies all but {key} {', '.join(values)}"
            if k in IDENTITY_KEYS and op in NEGATIVE:
                return f"denies all but {key} {', '.join(values)}"
    return None


# -- the verdict -----------------------------------------------------------------------------


def access(
    policy: str | dict[str, Any] | None,
    own: str,
    actions: Collection[str] | None = None,
    trusted: Collection[str] = (),
) -> Access:
    """Who `policy` lets in from outside account `own` (for `actions` overlapping the given
    ones, or any): `public` when anyone may call, `cross-account` when named accounts not in
    `trusted` may, else `private`. Raises PolicyError for a document that is not a policy."""
    statements = parse(policy)
    denies = [s for s in statements if str(s.get("Effect", "")).lower() == "deny"]
    grants: list[Grant] = []
    restricted: list[str] = []
    for number, statement in enumerate(statements, 1):
        if str(statement.get("Effect", "")).lower() != "allow":
            continue
        name = str(statement.get("Sid") or f"statement {number}")
        who = tuple(p for p in principals(statement, own) if p not in trusted)
        allowed = statement_actions(statement, actions)
        if not who or not allowed:
            continue
        because, unjudged = condition_verdict(statement.get("Condition"))
        if because is None:
            because = _denied(denies, allowed)
        if because is not None:
            restricted.append(f"{name}: {because}")
            continue
        raw = statement.get("Condition")
        reason = "no condition" if not raw else "its condition does not restrict the caller"
        ip = _ip_values(raw)
        if ip:
            reason = f"aws:SourceIp allows {', '.join(ip)}"
        grants.append(Grant(name, tuple(allowed), who, reason, unjudged))
    if any(g.public for g in grants):
        verdict: Verdict = "public"
    elif grants:
        verdict = "cross-account"
    else:
        verdict = "private"
    return Access(verdict, tuple(grants), tuple(restricted))


def _ip_values(condition: Any) -> list[str]:
    if not isinstance(condition, dict):
        return []
    return [
        v
        for tests in condition.values()
        if isinstance(tests, dict)
        for key, raw in tests.items()
        if str(key).lower() == "aws:sourceip"
        for v in listed(raw)
    ]


def _denied(denies: Sequence[dict[str, Any]], allowed: Sequence[str]) -> str | None:
    """Whether a Deny for everyone covering every one of `allowed` cancels or restricts them."""
    for deny in denies:
        if principals(deny, "") != ("*",):
            continue
        patterns = listed(deny.get("Action"))
        if "NotAction" in deny or not all(
            covers(patterns, a) for a in allowed if not a.startswith("all but")
        ):
            continue
        if not deny.get("Condition"):
            return f"denied to everyone by {deny.get('Sid') or 'a Deny statement'}"
        why = excluding(deny["Condition"])
        if why:
            return f"{deny.get('Sid') or 'a Deny statement'} {why}"
    return None


def requires_tls(policy: str | dict[str, Any] | None) -> bool:
    """Whether the policy denies every request made without TLS (`Deny` for everyone, any
    action of the resource, `Bool aws:SecureTransport false`), as S3's TLS-only check asks."""
    for statement in parse(policy):
        if str(statement.get("Effect", "")).lower() != "deny":
            continue
        if principals(statement, "") != ("*",):
            continue
        condition = statement.get("Condition")
        if not isinstance(condition, dict):
            continue
        for operator, tests in condition.items():
            if _operator(str(operator))[0] != "bool" or not isinstance(tests, dict):
                continue
            for key, raw in tests.items():
                if str(key).lower() == "aws:securetransport" and [
                    v.lower() for v in listed(raw)
                ] == ["false"]:
                    return True
    return False


def full_admin(policy: str | dict[str, Any] | None) -> bool:
    """Whether an identity policy allows every action on every resource (`*:*`) without a
    condition: administrator access, whatever the policy's name."""
    for statement in parse(policy):
        if str(statement.get("Effect", "")).lower() != "allow" or statement.get("Condition"):
            continue
        if "*" in listed(statement.get("Action")) and "*" in listed(statement.get("Resource")):
            return True
    return False
