"""Logging set up once: structlog and stdlib `logging` into one stream, JSON lines or console.

Every line passes the redaction processor first; nothing here may ever write a credential —
not from our own events, not from a library's log record, not from a traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import IO, Any, Literal

import structlog
from structlog.stdlib import ProcessorFormatter
from structlog.typing import Processor

from daemon.redaction import KNOWN_SECRETS, MASK, is_secret_name, mask_credentials

# Libraries that are chatty at INFO; quiet unless the user asked for debug.
NOISY_LOGGERS = ("apscheduler", "httpx", "httpcore", "apprise")


class Redactor:
    """A structlog processor that masks credentials in every string of the event dict, with
    the credential patterns of `daemon.redaction` (the ones prompts are redacted with).

    Also usable directly: `Redactor().redact(text)`, or the module's `redact(text)`.
    `Redactor.add_known(value)` registers an exact secret (a resolved API key, a webhook
    URL) so that it is masked even when no pattern matches it — here, and in every prompt
    `daemon.redaction.PromptRedactor` prepares for a non-local model.
    """

    @staticmethod
    def add_known(value: str) -> None:
        """Mask `value` wherever it appears, in every redactor; under 8 characters: ignored."""
        KNOWN_SECRETS.add(value)

    @staticmethod
    def clear_known() -> None:
        """Forget every registered value (for tests; rotated keys may as well stay masked)."""
        KNOWN_SECRETS.clear()

    def redact(self, text: str) -> str:
        return mask_credentials(text)

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
            and is_secret_name(key)
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


def json_default(value: Any) -> Any:
    """How a JSON log line shows what json cannot: times as ISO 8601 (never
    `datetime.datetime(…)`), durations in seconds, decimals, paths and enums as text, models
    as their JSON; anything else by `str`, masked."""
    import dataclasses
    import enum
    from datetime import date, datetime, time, timedelta
    from decimal import Decimal
    from pathlib import PurePath

    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal | PurePath):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return REDACTOR.redact_value(dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return REDACTOR.redact_value(dataclasses.asdict(value))
    return REDACTOR.redact(str(value))


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
        structlog.processors.JSONRenderer(default=json_default)
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
