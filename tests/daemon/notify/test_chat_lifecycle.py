"""An incident's whole life through the daemon's real outbox, as a user runs it: `watchkeeper
run --once` opens it, a second run resolves it, and Slack (incoming webhook and bot token),
Teams, a JSON webhook and an apprise target each receive both messages in their own format —
with no model anywhere, one short "AI off" line instead of a paragraph per provider. Then
`watchkeeper notify test` gives each target's real reason."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daemon.store.database import DB_NAME
from tests.daemon.notify.chat_common import texts
from tests.peers.chat import ChatPeers, block_kit_problems, teams_message_problems
from tests.peers.receivers import WebhookReceiver

PY = sys.executable
AI_OFF = "AI off: no model reachable — run `watchkeeper models`"


def wk(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "WATCHKEEPER_CONFIG"} | env
    return subprocess.run(
        [PY, "-m", "daemon", *args], capture_output=True, text=True, timeout=90, env=full
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_opened_then_resolved_arrive_in_every_format_with_one_ai_off_line(
    tmp_path: Path,
    chat_peers: ChatPeers,
    make_webhook_receiver: Callable[[], WebhookReceiver],
) -> None:
    hook, bot, teams = chat_peers.slack_webhook(), chat_peers.slack_api(), chat_peers.teams()
    webhook, apprise_json = make_webhook_receiver(), make_webhook_receiver()
    service = free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[daemon]
state_dir = "state"

[providers.ollama]
base_url = "http://127.0.0.1:{free_port()}"

[[notify]]
name = "slack-hook"
kind = "slack"
url = "secret:WK_SLACK_HOOK"

[[notify]]
name = "slack-bot"
kind = "slack"
token = "secret:WK_SLACK_BOT"
channel = "#ops"
api_url = "{bot.api_url}"

[[notify]]
name = "teams"
kind = "teams"
url = "secret:WK_TEAMS_URL"

[[notify]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:{webhook.port}/hook"

[[notify]]
name = "classic"
url = "{apprise_json.url()}"

[[checks]]
name = "session-cache"
type = "tcp"
host = "127.0.0.1"
port = {service}
timeout = "2s"
severity = "high"
failure_threshold = 1
""",
        encoding="utf-8",
    )
    env = {
        "SSL_CERT_FILE": str(chat_peers.ca_file),
        "WK_SLACK_HOOK": hook.url,
        "WK_SLACK_BOT": bot.token,
        "WK_TEAMS_URL": teams.url,
    }
    opened = wk("run", "--once", "--config", str(config), env=env)
    assert opened.returncode == 0, opened.stdout + opened.stderr
    assert "notifications delivered: 5" in opened.stdout
    with socket.create_server(("127.0.0.1", service)):  # the service comes back
        resolved = wk("run", "--once", "--config", str(config), env=env)
    assert resolved.returncode == 0, resolved.stdout + resolved.stderr
    assert "notifications delivered: 5" in resolved.stdout

    # Slack, both ways: valid Block Kit, accepted; the AI-off line once, no triage section
    for peer in (hook, bot):
        assert [r.status for r in peer.requests] == [200, 200]
        first, second = peer.accepted
        assert block_kit_problems(first) == [] and block_kit_problems(second) == []
        assert texts(first["blocks"])[0] == "🟠 [HIGH] session-cache failing — incident #1"
        assert texts(second["blocks"])[0].startswith("✅ [RESOLVED] session-cache — incident #1")
        notes = [t for t in texts(first["blocks"]) if "AI off" in t]
        assert notes == [AI_OFF]
        assert not any(t.startswith("*Triage*") for t in texts(first["blocks"]))
        assert "no key" not in str(first)
    assert bot.accepted[0]["channel"] == "#ops"

    # Teams: two valid cards, accepted with 202, the same line
    assert [r.status for r in teams.requests] == [202, 202]
    card = teams.accepted[0]
    assert teams_message_problems(card) == []
    runs = [t for t in texts(card) if t]
    assert "AI off: no model reachable — run " in runs and "watchkeeper models" in runs
    assert "no key" not in str(card)

    # the JSON webhook and apprise: the exact line in the Markdown every target shares
    payload = webhook.messages[0]
    assert (payload["ai_off"], payload["ai_note"]) == (True, AI_OFF)
    assert payload["text"].splitlines()[-1] == AI_OFF
    assert "**Triage**" not in payload["text"] and "no key" not in payload["text"]
    assert payload["triage"]["by"].startswith("deterministic: ollama/gemma4:27b")  # detail kept
    classic = apprise_json.messages[0]
    assert AI_OFF in classic["message"] and "no key" not in classic["message"]
    assert [m["event"] for m in webhook.messages] == ["opened", "resolved"]

    # the URL's secret parts and the token never reach the output or the database
    output = opened.stdout + opened.stderr + resolved.stdout + resolved.stderr
    stored = b"".join(p.read_bytes() for p in (tmp_path / "state").glob(f"{DB_NAME}*"))
    for secret in (hook.path.rsplit("/", 1)[1], bot.token, teams.sig):
        assert secret not in output
        assert secret.encode() not in stored


def test_notify_test_prints_each_targets_real_reason(
    tmp_path: Path,
    chat_peers: ChatPeers,
    make_webhook_receiver: Callable[[], WebhookReceiver],
) -> None:
    hook, teams = chat_peers.slack_webhook(), chat_peers.teams()
    missing = make_webhook_receiver()
    missing.fail_next(1, status=404)
    closed = free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[daemon]
state_dir = "state"

[[notify]]
name = "slack-gone"
kind = "slack"
url = "{hook.base}/services/T0WATCHKP/B0WATCHKP/removed"

[[notify]]
name = "teams"
kind = "teams"
url = "secret:WK_TEAMS_URL"

[[notify]]
name = "apprise-down"
url = "json://127.0.0.1:{closed}/hook"

[[notify]]
name = "apprise-404"
url = "{missing.url()}"

[[notify]]
name = "webhook-down"
kind = "webhook"
url = "http://127.0.0.1:{closed}/hook"
""",
        encoding="utf-8",
    )
    env = {"SSL_CERT_FILE": str(chat_peers.ca_file), "WK_TEAMS_URL": teams.url}
    result = wk("notify", "test", "--config", str(config), env=env)
    assert result.returncode == 1
    lines: dict[str, Any] = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert lines == {
        "slack-gone": f"FAILED — https://127.0.0.1:{hook.port}/... answered HTTP 404 no_service: "
        "this incoming webhook was removed or its URL is wrong: create a new one",
        "teams": "ok",
        "apprise-down": f"FAILED — json://127.0.0.1:{closed}/... failed: connection refused",
        "apprise-404": f"FAILED — json://127.0.0.1:{missing.port}/... failed: HTTP 404 Not Found",
        "webhook-down": f"FAILED — http://127.0.0.1:{closed}/... could not be reached: "
        "connection refused",
    }
    assert "Traceback" not in result.stderr
