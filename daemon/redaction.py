"""Credential patterns shared by log masking and prompt redaction, and the prompt redactor.

No credential may leave this machine in a prompt for a non-local model, nor appear in a log
line; a placeholder never maps back to its secret outside the process that made it.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import threading
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

MASK = "***"
MIN_KNOWN_SECRET_LEN = 8
_MAX_ROUNDS = 4

# Text that is already masked (`***`, by the log redactor) or redacted (a placeholder): no
# pattern may match across it, which is what makes both kinds of redaction idempotent.
PLACEHOLDER_RE = re.compile(r"\[REDACTED:[A-Za-z0-9_-]+:\d+\]")
_PROTECTED = re.compile(rf"\*\*\*|{PLACEHOLDER_RE.pattern}")

Validator = Callable[[re.Match[str]], bool]
Replace = Callable[[re.Match[str], int, int], str]  # (match, secret start, end) → new match text


@dataclass(frozen=True)
class CredentialPattern:
    """One kind of secret. Only the regex's `secret` group (or the whole match) is secret;
    a `hint` group at its start (`sk-ant-`) survives log masking, as does the text around it.

    A regex that scans a run of characters starts behind a lookbehind excluding them, so a
    long run of near-misses is scanned once, not once per position (no quadratic time).
    """

    kind: str
    regex: re.Pattern[str]
    valid: Validator | None = None
    log_form: Callable[[re.Match[str]], str] | None = None  # replaces the whole match in logs

    def secret_span(self, match: re.Match[str]) -> tuple[int, int]:
        return match.span("secret") if "secret" in self.regex.groupindex else match.span()


Replacer = Callable[[CredentialPattern], Replace]


def _p(kind: str, regex: str, flags: int = 0, **checks: Callable[..., Any]) -> CredentialPattern:
    return CredentialPattern(kind, re.compile(regex, flags), **checks)


# Values that only refer to a secret, or say nothing about it: `secret:NAME`, `${VAR}`,
# `<set to the key 'password' in secret 'db'>` (kubectl), `16 bytes` (kubectl describe secret),
# Terraform's `var.db_password`.
_NOT_A_VALUE = (
    r"(?![<{\[|>=]|secret:|\$[{(A-Za-z_]|\d+ bytes\b|(?:var|local|module|data)\.\w"
    r"|(?i:null|none|nil|true|false)(?![^\s,;&'\"]))"
)
_PASSWORD_WORDS = ("password", "passwd", "passphrase", "pwd")
_SECRET_WORDS = (
    "secret", "token", "api_key", "apikey", "access_key", "secret_key", "private_key",
    "secret_key_base", "signing_key", "encryption_key", "master_key",
)  # fmt: skip


def _key_alternatives(words: Sequence[str]) -> tuple[str, str]:
    """(snake, Camel) regex alternations: db_password / DB-PASSWORD, dbPassword / ApiKey."""
    snake = "|".join(word.replace("_", "[_.-]?") for word in words)
    camel = "|".join("".join(part.capitalize() for part in word.split("_")) for word in words)
    return snake, camel


def _keyed(kind: str, words: Sequence[str]) -> CredentialPattern:
    """`name=value`, `name: value`, `"name": "value"`, `--name value`, where the name ends
    with one of `words` (so `DB_PASSWORD_FILE`, `max_tokens`, `secretKeyRef` are not)."""
    snake, camel = _key_alternatives(words)
    return _p(
        kind,
        r"(?P<flag>(?<![\w-])--(?:[A-Za-z0-9]+-)*)?"
        r"(?<!(?i:existing))(?<!(?i:existing_))"  # Helm's existingSecret names a Secret
        rf"(?P<key>(?<![A-Za-z0-9])(?i:{snake})|(?<=[A-Za-z0-9])(?:{camel}))(?:[_-]?v?\d{{1,3}})?"
        r"(?:[\"']?[ \t]*=>?[ \t]*|[\"'][ \t]*:[ \t]*|:[ \t]+|(?(flag)[ \t]+|(?!)))"
        rf"(?P<q>[\"'])?{_NOT_A_VALUE}(?(flag)(?!-))"
        r"(?P<secret>(?(q)[^\"'\r\n]+|[^\s&;,'\"]+))",
        # The shell's own PWD=/home/app in an env dump is a directory, not a password.
        valid=lambda m: m["key"].lower() != "pwd" or not m["secret"].startswith("/"),
    )


def _pem_log_form(match: re.Match[str]) -> str:
    return f"-----BEGIN {match['label']}PRIVATE KEY----- {MASK}"


def _is_base64_private_key(match: re.Match[str]) -> bool:
    head = match["secret"][:64]
    try:
        return b"PRIVATE KEY" in base64.b64decode(head[: len(head) // 4 * 4])
    except (binascii.Error, ValueError):
        return False


_EOL = r"(?:\r?\n|\\n)"  # a real newline, or an escaped one inside a JSON string

# Order matters: whole structures and specific token shapes first, generic `name=value` last
# (a later pattern never matches over what an earlier one already replaced). Deliberately no
# entropy guessing: image digests (sha256:…), git SHAs and UUIDs name content, not access.
CREDENTIAL_PATTERNS: tuple[CredentialPattern, ...] = (
    _p(
        "private_key",
        r"-----BEGIN (?P<label>[A-Z0-9 ]*)PRIVATE KEY(?: BLOCK)?-----"
        rf"{_EOL}?(?P<secret>.*?)"
        rf"(?:{_EOL}?-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|(?=[\"'])|\Z)",
        re.S,
        log_form=_pem_log_form,
    ),
    # A PEM key base64-encoded again, as in `kubectl get secret -o yaml` (`tls.key: LS0t…`).
    _p(
        "private_key",
        r"(?<![A-Za-z0-9+/])(?P<secret>LS0tLS1CRUdJTi[A-Za-z0-9+/]{20,}={0,2})",
        valid=_is_base64_private_key,
    ),
    # Opaque bearer tokens have a digit somewhere; "Bearer authentication failed" is prose.
    _p("bearer_token", r"(?i)\bbearer[ \t]+(?=[\w.~+/-]*\d)(?P<secret>[\w.~+/-]{8,}=*)"),
    _p(
        "authorization",
        r"\bauthorization[\"']?[ \t]*[:=][ \t]*[\"']?(?:(?:bearer|basic|token|bot)[ \t]+)?+"
        rf"{_NOT_A_VALUE}(?P<secret>[^\s'\",;]+)",
        re.I,
    ),
    _p("cookie", r"(?i)(?<![\w-])(?:set-)?cookie[\"']?[ \t]*:[ \t]*[\"']?(?P<secret>[^\r\n\"']+)"),
    _p("anthropic_api_key", r"(?<![\w-])(?P<secret>(?P<hint>sk-ant-)[\w-]{20,})"),
    _p(
        "openai_api_key",
        r"(?<![\w-])(?P<secret>(?P<hint>sk-(?P<sub>(?:proj|svcacct|admin)-)?)"
        r"(?(sub)[\w-]{20,}|[A-Za-z0-9]{32,}))",
    ),
    _p("google_api_key", r"(?<![\w-])(?P<secret>(?P<hint>AIza)[\w-]{30,})"),
    _p("github_token", r"(?<![\w-])(?P<secret>(?P<hint>gh[pousr]_|github_pat_)\w{20,})"),
    _p("gitlab_token", r"(?<![\w-])(?P<secret>(?P<hint>glpat-)[\w-]{20,})"),
    _p("slack_token", r"(?<![\w-])(?P<secret>(?P<hint>xox[abposr]-|xapp-)[A-Za-z0-9-]+)"),
    _p("stripe_key", r"(?<![\w-])(?P<secret>(?P<hint>[sr]k_(?:live|test)_)[A-Za-z0-9]{16,})"),
    _p("aws_access_key", r"(?<![A-Za-z0-9])(?P<secret>(?P<hint>AKIA|ASIA)[A-Z0-9]{16})\b"),
    _p("jwt", r"(?<![\w-])(?P<secret>(?P<hint>eyJ)[\w-]{5,}\.[\w-]{5,}\.[\w-]*)"),
    _p(
        "aws_secret_key",
        r"(?<![A-Za-z0-9])(?:aws[_-]?)?secret[_-]?access[_-]?key[\"']?"
        r"(?:[ \t]*[:=][ \t]*|[ \t]+)[\"']?(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
        re.I,
    ),
    _p(
        "cohere_api_key",
        r"(?<![A-Za-z0-9])(?:cohere|co)[_-]?api[_-]?key[\"']?[ \t]*[:=][ \t]*[\"']?"
        r"(?P<secret>[A-Za-z0-9]{40})(?![A-Za-z0-9])",
        re.I,
    ),
    _p("slack_webhook", r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>[\w/-]+)"),
    # apprise URLs that carry their tokens in the path: slack://A/B/C/#chan.
    _p(
        "url_credentials",
        r"(?<![\w+.-])(?:slack|discord|tgram|msteams)://(?P<secret>[\w@.-]+(?:/[\w-]+)*)",
    ),
    # scheme://user:password@host — databases, brokers, any URL. The user name stays (it
    # says which account). A password may hold a lone '/', never '@' (as in SQLAlchemy); a
    # port then a path (`host:8080/a@b`) is not a password.
    _p(
        "password",
        r"(?<![a-z0-9+.-])[a-z][a-z0-9+.-]{0,30}://[^/\s:@'\"]*:(?!\d{1,5}/)"
        r"(?P<secret>(?:[^\s@'\"/]|/(?!/))+)@",
        re.I,
    ),
    # curl -u user:password (a numeric uid:gid, as in `docker run -u 1000:1000`, is not).
    _p(
        "password",
        r"(?<![\w-])(?:-u|--user)[ \t]+[\"']?[^\s:'\"]+:(?!\d+[\s\"']|\d+$)"
        r"(?P<secret>[^\s'\"]+)",
    ),
    # Go's MySQL DSN (user:password@tcp(host:3306)/db) and Oracle JDBC (user/password@host).
    _p("password", r"(?<![\w.:/-])[\w.-]+:(?P<secret>[^\s@'\"/:]+)@(?:tcp|unix)\("),
    _p("password", r"(?<![\w:])jdbc:oracle:[a-z]+:[^/\s@:]+/(?P<secret>[^\s@'\"/]+)@", re.I),
    _p(
        "azure_key",
        r"(?<![A-Za-z0-9])(?:Account|SharedAccess)Key[ \t]*=[ \t]*"
        r"(?P<secret>[A-Za-z0-9+/]{20,}={0,2})",
        re.I,
    ),
    _p("sas_signature", r"(?<![\w-])sig=(?P<secret>[A-Za-z0-9%+/=]{16,})", re.I),
    _keyed("password", _PASSWORD_WORDS),
    _keyed("secret", _SECRET_WORDS),
)

_SNAKE_WORDS, _CAMEL_WORDS = _key_alternatives(_PASSWORD_WORDS + _SECRET_WORDS)
_SECRET_NAME = re.compile(
    rf"(?:.*[^A-Za-z0-9])?(?i:{_SNAKE_WORDS})(?:[_-]?v?\d{{1,3}})?"
    rf"|.*[A-Za-z0-9](?:{_CAMEL_WORDS})(?:[_-]?v?\d{{1,3}})?"
    r"|(?i:(?:proxy-)?authorization|(?:set-)?cookie|(?:aws_?)?secret_?access_?key)"
)


def is_secret_name(name: str) -> bool:
    """Does a field called `name` hold a secret (`password`, `db_password`, `apiKey`, …)?"""
    return _SECRET_NAME.fullmatch(name) is not None


# --- optional extras: personal data and topology ----------------------------------------------


def _is_identifying_ip(match: re.Match[str]) -> bool:
    """Loopback, 0.0.0.0, netmasks and multicast identify no one, and say a lot to a model."""
    try:
        ip = ipaddress.ip_address(match["secret"])
    except ValueError:  # `12:34:56` and MAC addresses look like IPv6 to the regex
        return False
    return not (ip.is_loopback or ip.is_unspecified or ip.is_reserved or ip.is_multicast)


def _is_host(match: re.Match[str]) -> bool:
    # Kubernetes label keys and API groups (app.kubernetes.io/name, rbac.authorization.k8s.io).
    return not match["secret"].lower().endswith(("kubernetes.io", "k8s.io"))


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
# A closed list of top-level names, so file names (config.example.toml), Python modules
# (daemon.llm.base) and versions are never hosts. ccTLDs that are also file extensions
# (.py .sh .rs .md .pl .so .tf .in) are left out on purpose.
_TLDS = (
    "internal|local|localdomain|lan|home|corp|intranet|private|svc|consul|arpa"
    "|com|net|org|io|dev|app|cloud|co|ai|info|biz|tech|xyz|site|online|gov|edu|mil|int"
    "|eu|uk|us|de|fr|nl|es|it|ch|at|be|se|no|dk|fi|ie|pt|ca|au|nz|jp|cn|br|ru|kr|sg|hk|za"
)
EMAIL = _p(
    "email",
    r"(?<![\w.%+-])(?P<secret>[\w.%+-]+@(?:[A-Za-z0-9-]++\.)+[A-Za-z]{2,})(?![A-Za-z0-9-])",
)
IPV4 = _p(
    "ip",
    rf"(?<![A-Za-z0-9.])(?P<secret>(?:{_OCTET}\.){{3}}{_OCTET})(?!\d|\.\d)",
    valid=_is_identifying_ip,
)
IPV6 = _p(
    "ip",
    r"(?<![A-Za-z0-9:.])(?P<secret>(?:[0-9A-Fa-f]{0,4}:){2,7}"
    r"(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?)(?![A-Za-z0-9:]|\.\d)",
    valid=_is_identifying_ip,
)
HOSTNAME = _p(
    "hostname",
    r"(?<![A-Za-z0-9.-])(?P<secret>(?:[A-Za-z0-9][A-Za-z0-9-]*+(?<!-)\.){2,}"
    rf"(?i:{_TLDS}))(?![A-Za-z0-9-]|\.[A-Za-z0-9]|/v\d)",
    valid=_is_host,
)


# --- known values ------------------------------------------------------------------------------


class KnownSecrets:
    """Exact secret values resolved at runtime (API keys, `secret:NAME` values); one
    process-wide registry, so every log line and every prompt redacts them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: frozenset[str] = frozenset()  # swapped whole, never changed in place

    def add(self, value: str) -> None:
        """Remember `value`; under 8 characters it is ignored (it would mask ordinary words)."""
        value = value.strip()
        if len(value) >= MIN_KNOWN_SECRET_LEN and value not in self.values:
            with self._lock:
                self.values = self.values | {value}

    def clear(self) -> None:
        with self._lock:
            self.values = frozenset()


KNOWN_SECRETS = KnownSecrets()


@lru_cache(maxsize=8)
def _known_pattern(values: frozenset[str]) -> CredentialPattern | None:
    """One alternation of exact values, longest first (a secret containing another is
    replaced whole); compiled again only when the set of values changes."""
    alternatives = sorted(values, key=len, reverse=True)
    return _p("known_secret", "|".join(map(re.escape, alternatives))) if values else None


# --- applying patterns -------------------------------------------------------------------------


def _substitute(pattern: CredentialPattern, text: str, replacer: Replacer) -> str:
    """Apply `pattern`, skipping matches whose secret touches already protected text;
    `replacer(pattern)(match, start, end)` returns what the whole match becomes."""
    if pattern.regex.search(text) is None:  # the common case, kept cheap: log lines
        return text
    replace = replacer(pattern)
    spans = [m.span() for m in _PROTECTED.finditer(text)]
    starts, ends = [start for start, _ in spans], [end for _, end in spans]

    def one(match: re.Match[str]) -> str:
        start, end = pattern.secret_span(match)
        i = bisect_left(starts, end)
        if start == end or (i and ends[i - 1] > start):
            return match.group()
        if pattern.valid is not None and not pattern.valid(match):
            return match.group()
        return replace(match, start, end)

    return pattern.regex.sub(one, text)


def _apply(patterns: Sequence[CredentialPattern], text: str, replacer: Replacer) -> str:
    # A replacement can give a neighbour the boundary it lacked (`CUST-1eyJ…` → `[…]eyJ…`),
    # so go round until nothing changes: each round that changes anything shrinks the
    # unprotected text, and in practice the second round is the last.
    for _ in range(_MAX_ROUNDS):
        before = text
        for pattern in patterns:
            text = _substitute(pattern, text, replacer)
        if text == before:
            break
    return text


def _splice(match: re.Match[str], start: int, end: int, new: str) -> str:
    text = match.string
    return text[match.start() : start] + new + text[end : match.end()]


def mask_credentials(text: str) -> str:
    """Log-line masking: every credential pattern and known value becomes `***`, keeping a
    non-secret hint (`sk-ant-***`, `AKIA***`) so a reader still knows what it was."""
    known = _known_pattern(KNOWN_SECRETS.values)
    patterns = (known, *CREDENTIAL_PATTERNS) if known else CREDENTIAL_PATTERNS
    return _apply(patterns, text, lambda pattern: partial(_mask, pattern))


def _mask(pattern: CredentialPattern, match: re.Match[str], start: int, end: int) -> str:
    if pattern.log_form is not None:
        return pattern.log_form(match)
    hint = match.groupdict().get("hint") or ""
    return _splice(match, start, end, hint + MASK)


# --- prompts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtraPattern:
    """A user pattern from `[redaction] patterns`; a `(?P<secret>…)` group narrows what is
    replaced to that part of the match (the rest stays as context)."""

    name: str
    regex: str


@dataclass(frozen=True)
class Redacted:
    text: str
    counts: dict[str, int]
    """Replacements made in this text, by the kind named in their placeholder."""


class PromptRedactor:
    """Replaces credentials (and, if asked, emails, IPs, hostnames, user patterns) with
    placeholders like `[REDACTED:password:1]`, stable for the life of this instance: the same
    secret always gets the same placeholder, a different one never does."""

    def __init__(
        self,
        extra: Iterable[ExtraPattern] = (),
        emails: bool = False,
        ips: bool = False,
        hostnames: bool = False,
        known: Iterable[str] = (),
    ) -> None:
        optional = [(emails, EMAIL), (ips, IPV4), (ips, IPV6), (hostnames, HOSTNAME)]
        user = [self._compile(p) for p in extra]
        # Credentials first: a user pattern matching inside a token would leave the rest bare.
        self._patterns = (*CREDENTIAL_PATTERNS, *(p for on, p in optional if on), *user)
        self._known = frozenset(v.strip() for v in known if len(v.strip()) >= MIN_KNOWN_SECRET_LEN)
        self._lock = threading.Lock()
        self._placeholders: dict[str, tuple[str, str]] = {}  # secret → (placeholder, kind)
        self._issued: Counter[str] = Counter()

    @staticmethod
    def _compile(extra: ExtraPattern) -> CredentialPattern:
        if PLACEHOLDER_RE.fullmatch(f"[REDACTED:{extra.name}:1]") is None:
            raise ValueError(f"redaction pattern name {extra.name!r}: use letters, digits, _ or -")
        try:
            return _p(extra.name, extra.regex)
        except re.error as exc:
            raise ValueError(f"redaction pattern {extra.name!r}: {exc}") from None

    def redact(self, text: str) -> Redacted:
        counts: Counter[str] = Counter()
        known = _known_pattern(self._known | KNOWN_SECRETS.values)
        # Known values first: a pattern matching part of one would leave the rest readable.
        patterns = (known, *self._patterns) if known else self._patterns
        text = _apply(patterns, text, lambda pattern: partial(self._replace, pattern.kind, counts))
        return Redacted(text, dict(counts))

    def _replace(
        self, kind: str, counts: Counter[str], match: re.Match[str], start: int, end: int
    ) -> str:
        secret = match.string[start:end]
        with self._lock:
            found = self._placeholders.get(secret)
            if found is None:  # a secret seen before keeps its first placeholder, and kind
                self._issued[kind] += 1
                found = (f"[REDACTED:{kind}:{self._issued[kind]}]", kind)
                self._placeholders[secret] = found
        placeholder, issued_kind = found
        counts[issued_kind] += 1
        return _splice(match, start, end, placeholder)
