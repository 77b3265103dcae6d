"""Redaction patterns, known secrets, and the one logging pipeline (structlog + stdlib)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from daemon import logging as wk_logging
from daemon.logging import Redactor, configure

# Fake credentials, shaped like the real thing.
ANTHROPIC = "sk-ant-api03-" + "a1B2c3D4e5" * 9 + "-xyzAA"
OPENAI_PROJ = "sk-proj-" + "Q9w8E7r6T5y4" * 4
OPENAI_LEGACY = "sk-" + "Zx12Cv34Bn56Ml78" * 3
AWS_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_STS_ID = "ASIAY34FZKBOKMUTVV7A"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SLACK_HOOK = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
SLACK_BOT = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
GITHUB = "ghp_" + "A1b2C3d4E5f6G7h8I9j0" * 2
GITHUB_PAT = "github_pat_11ABCDEFG0" + "abcdefghij_KLMNOPQRST" * 3
GOOGLE = "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


@pytest.fixture
def redactor() -> Redactor:
    return Redactor()


@pytest.fixture(autouse=True)
def _forget_known_secrets() -> Iterator[None]:
    yield
    Redactor.clear_known()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """configure() changes process-wide state; put it back for the tests that follow."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    noisy = {name: logging.getLogger(name).level for name in wk_logging.NOISY_LOGGERS}
    structlog_config = structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, noisy_level in noisy.items():
        logging.getLogger(name).setLevel(noisy_level)
    structlog.configure(**structlog_config)


# --- patterns ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Authorization: Bearer {OPENAI_PROJ}", "Authorization: Bearer ***"),
        ("authorization=Basic dXNlcjpwYXNzd29yZA==", "authorization=Basic ***"),
        ("sent header Bearer abcdef0123456789.xyz", "sent header Bearer ***"),
        (f"key {ANTHROPIC} rejected", "key sk-ant-*** rejected"),
        (f"key {OPENAI_PROJ} rejected", "key sk-proj-*** rejected"),
        (f"key {OPENAI_LEGACY} rejected", "key sk-*** rejected"),
        (f"id {AWS_ID} and {AWS_STS_ID}", "id AKIA*** and ASIA***"),
        (f"aws_secret_access_key = {AWS_SECRET}", "aws_secret_access_key = ***"),
        (f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}", "AWS_SECRET_ACCESS_KEY=***"),
        ("GET /api?user=bob&password=hunter22&page=2", "GET /api?user=bob&password=***&page=2"),
        ("passwd=letmein99", "passwd=***"),
        (
            "https://api.example.com/x?token=abc123def&v=1",
            "https://api.example.com/x?token=***&v=1",
        ),
        ("api_key=0123456789abcdef", "api_key=***"),
        ("apikey=0123456789abcdef", "apikey=***"),
        ("client_secret=s3cr3tvalue", "client_secret=***"),
        ("secret=topsecretvalue", "secret=***"),
        ('{"password": "hunter22", "user": "bob"}', '{"password": "***", "user": "bob"}'),
        ("x-api-key: 0123456789abcdef", "x-api-key: ***"),
        (
            "postgres://app:Tr0ub4dor@db.internal:5432/app",
            "postgres://app:***@db.internal:5432/app",
        ),
        ("mailtos://alerts:pa55word@smtp.example.com", "mailtos://alerts:***@smtp.example.com"),
        (f"posting to {SLACK_HOOK}", "posting to https://hooks.slack.com/services/***"),
        ("slack://TokenA/TokenB/TokenC/#ops", "slack://***/#ops"),
        (f"bot {SLACK_BOT}", "bot xoxb-***"),
        ("app xoxp-1234-5678-abcdef", "app xoxp-***"),
        (f"gh {GITHUB}", "gh ghp_***"),
        (f"gh {GITHUB_PAT}", "gh github_pat_***"),
        (f"google {GOOGLE}", "google AIza***"),
        (f"jwt {JWT} end", "jwt eyJ*** end"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN RSA PRIVATE KEY----- ***",
        ),
    ],
)
def test_credential_is_masked(redactor: Redactor, text: str, expected: str) -> None:
    assert redactor.redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-05-09T07:35:25.123456Z",
        "incident 6f1c2e8a-3b4d-4c5e-9f60-718293a4b5c6 opened",
        "check api-health: latency 812 ms",
        "GET http://cache.internal:8080/health returned 503 in 41 ms",
        "session-cache failing — incident #42 (opened 14:02 UTC)",
        "input_tokens=1204 output_tokens=151 max_tokens=500",
        "url = secret:slack_webhook",
        "no key for anthropic: run `watchkeeper keys set anthropic`",
        "disk-usage / at 91% (task-runner-3, risk-assessment)",
        "version 1.2.3 on api.example.com",
        "https://grafana.internal:3000/d/abc?orgId=1",
        "mailto://smtp.example.com?to=ops@example.com",
        "authorization failed for user bob",
    ],
)
def test_ordinary_text_is_untouched(redactor: Redactor, text: str) -> None:
    assert redactor.redact(text) == text


def test_redaction_is_idempotent(redactor: Redactor) -> None:
    once = redactor.redact(f"Authorization: Bearer {ANTHROPIC} x-api-key: {ANTHROPIC}")
    assert redactor.redact(once) == once


# --- known secrets ----------------------------------------------------------------------


def test_known_secret_is_masked_without_a_pattern(redactor: Redactor) -> None:
    Redactor.add_known("c0here-plain-key-8842")
    assert redactor.redact("using c0here-plain-key-8842 now") == "using *** now"


def test_short_known_values_are_ignored(redactor: Redactor) -> None:
    Redactor.add_known("abc1234")
    assert redactor.redact("abc1234 stays") == "abc1234 stays"


def test_longest_known_secret_wins(redactor: Redactor) -> None:
    Redactor.add_known("webhook-secret")
    Redactor.add_known("webhook-secret-extended")
    assert redactor.redact("v=webhook-secret-extended.") == "v=***."


# --- the processor ----------------------------------------------------------------------


def test_processor_walks_nested_structures(redactor: Redactor) -> None:
    event: dict[str, Any] = {
        "event": f"calling with {ANTHROPIC}",
        "headers": {"Authorization": f"Bearer {OPENAI_PROJ}", "Accept": "application/json"},
        "targets": [SLACK_HOOK, ("t", f"id {AWS_ID}")],
        "count": 3,
        "ok": True,
        "missing": None,
    }
    out = redactor(None, "info", event)
    assert out["event"] == "calling with sk-ant-***"
    assert out["headers"] == {"Authorization": "***", "Accept": "application/json"}
    assert out["targets"] == ["https://hooks.slack.com/services/***", ["t", "id AKIA***"]]
    assert (out["count"], out["ok"], out["missing"]) == (3, True, None)


def test_processor_masks_sensitive_keys_but_not_references(redactor: Redactor) -> None:
    out = redactor(None, "info", {"event": "x", "password": "pw", "token": "secret:gh_token"})
    assert out["password"] == "***"
    assert out["token"] == "secret:gh_token"


def test_processor_masks_objects_through_their_repr(redactor: Redactor) -> None:
    class Target:
        def __repr__(self) -> str:
            return f"Target(url='{SLACK_HOOK}')"

    clean = object()
    out = redactor(None, "info", {"event": "x", "target": Target(), "clean": clean})
    assert out["target"] == "Target(url='https://hooks.slack.com/services/***')"
    assert out["clean"] is clean


def test_module_redact_uses_process_wide_redactor() -> None:
    assert wk_logging.redact(f"key {GITHUB}") == "key ghp_***"


# --- configure --------------------------------------------------------------------------


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def _json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_structlog_event_is_one_json_object_per_line() -> None:
    out = io.StringIO()
    configure("info", "json", out)
    structlog.get_logger("watchkeeper.test").info("cycle done", checks=12)
    (line,) = _json_lines(out)
    assert line["event"] == "cycle done"
    assert line["checks"] == 12
    assert line["level"] == "info"
    assert line["logger"] == "watchkeeper.test"
    assert line["timestamp"].endswith("Z")
    assert "T" in line["timestamp"]


def test_stdlib_library_log_arrives_masked_in_json() -> None:
    out = io.StringIO()
    configure("info", "json", out)
    logging.getLogger("apprise").warning("failed to post to https://user:pw@host.example/x")
    (line,) = _json_lines(out)
    assert line["event"] == "failed to post to https://user:***@host.example/x"
    assert line["logger"] == "apprise"
    assert line["level"] == "warning"
    assert "timestamp" in line


def test_structlog_event_values_are_masked() -> None:
    out = io.StringIO()
    configure("info", "json", out)
    structlog.get_logger("t").warning("provider refused", key=ANTHROPIC, url=SLACK_HOOK)
    (line,) = _json_lines(out)
    assert line["key"] == "sk-ant-***"
    assert line["url"] == "https://hooks.slack.com/services/***"
    assert ANTHROPIC not in out.getvalue()


def test_tracebacks_are_masked() -> None:
    out = io.StringIO()
    configure("info", "json", out)
    try:
        raise RuntimeError(f"connect failed: postgres://app:{AWS_SECRET}@db/app")
    except RuntimeError:
        logging.getLogger("daemon.store.database").exception("store failed")
    (line,) = _json_lines(out)
    assert "RuntimeError" in line["exception"]
    assert AWS_SECRET not in out.getvalue()


def test_known_secret_registered_after_configure_is_masked_in_output() -> None:
    out = io.StringIO()
    configure("info", "json", out)
    Redactor.add_known("plain-cohere-key-123456")
    structlog.get_logger("t").info("using plain-cohere-key-123456")
    logging.getLogger("httpx").warning("retrying with plain-cohere-key-123456")
    assert [line["event"] for line in _json_lines(out)] == ["using ***", "retrying with ***"]


def test_known_secret_is_shared_by_every_redactor() -> None:
    wk_logging.add_known_secret("shared-secret-value-99")
    assert Redactor().redact("shared-secret-value-99") == "***"
    assert wk_logging.redact("x shared-secret-value-99") == "x ***"


def test_custom_redactor_is_used_by_configure() -> None:
    class Shouting(Redactor):
        def redact(self, text: str) -> str:
            return super().redact(text).upper()

    out = io.StringIO()
    configure("info", "json", out, redactor=Shouting())
    structlog.get_logger("t").info("quiet")
    assert _json_lines(out)[0]["event"] == "QUIET"


def test_noisy_libraries_are_quiet_at_info() -> None:
    out = io.StringIO()
    configure("info", "json", out)
    logging.getLogger("httpx").info("HTTP Request: GET http://x")
    logging.getLogger("apscheduler.scheduler").info("Added job")
    logging.getLogger("httpx").warning("pool exhausted")
    assert [line["event"] for line in _json_lines(out)] == ["pool exhausted"]


def test_noisy_libraries_speak_at_debug() -> None:
    out = io.StringIO()
    configure("debug", "json", out)
    logging.getLogger("httpx").info("HTTP Request: GET http://x")
    assert [line["event"] for line in _json_lines(out)] == ["HTTP Request: GET http://x"]


def test_level_filters_our_events() -> None:
    out = io.StringIO()
    configure("warning", "json", out)
    log = structlog.get_logger("t")
    log.info("hidden")
    log.warning("shown")
    assert [line["event"] for line in _json_lines(out)] == ["shown"]


def test_auto_is_json_when_not_a_tty() -> None:
    out = io.StringIO()
    configure("info", "auto", out)
    structlog.get_logger("t").info("hello")
    assert _json_lines(out)[0]["event"] == "hello"


def test_auto_is_console_on_a_tty() -> None:
    out = _TTY()
    configure("info", "auto", out)
    structlog.get_logger("t").info("hello", checks=3)
    text = out.getvalue()
    assert "hello" in text
    assert "checks" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_console_forced_on_a_pipe_has_no_colors() -> None:
    out = io.StringIO()
    configure("info", "console", out)
    structlog.get_logger("t").info("hello", key=GITHUB)
    text = out.getvalue()
    assert "\x1b[" not in text
    assert "ghp_***" in text
    assert GITHUB not in text


def test_reconfigure_replaces_the_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure("info", "json", first)
    configure("info", "json", second)
    structlog.get_logger("t").info("once")
    assert first.getvalue() == ""
    assert len(_json_lines(second)) == 1


def test_unknown_level_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure("loud", "json", io.StringIO())


async def test_lines_logged_while_a_check_runs_name_the_check() -> None:
    """The check's name is bound for the run: a library's own log line (here httpx's request
    line, a stdlib record) carries it too, and nothing of it outlives the run."""
    import asyncio

    import httpx

    from daemon.engine.pipeline import run_check
    from jobs.base import CheckContext
    from jobs.http import HttpCheck

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    out = io.StringIO()
    configure("debug", "json", out)
    spec = HttpCheck(name="api-health", type="http", url=f"http://127.0.0.1:{port}/")
    try:
        async with httpx.AsyncClient() as client:
            [result] = await run_check(spec, CheckContext(http=client))
        structlog.get_logger("t").info("after the run")
    finally:
        server.close()
    assert result.status == "ok"
    lines = _json_lines(out)
    requests = [line for line in lines if line.get("logger") == "httpx"]
    assert requests and all(line["check"] == "api-health" for line in requests)
    assert "check" not in lines[-1]


def test_json_lines_show_times_as_iso_and_other_objects_readably() -> None:
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal
    from pathlib import Path

    from daemon.models import Severity

    out = io.StringIO()
    configure("info", "json", out)
    opened = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
    structlog.get_logger("t").info(
        "incident opened",
        at=opened,
        after=timedelta(minutes=5),
        cost=Decimal("0.0236"),
        state_dir=Path("/var/lib/watchkeeper"),
        severity=Severity.HIGH,
        seen={"b", "a"},
    )
    (line,) = _json_lines(out)
    assert line["at"] == "2026-12-04T09:30:00+00:00"
    assert line["after"] == 300.0
    assert line["cost"] == "0.0236"
    assert line["state_dir"] == "/var/lib/watchkeeper"
    assert line["severity"] == "high"
    assert line["seen"] == ["a", "b"]
    assert "datetime.datetime(" not in out.getvalue()
