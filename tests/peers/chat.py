"""Where chat notifications land in tests: loopback HTTPS peers that answer exactly like
Slack's incoming webhooks, Slack's Web API (chat.postMessage) and a Microsoft Teams Workflows
webhook do — status codes, bodies and Retry-After included — and refuse what the real
services refuse: Slack a message whose Block Kit breaks its documented limits, Teams a card
that does not validate against the official Adaptive Card schema (vendored in
`adaptive_cards/`, see its SOURCE.md).

TLS is real: a trustme CA signs each peer's certificate; `ChatPeers.ca_file` is what a client
(or a subprocess, through SSL_CERT_FILE) must trust.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
import trustme

from tests.peers.receivers import ReceivedRequest

SCHEMA = Path(__file__).parent / "adaptive_cards" / "adaptive-card-1.5.0.json"

# Slack's documented Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks)
BLOCKS_MAX = 50
HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELDS_MAX = 10
FIELD_MAX = 2000
CONTEXT_ELEMENTS_MAX = 10
BLOCK_ID_MAX = 255
MESSAGE_TEXT_MAX = 40000

Answer = tuple[int, bytes, dict[str, str]]


# -- what the services accept -----------------------------------------------------------------


def _text_object(value: Any, where: str, limit: int, *, plain_only: bool = False) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: not a text object"]
    kind = value.get("type")
    allowed = {"plain_text": {"type", "text", "emoji"}, "mrkdwn": {"type", "text", "verbatim"}}
    if kind not in allowed or (plain_only and kind != "plain_text"):
        return [f"{where}: type {kind!r} not allowed here"]
    problems = [f"{where}: unknown key {k!r}" for k in value if k not in allowed[kind]]
    text = value.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append(f"{where}: text must be a non-empty string")
    elif len(text) > limit:
        problems.append(f"{where}: text is {len(text)} characters, more than {limit}")
    return problems


def block_kit_problems(message: Any) -> list[str]:
    """Why Slack would answer `invalid_blocks` (or `invalid_payload`): Slack's documented
    limits and shapes for the block types watchkeeper may send; [] when it would accept."""
    if not isinstance(message, dict):
        return ["the payload is not a JSON object"]
    text, blocks = message.get("text"), message.get("blocks")
    if text is None and blocks is None:
        return ["neither text nor blocks"]
    problems = []
    if text is not None and (not isinstance(text, str) or len(text) > MESSAGE_TEXT_MAX):
        problems.append("text must be a string of at most 40000 characters")
    if blocks is None:
        return problems
    if not isinstance(blocks, list) or not 0 < len(blocks) <= BLOCKS_MAX:
        return [*problems, "blocks must be a list of 1 to 50 blocks"]
    for index, block in enumerate(blocks):
        where = f"blocks[{index}]"
        if not isinstance(block, dict):
            problems.append(f"{where}: not an object")
            continue
        kind = block.get("type")
        if len(str(block.get("block_id", ""))) > BLOCK_ID_MAX:
            problems.append(f"{where}: block_id longer than 255")
        if kind == "header":
            problems += [
                f"{where}: unknown key {k!r}"
                for k in block
                if k not in {"type", "text", "block_id"}
            ]
            problems += _text_object(
                block.get("text"), f"{where}.text", HEADER_MAX, plain_only=True
            )
        elif kind == "section":
            known = {"type", "text", "fields", "block_id", "accessory", "expand"}
            problems += [f"{where}: unknown key {k!r}" for k in block if k not in known]
            if "text" not in block and "fields" not in block:
                problems.append(f"{where}: a section needs text or fields")
            if "text" in block:
                problems += _text_object(block["text"], f"{where}.text", SECTION_TEXT_MAX)
            fields = block.get("fields", [])
            if not isinstance(fields, list) or len(fields) > FIELDS_MAX:
                problems.append(f"{where}: fields must be a list of at most 10")
            else:
                for n, item in enumerate(fields):
                    problems += _text_object(item, f"{where}.fields[{n}]", FIELD_MAX)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 0 < len(elements) <= CONTEXT_ELEMENTS_MAX:
                problems.append(f"{where}: elements must be a list of 1 to 10")
            else:
                for n, item in enumerate(elements):
                    problems += _text_object(item, f"{where}.elements[{n}]", FIELD_MAX)
        elif kind == "divider":
            problems += [
                f"{where}: unknown key {k!r}" for k in block if k not in {"type", "block_id"}
            ]
        else:
            problems.append(f"{where}: block type {kind!r} is not one watchkeeper sends")
    return problems


@cache
def _card_validator() -> Any:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    return validator(schema)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def adaptive_card_problems(card: Any) -> list[str]:
    """Why the card is not a valid Adaptive Card (the official 1.5 schema), or uses an
    element or property newer than the `version` it declares; [] when valid."""
    problems = [
        f"{'/'.join(map(str, e.absolute_path)) or 'card'}: {e.message[:200]}"
        for e in _card_validator().iter_errors(card)
    ]
    if problems or not isinstance(card, dict):
        return problems
    declared = _version(str(card.get("version", "0")))
    definitions = _card_validator().schema["definitions"]

    def walk(node: Any, where: str) -> None:
        if isinstance(node, list):
            for n, item in enumerate(node):
                walk(item, f"{where}[{n}]")
            return
        if not isinstance(node, dict):
            return
        definition = definitions.get(str(node.get("type")), {})
        if _version(definition.get("version", "1.0")) > declared:
            problems.append(f"{where}: {node['type']} needs version {definition['version']}")
        properties = definition.get("properties") or {}
        for key, value in node.items():
            needs = _property_version(properties.get(key) or {}, definitions)
            if needs and _version(needs) > declared:
                problems.append(f"{where}.{key}: needs version {needs}")
            walk(value, f"{where}.{key}")

    walk(card.get("body", []), "body")
    return problems


def _property_version(prop: dict[str, Any], definitions: dict[str, Any]) -> str | None:
    """The version a property needs: its own, or that of the type it refers to
    (`TextBlock.style` → `TextBlockStyle`, 1.5)."""
    if prop.get("version"):
        return str(prop["version"])
    for option in prop.get("anyOf", []):
        ref = str(option.get("$ref", ""))
        if ref.startswith("#/definitions/"):
            version = definitions.get(ref.removeprefix("#/definitions/"), {}).get("version")
            if version:
                return str(version)
    return None


def teams_message_problems(message: Any) -> list[str]:
    """What a Workflows trigger posting "a card to a channel" cannot read: the envelope
    `{"type": "message", "attachments": [{"contentType": …adaptive, "content": card}]}`."""
    if not isinstance(message, dict) or message.get("type") != "message":
        return ["the body is not a message activity"]
    attachments = message.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return ["the message has no attachments"]
    first = attachments[0]
    if first.get("contentType") != "application/vnd.microsoft.card.adaptive":
        return ["attachments[0] is not an adaptive card"]
    return adaptive_card_problems(first.get("content"))


# -- the peers --------------------------------------------------------------------------------


@dataclass
class ChatPeer:
    """Records every request; `answer_next(status, body, headers)` scripts the next answers
    (a 429 with Retry-After, a 500); otherwise the peer answers as the service would."""

    host: str = "127.0.0.1"
    port: int = 0
    requests: list[ReceivedRequest] = field(default_factory=list)
    _script: list[Answer] = field(default_factory=list)
    _lock: threading.Condition = field(default_factory=threading.Condition)

    @property
    def base(self) -> str:
        return f"https://{self.host}:{self.port}"

    def answer_next(self, status: int, body: bytes | str = b"", **headers: str) -> None:
        data = body.encode() if isinstance(body, str) else body
        with self._lock:
            self._script.append(
                (status, data, {k.replace("_", "-"): v for k, v in headers.items()})
            )

    @property
    def accepted(self) -> list[Any]:
        """The JSON bodies of the requests the peer accepted, in order."""
        with self._lock:
            return [r.json() for r in self.requests if 200 <= r.status < 300]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedRequest]:
        with self._lock:
            self._lock.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)

    def respond(self, request: ReceivedRequest) -> Answer:
        with self._lock:
            scripted = self._script.pop(0) if self._script else None
        answer = scripted or self.answer(request)
        with self._lock:
            request.status = answer[0]
            self.requests.append(request)
            self._lock.notify_all()
        return answer

    def answer(self, request: ReceivedRequest) -> Answer:
        raise NotImplementedError


@dataclass
class SlackWebhookPeer(ChatPeer):
    """`POST /services/T…/B…/secret`, as hooks.slack.com answers it: 200 `ok`; 400
    `invalid_payload` (not JSON), `no_text` (neither text nor blocks), `invalid_blocks`;
    404 `no_service` for any other path (a removed webhook)."""

    path: str = "/services/T0WATCHKP/B0WATCHKP/hookcanary5e1f"

    @property
    def url(self) -> str:
        return self.base + self.path

    def answer(self, request: ReceivedRequest) -> Answer:
        text = {"Content-Type": "text/html"}
        if request.path != self.path:
            return 404, b"no_service", text
        try:
            message = request.json()
        except ValueError:
            return 400, b"invalid_payload", text
        if not isinstance(message, dict) or (not message.get("text") and not message.get("blocks")):
            return 400, b"no_text", text
        if block_kit_problems(message):
            return 400, b"invalid_blocks", text
        return 200, b"ok", text


@dataclass
class SlackApiPeer(ChatPeer):
    """`POST /api/chat.postMessage` with a bot token, as slack.com answers it: HTTP 200 with
    `{"ok": true, "channel", "ts", "message"}`, or `{"ok": false, "error": …}` —
    `not_authed`, `invalid_auth`, `channel_not_found`, `not_in_channel`, `invalid_blocks`,
    `no_text` — plus Slack's `missing_charset` warning for a JSON body sent without one."""

    token: str = "xoxb-000-111-tokencanary7d3c"
    channels: dict[str, str] = field(default_factory=lambda: {"#ops": "C0OPS", "C0OPS": "C0OPS"})
    outside: set[str] = field(default_factory=lambda: {"#private"})
    """Channels that exist but the bot was not invited to."""

    @property
    def api_url(self) -> str:
        return self.base + "/api"

    def answer(self, request: ReceivedRequest) -> Answer:
        def reply(payload: dict[str, Any]) -> Answer:
            return (
                200,
                json.dumps(payload).encode(),
                {"Content-Type": "application/json; charset=utf-8"},
            )

        if urlsplit(request.path).path != "/api/chat.postMessage":
            return 404, b"", {}
        auth = request.headers.get("Authorization", "")
        if not auth:
            return reply({"ok": False, "error": "not_authed"})
        if auth != f"Bearer {self.token}":
            return reply({"ok": False, "error": "invalid_auth"})
        try:
            message = request.json()
        except ValueError:
            return reply({"ok": False, "error": "invalid_json"})
        channel = str(message.get("channel", ""))
        if channel in self.outside:
            return reply({"ok": False, "error": "not_in_channel"})
        if channel not in self.channels:
            return reply({"ok": False, "error": "channel_not_found"})
        if not message.get("text") and not message.get("blocks"):
            return reply({"ok": False, "error": "no_text"})
        if block_kit_problems(message):
            return reply({"ok": False, "error": "invalid_blocks"})
        answer: dict[str, Any] = {
            "ok": True,
            "channel": self.channels[channel],
            "ts": f"1795788120.{len(self.requests) + 1:06d}",
            "message": {
                "type": "message",
                "text": message.get("text", ""),
                "blocks": message.get("blocks", []),
            },
        }
        if "charset" not in request.headers.get("Content-Type", ""):
            answer["warning"] = "missing_charset"
            answer["response_metadata"] = {"warnings": ["missing_charset"]}
        return reply(answer)


@dataclass
class TeamsWorkflowPeer(ChatPeer):
    """A Teams Workflows (Power Automate) "when a webhook request is received" trigger:
    202 Accepted with an empty body; 401 `DirectApiAuthorizationRequired` for a bad `sig`;
    404 `WorkflowNotFound` for another path; 400 `TriggerInputSchemaMismatch` for a body that
    is not a message with a valid Adaptive Card."""

    workflow: str = "2b9a6f0e5c8d4d2f8f7e1a3b4c5d6e7f"
    sig: str = "sigcanary0Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2"

    @property
    def url(self) -> str:
        return (
            f"{self.base}/workflows/{self.workflow}/triggers/manual/paths/invoke"
            f"?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={self.sig}"
        )

    def answer(self, request: ReceivedRequest) -> Answer:
        def error(status: int, code: str, message: str) -> Answer:
            body = json.dumps({"error": {"code": code, "message": message}}).encode()
            return status, body, {"Content-Type": "application/json; charset=utf-8"}

        parts = urlsplit(request.path)
        if parts.path != f"/workflows/{self.workflow}/triggers/manual/paths/invoke":
            return error(404, "WorkflowNotFound", "The workflow could not be found.")
        if parse_qs(parts.query).get("sig") != [self.sig]:
            return error(
                401, "DirectApiAuthorizationRequired", "The request must be authenticated."
            )
        try:
            message = request.json()
        except ValueError:
            return error(400, "InvalidRequestContent", "The request content is not valid JSON.")
        if teams_message_problems(message):
            return error(
                400, "TriggerInputSchemaMismatch", "The input body does not match the schema."
            )
        return 202, b"", {}


def _handler(peer: ChatPeer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = ReceivedRequest(
                self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
            )
            status, body, headers = peer.respond(request)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@dataclass
class ChatPeers:
    """Starts peers on loopback over TLS; `ca_file` is the CA a client must trust."""

    ca_file: Path
    _ca: trustme.CA
    _stops: list[Callable[[], None]] = field(default_factory=list)

    def start(self, peer: ChatPeer) -> Any:
        server = ThreadingHTTPServer((peer.host, 0), _handler(peer))
        server.daemon_threads = True
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        peer.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(5)

        self._stops.append(stop)
        return peer

    def slack_webhook(self) -> SlackWebhookPeer:
        peer: SlackWebhookPeer = self.start(SlackWebhookPeer())
        return peer

    def slack_api(self) -> SlackApiPeer:
        peer: SlackApiPeer = self.start(SlackApiPeer())
        return peer

    def teams(self) -> TeamsWorkflowPeer:
        peer: TeamsWorkflowPeer = self.start(TeamsWorkflowPeer())
        return peer

    def stop(self) -> None:
        for stop in self._stops:
            stop()


@pytest.fixture
def chat_peers(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ChatPeers]:
    """Chat peers over TLS, their CA trusted by this process (SSL_CERT_FILE, which httpx
    reads when a channel builds its SSL context)."""
    ca = trustme.CA()
    ca_file = tmp_path_factory.mktemp("chat-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    peers = ChatPeers(ca_file, ca)
    yield peers
    peers.stop()
