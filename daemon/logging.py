"""Logging set up once: structlog and stdlib `logging` into one stream, JSON lines or console.

Every line passes the redaction processor first; nothing here may ever write a credential —
not from our own events, not from a library's log record, not from a traceback.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Callable, Mapping, MutableMapping
from typing import IO, Any, Literal

import structlog
from structlog.stdlib import ProcessorFormatter
from structlog.typing import Processor

MASK = "***"
MIN_KNOWN_SECRET_LEN = 8

# Libraries that are chatty at INFO; quiet unless the user asked for debug.
NOISY_LOGGERS = ("apscheduler", "httpx", "httpcore", "apprise")

# Values under these keys are masked whole, whatever they look like.
SENSITIVE_KEYS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "authorization",
        "access_token",
        "refresh_token",
        "client_secret",
        "aws_secret_access_key",
        "private_key",
    }
)

_Sub = str | Callable[[re.Match[str]], str]

# Key names whose value is a secret in `name=value` text (query strings, env dumps, CLI args).
_SENSITIVE_NAME = (
    r"(?:[A-Za-z0-9]+[_.-])*"
    r"(?:password|passwd|pwd|token|api[_-]?key|apikey|secret|secret[_-]?key|private[_-]?key)"
)

# A value some earlier rule already masked (`sk-ant-***`) keeps its more informative form.
_UNMASKED = r"(?![^\s'\",;&]*\*\*\*)"


def _keep_prefix(match: re.Match[str]) -> str:
    return match.group(1) + MASK


def _auth_header(match: re.Match[str]) -> str:
    scheme = match.group(2)
    return match.group(1) + (f"{scheme} " if scheme else "") + MASK


# Order matters: specific token shapes first, then the generic `name=value` rules.
_PATTERNS: tuple[tuple[re.Pattern[str], _Sub], ...] = (
    (
        re.compile(
            r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)",
            re.S,
        ),
        lambda m: f"-----BEGIN {m.group(1)}PRIVATE KEY----- {MASK}",
    ),
    (
        re.compile(
            r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?)(?:(bearer|basic|token|bot)\s+)?+"
            rf"{_UNMASKED}[^\s'\",;]+"
        ),
        _auth_header,
    ),
    (re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]{8,}=*"), _keep_prefix),
    (re.compile(r"\b(sk-(?:ant-|proj-|svcacct-|admin-)?)[A-Za-z0-9_\-]{20,}"), _keep_prefix),
    (re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"), _keep_prefix),
    (
        re.compile(
            r"(?i)(\b(?:aws_?)?secret_?access_?key[\"']?\s*[:=]\s*[\"']?)"
            r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"
        ),
        _keep_prefix,
    ),
    (re.compile(r"\b(xox[abposr]-|xapp-)[A-Za-z0-9\-]+"), _keep_prefix),
    (re.compile(r"\b(gh[pousr]_)[A-Za-z0-9]{20,}"), _keep_prefix),
    (re.compile(r"\b(github_pat_)[A-Za-z0-9_]{20,}"), _keep_prefix),
    (re.compile(r"\b(AIza)[0-9A-Za-z_\-]{30,}"), _keep_prefix),
    (
        re.compile(r"\b(eyJ)[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"),
        _keep_prefix,
    ),
    (
        re.compile(r"(hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9_/\-]+"),
        _keep_prefix,
    ),
    # apprise URLs that carry their tokens in the path: slack://A/B/C/#chan → slack://***/#chan
    (
        re.compile(r"\b((?:slack|discord|tgram|msteams)://)[A-Za-z0-9_@.\-]+(?:/[A-Za-z0-9_\-]+)*"),
        _keep_prefix,
    ),
    # user:password@host in any URL; the user name stays (it says which account). Passwords
    # may hold an unescaped '/': a rare '@' in a path after a port is over-masked instead.
    (
        re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^/\s:@'\"]*:)[^\s@'\"]+@"),
        lambda m: m.group(1) + MASK + "@",
    ),
    (re.compile(rf"(?i)(\b(?:x-goog-|x-)?api-key\s*:\s*){_UNMASKED}[^\s'\",;]+"), _keep_prefix),
    # name=value (query strings, env, CLI); `secret:NAME` references are not secrets.
    (
        re.compile(rf"(?i)(?<![A-Za-z0-9])({_SENSITIVE_NAME}\s*=\s*[\"']?){_UNMASKED}[^\s&;,'\"]+"),
        _keep_prefix,
    ),
    # "name": "value" / 'name': 'value' (JSON, Python reprs, YAML with quotes).
    (
        re.compile(rf"(?i)([\"']{_SENSITIVE_NAME}[\"']?\s*:\s*[\"']){_UNMASKED}[^\"']+"),
        _keep_prefix,
    ),
)


class _KnownSecrets:
    """Exact secret values resolved at runtime; process-wide, so every redactor masks them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        value = value.strip()
        if len(value) < MIN_KNOWN_SECRET_LEN or value in self._values:
            return
        with self._lock:
            values = self._values | {value}
            # Longest first, so a secret that contains another is masked whole.
            alternatives = sorted(values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in alternatives))
            self._values = values

    def clear(self) -> None:
        with self._lock:
            self._values = frozenset()
            self._pattern = None

    def sub(self, text: str) -> str:
        pattern = self._pattern  # one read: a concurrent add() swaps it whole
        return text if pattern is None else pattern.sub(MASK, text)


_KNOWN = _KnownSecrets()


class Redactor:
    """A structlog processor that masks credentials in every string of the event dict.

    Also usable directly: `Redactor().redact(text)`, or the module's `redact(text)`.
    `Redactor.add_known(value)` registers an exact secret (a resolved API key, a webhook
    URL) so that it is masked even when no pattern matches it.
    """

    @staticmethod
    def add_known(value: str) -> None:
        """Mask `value` wherever it appears, in every redactor; under 8 characters: ignored."""
        _KNOWN.add(value)

    @staticmethod
    def clear_known() -> None:
        """Forget every registered value (for tests; rotated keys may as well stay masked)."""
        _KNOWN.clear()

    def redact(self, text: str) -> str:
        text = _KNOWN.sub(text)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def redact_value(self, value: Any) -> Any:
        """Strings masked, dicts/lists/tuples walked, other objects masked through their repr."""
        if isinstance(value, str):
            return self.redact(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return {key: self._redact_item(key, item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_value(item) for item in value]
        # Renderers show other objects by repr: mask that, but keep the object when it is clean.
        text = repr(value)
        masked = self.redact(text)
        return value if masked == text else masked

    def _redact_item(self, key: Any, value: Any) -> Any:
        if (
            isinstance(key, str)
            and key.lower() in SENSITIVE_KEYS
            and isinstance(value, str)
            and value
            and not value.startswith("secret:")
        ):
            return MASK
        return self.redact_value(value)

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in list(event_dict.items()):
            if key.startswith("_"):  # ProcessorFormatter's _record / _from_structlog
                continue
            event_dict[key] = self._redact_item(key, value)
        return event_dict


REDACTOR = Redactor()
"""The redactor `configure()` installs by default (stateless: known secrets are shared)."""


def redact(text: str) -> str:
    """Mask credentials in `text` with the process-wide redactor (for errors, reports, …)."""
    return REDACTOR.redact(text)


def add_known_secret(value: str) -> None:
    """Same as `Redactor.add_known(value)`."""
    Redactor.add_known(value)


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_LEVELS |= {"error": logging.ERROR, "critical": logging.CRITICAL}


def configure(
    level: str = "info",
    fmt: Literal["auto", "json", "console"] = "auto",
    stream: IO[str] | None = None,
    *,
    redactor: Redactor | None = None,
) -> None:
    """Route structlog and stdlib logging to `stream` (default: `sys.stdout` at call time).

    JSON lines when `fmt` is "json", or "auto" and the stream is not a terminal (journald,
    launchd log files); console otherwise. Calling again replaces the previous setup.
    """
    numeric = _LEVELS.get(level.lower())
    if numeric is None:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(_LEVELS)}")
    out = sys.stdout if stream is None else stream
    is_tty = _isatty(out)
    as_json = fmt == "json" or (fmt == "auto" and not is_tty)
    redact_processor = REDACTOR if redactor is None else redactor

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=is_tty)
    )
    formatter = ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            ProcessorFormatter.remove_processors_meta,
            # Tracebacks become text before redaction so they are masked too (the console
            # renderer then prints them plain instead of pretty).
            structlog.processors.format_exc_info,
            redact_processor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    handler.set_name("watchkeeper")

    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == "watchkeeper":
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(
            logging.NOTSET if numeric <= logging.DEBUG else logging.WARNING
        )

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.UnicodeDecoder(),
            ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a reconfigure (tests, a reload changing log_level) reaches every logger.
        cache_logger_on_first_use=False,
    )


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        return False
