"""A loopback Prometheus and Alertmanager speaking their real HTTP API JSON, scripted per test.

`/api/v1/query` answers from `FakeProm.answers` (query text → answer; an unknown query is an
empty vector, as for a metric that does not exist); `/api/v2/alerts` serves `FakeProm.alerts`,
honouring `active`, `silenced`, `inhibited` and `filter` the way Alertmanager does.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.peers.targets import HttpPeer, Request

EVAL_TIME = 1732711320.123
HTML_503 = (
    b"<html><head><title>503 Service Temporarily Unavailable</title></head>\n"
    b"<body><center><h1>503 Service Temporarily Unavailable</h1></center>\n"
    b"<hr><center>nginx</center></body></html>\n"
)
_MATCHER = re.compile(
    r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(\S*))\s*$'
)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"


def _success(result_type: str, result: Any, warnings: list[str] | None = None) -> Answer:
    doc: dict[str, Any] = {
        "status": "success",
        "data": {"resultType": result_type, "result": result},
    }
    if warnings:
        doc["warnings"] = warnings
    return Answer(200, json.dumps(doc).encode())


def vector(*samples: tuple[dict[str, str], str], warnings: list[str] | None = None) -> Answer:
    """An instant vector: each sample is (labels including __name__, value as Prometheus writes
    it: "0.93", "NaN", "+Inf")."""
    result = [{"metric": labels, "value": [EVAL_TIME, value]} for labels, value in samples]
    return _success("vector", result, warnings)


def histogram_vector(labels: dict[str, str]) -> Answer:
    histogram = {"count": "12", "sum": "3.5", "buckets": [[0, "0.5", "1", "12"]]}
    return _success("vector", [{"metric": labels, "histogram": [EVAL_TIME, histogram]}])


def scalar(value: str) -> Answer:
    return _success("scalar", [EVAL_TIME, value])


def string(value: str) -> Answer:
    return _success("string", [EVAL_TIME, value])


def matrix(labels: dict[str, str], *values: str) -> Answer:
    points = [[EVAL_TIME - 60 * (len(values) - i), v] for i, v in enumerate(values)]
    return _success("matrix", [{"metric": labels, "values": points}])


def prom_error(error_type: str, message: str, status: int = 400) -> Answer:
    body = {"status": "error", "errorType": error_type, "error": message}
    return Answer(status, json.dumps(body).encode())


def alert(
    name: str,
    severity: str | None = "critical",
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    starts_at: datetime,
    silenced_by: list[str] | None = None,
    inhibited_by: list[str] | None = None,
    generator_url: str = "http://prometheus:9090/graph?g0.expr=up+%3D%3D+0",
) -> dict[str, Any]:
    """One alert as GET /api/v2/alerts returns it."""
    all_labels = {"alertname": name, **(labels or {})}
    if severity is not None:
        all_labels["severity"] = severity
    suppressed = bool(silenced_by or inhibited_by)
    stamp = "%Y-%m-%dT%H:%M:%S.%fZ"
    return {
        "labels": all_labels,
        "annotations": annotations or {},
        "startsAt": starts_at.strftime(stamp),
        "endsAt": (starts_at + timedelta(hours=4)).strftime(stamp),
        "updatedAt": starts_at.strftime(stamp),
        "generatorURL": generator_url,
        "fingerprint": hashlib.sha256(json.dumps(all_labels, sort_keys=True).encode()).hexdigest()[
            :16
        ],
        "receivers": [{"name": "slack-oncall"}],
        "status": {
            "state": "suppressed" if suppressed else "active",
            "silencedBy": silenced_by or [],
            "inhibitedBy": inhibited_by or [],
            "mutedBy": [],
        },
    }


def params(request: Request) -> list[tuple[str, str]]:
    """Query-string and form parameters of a recorded request, in order."""
    found = parse_qsl(urlsplit(request.path).query)
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        found += parse_qsl(request.body.decode())
    return found


@dataclass
class FakeProm(HttpPeer):
    answers: dict[str, Answer] = field(default_factory=dict)
    ranges: dict[str, Answer] = field(default_factory=dict)
    """`/api/v1/query_range` answers by query text (start, end and step are required)."""
    alerts: list[dict[str, Any]] = field(default_factory=list)
    prefix: str = ""
    """Path prefix the APIs live under (Mimir serves Prometheus' API under /prometheus)."""
    down: bool = False
    """Answer every request like a proxy whose backend is gone: 503 with an HTML page."""
    hang: bool = False
    ignore_filters: bool = False
    """Return every alert whatever the parameters (a proxy that drops the query string)."""
    echo_auth: bool = False
    """Refuse with 401 and echo the Authorization header back, as careless proxies do."""

    async def _route(
        self, method: str, path: str, body: bytes, writer: asyncio.StreamWriter
    ) -> None:
        request = self.requests[-1]
        route = urlsplit(path).path.removeprefix(self.prefix)
        if self.hang:
            await self.release.wait()
            return
        if self.down:
            answer = Answer(503, HTML_503, "text/html")
        elif self.echo_auth:
            echoed = request.headers.get("authorization", "")
            answer = Answer(401, f"unauthorized: {echoed}\n".encode(), "text/plain")
        elif route == "/api/v1/query" and method in ("GET", "POST"):
            answer = self._query(dict(params(request)))
        elif route == "/api/v1/query_range" and method in ("GET", "POST"):
            answer = self._range(dict(params(request)))
        elif route == "/api/v2/alerts" and method == "GET":
            answer = self._alerts(params(request))
        else:
            answer = Answer(404, b"404 page not found\n", "text/plain")
        head = [
            f"HTTP/1.1 {answer.status} Status {answer.status}",
            "Connection: close",
            f"Content-Type: {answer.content_type}",
            f"Content-Length: {len(answer.body)}",
        ]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + answer.body)
        await writer.drain()

    def _range(self, given: dict[str, str]) -> Answer:
        for name in ("query", "start", "end", "step"):
            if name not in given:
                return prom_error("bad_data", f'invalid parameter "{name}": missing')
        return self.ranges.get(given["query"], _success("matrix", []))

    def _query(self, given: dict[str, str]) -> Answer:
        if "query" not in given:
            return prom_error("bad_data", 'invalid parameter "query": parse error: no expression')
        return self.answers.get(given["query"], vector())

    def _alerts(self, given: list[tuple[str, str]]) -> Answer:
        if self.ignore_filters:
            return Answer(200, json.dumps(self.alerts).encode())
        flags = {k: v == "true" for k, v in given if k in ("active", "silenced", "inhibited")}
        matchers = []
        for key, text in given:
            if key != "filter":
                continue
            try:
                matchers.append(_parse_matcher(text))
            except ValueError as exc:
                return Answer(400, json.dumps(f"bad matcher format: {text}: {exc}").encode())
        kept = [
            a
            for a in self.alerts
            if (flags.get("silenced", True) or not a["status"]["silencedBy"])
            and (flags.get("inhibited", True) or not a["status"]["inhibitedBy"])
            and all(m(a["labels"]) for m in matchers)
        ]
        return Answer(200, json.dumps(kept).encode())


def _parse_matcher(text: str) -> Any:
    found = _MATCHER.match(text)
    if found is None:
        raise ValueError("not name=value")
    name, op, quoted, bare = found.groups()
    value = bare if quoted is None else re.sub(r"\\(.)", r"\1", quoted)
    try:
        pattern = re.compile(value) if op in ("=~", "!~") else None
    except re.error as exc:
        raise ValueError(f"error parsing regexp: {exc}") from exc

    def matches(labels: dict[str, str]) -> bool:
        actual = labels.get(name, "")
        if pattern is not None:
            return (pattern.fullmatch(actual) is not None) == (op == "=~")
        return (actual == value) == (op == "=")

    return matches
