"""Fuzzed configuration: whatever the file holds, `load_settings` returns Settings or raises a
ConfigError whose every line is `file: key: message` — never another exception — and
`watchkeeper config validate` exits 0 or 2 without a traceback.

Inputs: random TOML documents (random tables, keys and values, biased towards the real table
and key names), and mutations of config.example.toml (keys deleted, values of the wrong type,
unknown keys, bad durations, crons, URLs, model references, time zones, dependency cycles,
duplicate names), serialised back to TOML — and, on the text, broken syntax and bytes that
are not UTF-8.
"""

from __future__ import annotations

import copy
import datetime
import json
import math
import re
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from daemon.config.load import load_settings
from daemon.config.settings import Settings
from daemon.errors import ConfigError
from tests import DATA
from tests.reliability import child_env, cli

pytestmark = pytest.mark.reliability

EXAMPLE = (DATA / "config.example.toml").read_text(encoding="utf-8")
LINE = re.compile(r"^.+?: .+")
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
)

# -- a small TOML writer (the standard library only reads TOML) ---------------------------------

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: str) -> str:
    return key if _BARE.match(key) else _string(key)


def _string(text: str) -> str:
    # JSON's escapes are TOML's, except that TOML also forbids a raw DEL.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, datetime.date | datetime.time):  # a datetime is a date too
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def dumps(doc: dict[str, Any], prefix: tuple[str, ...] = ()) -> str:
    """TOML for `doc`: plain keys first, then sub-tables, then arrays of tables."""
    lines: list[str] = []
    nested: list[tuple[str, Any]] = []
    for key, value in doc.items():
        if isinstance(value, dict) or _is_table_array(value):
            nested.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    text = "\n".join(lines) + ("\n" if lines else "")
    for key, value in nested:
        path = (*prefix, key)
        header = ".".join(_key(k) for k in path)
        if isinstance(value, dict):
            text += f"\n[{header}]\n" + dumps(value, path)
        else:
            for item in value:
                text += f"\n[[{header}]]\n" + dumps(item, path)
    return text


# -- strategies ---------------------------------------------------------------------------------

TABLES = [
    "daemon", "incidents", "baselines", "delivery", "providers", "routing", "prices", "budget",
    "triage", "escalation", "digest", "redaction", "notify", "checks",
]  # fmt: skip
KEYS = [
    "name", "type", "url", "kind", "interval", "timeout", "cron", "severity", "depends_on",
    "failure_threshold", "state_dir", "retention", "jitter", "max_concurrency", "host", "port",
    "command", "base_url", "api", "local", "key", "daily_usd", "monthly_usd", "min_severity",
    "timezone", "enabled", "events", "tags", "signing_secret", "headers", "expected_status",
    "health_listen", "log_level", "record_type", "json_path", "max_latency", "cycle_window",
]  # fmt: skip
text = st.text(st.characters(codec="utf-8"), max_size=30)
names = st.one_of(st.sampled_from(KEYS + TABLES), text.filter(bool))
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    text,
    st.sampled_from(["30s", "5m", "0s", "1d", "-1s", "*/5 * * * *", "http://127.0.0.1:1/x"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(names, inner, max_size=4)),
    max_leaves=12,
)
random_documents = st.dictionaries(
    st.one_of(st.sampled_from(TABLES), names),
    st.one_of(
        values,
        st.dictionaries(names, values, max_size=6),
        st.lists(st.dictionaries(names, values, max_size=6), min_size=1, max_size=3),
    ),
    max_size=6,
)

BAD_DURATIONS = [
    "", "5", "-1s", "1x", "1.5.3s", "s", "∞", "1e9d", "99999999999999999999d", "30 s", "5M",
    -5, True, [], {}, 1e308, float("nan"), float("inf"),
]  # fmt: skip
BAD_CRONS = [
    "", "* * *", "61 * * * *", "*/0 * * * *", "a b c d e", "* * * * * * *", "0 25 * * *",
    "@hourly", "0 0 30 2 *", 5, ["0", "8"],
]  # fmt: skip
BAD_URLS = [
    "", "http://", "ht!tp://x", "json://", "http://[::1", "http://h:99999/", "secret:",
    "secret: ", "slack://", "mailto://", "::::", "127.0.0.1:8080", "ftp://x/y", "http:// x/",
    "https://user:pa ss@h/", "\x00", "http://h/\r\nX-Injected: 1", 80, ["http://h/"],
]  # fmt: skip
BAD_REFS = ["nope", "unknown/x", "ollama/", "/x", "a b/c", "", " ollama/gemma4:27b ", 3]
BAD_OTHER = [
    "", "nonsense", "Mars/Olympus_Mons", "../../etc", "127.0.0.1", "127.0.0.1:0", ":8080",
    "high ", "CRITICAL", -1, 0, 10**6, 2**63 - 1, -(2**63), 1.5, True, [], {}, [[]], [{}],
]  # fmt: skip


MUTATIONS = [
    "delete", "wrong", "unknown", "duration", "cron", "url", "ref", "other", "cycle",
    "duplicate", "check_type",
]  # fmt: skip
DURATION_KEYS = {
    "retention", "jitter", "cycle_window", "drain_timeout", "flap_window", "reminder_interval",
    "window", "timeout", "retry_initial", "retry_max", "max_age", "interval", "max_latency",
}  # fmt: skip
TARGETS: dict[str, Callable[[tuple[Any, ...]], bool]] = {
    "duration": lambda p: p[-1] in DURATION_KEYS,
    "cron": lambda p: p[-1] == "cron",
    "url": lambda p: p[-1] in ("url", "base_url", "health_listen"),
    "ref": lambda p: p[0] in ("routing", "prices") and len(p) > 1,
}
"""Where each kind of bad value goes (any path when the document has none left)."""


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside `node` (dict keys and list indexes)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*prefix, index)
            yield from paths(value, (*prefix, index))


def parent_of(doc: dict[str, Any], path: tuple[Any, ...]) -> Any:
    node: Any = doc
    for step in path[:-1]:
        node = node[step]
    return node


@st.composite
def mutated_example(draw: st.DrawFn, *, allow_state_dir: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = tomllib.loads(EXAMPLE)
    # The example's targets are commented out (it is safe to copy); mutate real ones.
    doc.setdefault("notify", []).append(
        {
            "name": "local-webhook",
            "url": "json://127.0.0.1:8788/watchkeeper",
            "min_severity": "info",
            "events": ["opened", "changed", "resolved", "report", "budget"],
        }
    )
    doc["notify"].append(
        {
            "name": "automation",
            "kind": "webhook",
            "url": "secret:n8n_webhook_url",
            "signing_secret": "secret:n8n_signing_key",
            "headers": {"X-Team": "sre"},
        }
    )
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        everything = [p for p in paths(doc) if allow_state_dir or "state_dir" not in p]
        if not everything:
            break
        kind = draw(st.sampled_from(MUTATIONS))
        wanted = TARGETS.get(kind)
        targeted = [p for p in everything if wanted is not None and wanted(p)]
        path = draw(st.sampled_from(targeted or everything))
        leaf = path[-1]
        parent = parent_of(doc, path)
        if kind == "delete":
            if isinstance(parent, dict):
                del parent[leaf]
            else:
                parent.pop(leaf)
        elif kind == "wrong":
            parent[leaf] = draw(values)
        elif kind == "unknown":
            target = parent if isinstance(parent, dict) else doc
            target[draw(names)] = draw(values)
        elif kind in ("duration", "cron", "url", "ref", "other"):
            pool = {
                "duration": BAD_DURATIONS,
                "cron": BAD_CRONS,
                "url": BAD_URLS,
                "ref": BAD_REFS,
                "other": BAD_OTHER,
            }[kind]
            # a copy: the pools hold mutable values ([], {}, [[]]) that a later mutation of
            # this document may write into; sharing them would change the pool itself
            parent[leaf] = copy.deepcopy(draw(st.sampled_from(pool)))
        elif kind == "cycle" and isinstance(doc.get("checks"), list) and doc["checks"]:
            checks = [c for c in doc["checks"] if isinstance(c, dict)]
            if checks:
                ring = draw(st.lists(st.sampled_from(range(len(checks))), min_size=1, max_size=4))
                for a, b in zip(ring, [*ring[1:], ring[0]], strict=True):
                    name = checks[b].get("name", "missing")
                    checks[a]["depends_on"] = [*checks[a].get("depends_on", []), name]
        elif kind == "duplicate":
            for table in ("checks", "notify"):
                entries = doc.get(table)
                if isinstance(entries, list) and entries:
                    entries.append(dict(entries[0]) if isinstance(entries[0], dict) else {})
        elif kind == "check_type" and isinstance(doc.get("checks"), list) and doc["checks"]:
            first = doc["checks"][0]
            if isinstance(first, dict):
                first["type"] = draw(st.sampled_from(["nope", "", "HTTP", 1, "kubernetes"]))
    return doc


@st.composite
def broken_text(draw: st.DrawFn) -> bytes:
    """config.example.toml (or a mutation of it) with its text damaged."""
    base = EXAMPLE if draw(st.booleans()) else dumps(draw(mutated_example()))
    raw = base.encode()
    how = draw(st.sampled_from(["truncate", "insert", "delete_line", "duplicate_line", "bytes"]))
    if how == "truncate":
        return raw[: draw(st.integers(min_value=0, max_value=len(raw)))]
    if how == "insert":
        at = draw(st.integers(min_value=0, max_value=len(raw)))
        syntax = draw(st.sampled_from(['"', "[", "]]", "=", "\n[daemon]\n", "{", "'''", "\\", "#"]))
        return raw[:at] + syntax.encode() + raw[at:]
    lines = raw.split(b"\n")
    index = draw(st.integers(min_value=0, max_value=len(lines) - 1))
    if how == "delete_line":
        return b"\n".join(lines[:index] + lines[index + 1 :])
    if how == "duplicate_line":
        return b"\n".join(lines[: index + 1] + lines[index:])
    junk = draw(st.sampled_from([b"\xff\xfe", b"\xc3\x28", b"\x00", b"\xed\xa0\x80"]))
    return b"\n".join([*lines[:index], junk + lines[index], *lines[index + 1 :]])


# -- the property -------------------------------------------------------------------------------


@contextmanager
def config_file(content: bytes) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="wk-fuzz-") as tmp:
        path = Path(tmp) / "config.toml"
        path.write_bytes(content)
        yield path


def assert_loads_or_explains(content: bytes) -> None:
    with config_file(content) as path:
        try:
            loaded = load_settings(path)
        except ConfigError as exc:
            message = str(exc)
            assert message.strip(), "an empty ConfigError"
            assert exc.problems, "a ConfigError without problems"
            # CR and LF are what terminals and journald break lines at
            for line in re.split(r"\r\n|\r|\n", message):
                assert LINE.match(line), f"not `file: key: message`: {line!r}\n{message}"
                assert line.startswith(str(path)), f"does not name the file: {line!r}"
        else:
            assert isinstance(loaded, Settings)


def test_the_example_config_loads() -> None:
    assert_loads_or_explains(EXAMPLE.encode())
    with config_file(EXAMPLE.encode()) as path:
        assert isinstance(load_settings(path), Settings)


def test_the_writer_round_trips_the_example() -> None:
    doc = tomllib.loads(EXAMPLE)
    assert tomllib.loads(dumps(doc)) == doc


@FUZZ
@given(random_documents)
def test_random_documents_load_or_explain_themselves(doc: dict[str, Any]) -> None:
    text = dumps(doc)
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        assume(False)  # a writer limitation (e.g. a key both plain and a table), not a finding
    assert_loads_or_explains(text.encode())


@FUZZ
@given(mutated_example())
def test_mutations_of_the_example_load_or_explain_themselves(doc: dict[str, Any]) -> None:
    assert_loads_or_explains(dumps(doc).encode())


@FUZZ
@given(broken_text())
def test_broken_text_loads_or_explains_itself(content: bytes) -> None:
    assert_loads_or_explains(content)


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(mutated_example(allow_state_dir=False), st.just(tomllib.loads(EXAMPLE))))
def test_config_validate_exits_0_or_2_and_never_shows_a_traceback(doc: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory(prefix="wk-validate-") as tmp:
        if isinstance(doc.get("daemon"), dict):
            doc["daemon"]["state_dir"] = "state"  # never a directory outside this test's
        path = Path(tmp) / "config.toml"
        path.write_text(dumps(doc), encoding="utf-8")
        env = child_env(STATE_DIRECTORY=str(Path(tmp) / "default-state"))
        done = cli("config", "validate", "--config", str(path), env=env)
    assert done.returncode in (0, 2), (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    if done.returncode == 0:
        assert done.stdout.strip() == "ok"
    else:
        lines = done.stderr.strip().splitlines()
        assert lines and all(LINE.match(line) for line in lines), done.stderr


@pytest.mark.parametrize(
    "content",
    [
        b"[daemon\nstate_dir = 'state'\n",
        b"\xff\xfe[daemon]\n",
        b"[daemon]\nstate_dir = 'state'\njitter = '5 parsecs'\n",
        b"[daemon]\nstate_dir = 'state'\n[[checks]]\nname = 'a'\ntype = 'tcp'\nhost = 'h'\n"
        b"port = 1\ndepends_on = ['b']\n[[checks]]\nname = 'b'\ntype = 'tcp'\nhost = 'h'\n"
        b"port = 1\ndepends_on = ['a']\n",
        b"[daemon]\nstate_dir = 'state'\nretention = '99999999999999999999d'\n",
        b"[daemon]\nstate_dir = 'state'\nretention = inf\n",
    ],
    ids=[
        "broken-syntax",
        "not-utf8",
        "bad-duration",
        "dependency-cycle",
        "huge-duration",
        "infinite-duration",
    ],
)
def test_config_validate_explains_a_broken_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(content)
    done = cli("config", "validate", "--config", str(path), env=child_env())
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines and all(line.startswith(f"{path}: ") for line in lines), done.stderr
