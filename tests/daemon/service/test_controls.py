"""Operator controls against a running daemon: `ack` stops reminders, a silence holds and then
releases exactly one notice, a maintenance window keeps a check from paging."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.peers.loopback import free_port
from tests.peers.receivers import WebhookReceiver
from tests.reliability import PY, child_env, cli, wait_for

DEADLINE_S = 20.0


def config(tmp_path: Path, hook: WebhookReceiver, port: int, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[daemon]
state_dir = "{tmp_path / "state"}"
cycle_window = "0s"
jitter = "0s"
[incidents]
reminder_interval = "2s"
[[notify]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:{hook.port}/hook"
[[checks]]
name = "db-main"
type = "tcp"
host = "127.0.0.1"
port = {port}
interval = "1s"
timeout = "1s"
failure_threshold = 1
tags = ["db"]
{extra}
""")
    return path


@contextmanager
def daemon(path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [PY, "-m", "daemon", "run", "--config", str(path)],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=DEADLINE_S)
        assert proc.returncode == 0, out[-3000:]
        assert "Traceback" not in out


def events(hook: WebhookReceiver) -> list[str]:
    return [m["event"] for m in hook.messages]


def wk(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(*args, "--config", str(path))


def test_ack_stops_reminders_but_not_the_resolution(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    path = config(tmp_path, webhook_receiver, listener.getsockname()[1])
    with daemon(path):
        wait_for(lambda: "reminder" in events(webhook_receiver), "a reminder", DEADLINE_S)
        acked = wk(path, "ack", "1", "--by", "alice", "--note", "restarting the primary")
        assert acked.returncode == 0, acked.stderr
        assert acked.stdout.startswith("acknowledged incident #1 (db-main) as alice")
        wait_for(lambda: "acknowledged" in events(webhook_receiver), "the notice")
        notice = next(m for m in webhook_receiver.messages if m["event"] == "acknowledged")
        assert notice["title"] == "[HIGH] db-main acknowledged by alice — incident #1"
        assert "Acknowledged by alice: restarting the primary" in notice["text"]
        assert notice["incident"]["acknowledged_by"] == "alice"
        seen = len(webhook_receiver.messages)
        time.sleep(5)  # two and a half reminder intervals
        assert events(webhook_receiver)[seen:] == []
        again = wk(path, "ack", "1", "--json")
        assert json.loads(again.stdout)["already_acknowledged"] is True

        listener.listen()
        wait_for(lambda: "resolved" in events(webhook_receiver), "the resolution")
    listener.close()
    resolved = webhook_receiver.messages[-1]
    assert resolved["incident"]["acknowledged_by"] == "alice"
    assert "Acknowledged by alice." in resolved["text"]
    shown = json.loads(wk(path, "incidents", "show", "1", "--json").stdout)
    kinds = [e["kind"] for e in shown["events"]]
    assert kinds.count("acknowledged") == 1 and kinds[-1] == "resolved"
    resolved_ack = wk(path, "ack", "1")
    assert resolved_ack.returncode == 1
    assert "incident #1 is resolved: nothing to acknowledge" in resolved_ack.stderr


def test_a_silence_holds_then_releases_exactly_one_notice(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    path = config(tmp_path, webhook_receiver, free_port())
    added = wk(path, "silence", "add", "--tag", "db", "--for", "12s", "--reason", "failover drill")
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("silence #1 holds notifications of --tag db from ")
    listed = json.loads(wk(path, "silence", "list", "--json").stdout)
    assert [(s["id"], s["state"], s["reason"]) for s in listed] == [(1, "active", "failover drill")]
    status = json.loads(wk(path, "status", "--json").stdout)["checks"]["db-main"]
    assert "held" in status["marks"]
    assert status["held"]["reason"].startswith("silence #1 (--tag db: failover drill) until ")
    assert "held by silence #1 (--tag db: failover drill) until " in wk(path, "status").stdout
    with daemon(path):
        wait_for(
            lambda: "db-main" in wk(path, "incidents").stdout, "the incident, recorded", DEADLINE_S
        )
        assert webhook_receiver.messages == []  # opened and reminders: held
        wait_for(lambda: "released" in events(webhook_receiver), "the release", DEADLINE_S)
        time.sleep(3)  # reminders are due every 2 s again; the release itself comes once
    kinds = events(webhook_receiver)
    assert kinds.count("released") == 1 and "opened" not in kinds
    released = next(m for m in webhook_receiver.messages if m["event"] == "released")
    assert released["title"] == "[HIGH] db-main still failing after a quiet period — incident #1"
    assert released["detail"].startswith(
        "notifications were held (silence #1 (--tag db: failover drill)"
    )
    shown = json.loads(wk(path, "incidents", "show", "1", "--json").stdout)
    held = [e for e in shown["events"] if e["held"]]
    assert held and held[0]["kind"] == "opened"


def test_an_expired_silence_releases_at_once_and_a_resolved_incident_stays_quiet(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    path = config(tmp_path, webhook_receiver, listener.getsockname()[1])
    wk(path, "silence", "add", "--check", "db-main", "--for", "1h", "--reason", "migration")
    with daemon(path):
        wait_for(lambda: "db-main" in wk(path, "incidents").stdout, "incident #1", DEADLINE_S)
        listener.listen()  # resolves while silenced: nobody is told it opened, nor resolved
        wait_for(lambda: "no incidents" in wk(path, "incidents").stdout, "its resolution")
        expired = wk(path, "silence", "expire", "1")
        assert expired.returncode == 0 and "silence #1 expired" in expired.stdout
        time.sleep(3)
    listener.close()
    assert webhook_receiver.messages == []
    assert json.loads(wk(path, "silence", "list", "--all", "--json").stdout)[0]["state"] == (
        "expired"
    )


def test_a_maintenance_window_keeps_a_check_from_paging(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    window = (
        '[[maintenance]]\nname = "always"\nchecks = ["db-main"]\ncron = "* * * * *"\n'
        'duration = "5m"\nreason = "rebuilding the primary"\n'
    )
    path = config(tmp_path, webhook_receiver, free_port(), window)
    with daemon(path):
        wait_for(lambda: "db-main" in wk(path, "incidents").stdout, "incident #1", DEADLINE_S)
        time.sleep(3)
    assert webhook_receiver.messages == []
    status = json.loads(wk(path, "status", "--json").stdout)["checks"]["db-main"]
    assert status["held"]["reason"].startswith("maintenance always: rebuilding the primary until ")
    shown = json.loads(wk(path, "incidents", "show", "1", "--json").stdout)
    assert shown["events"][0]["held"].startswith(
        "maintenance always: rebuilding the primary until "
    )


def test_silence_and_ack_refuse_what_cannot_work(tmp_path: Path) -> None:
    path = config(tmp_path, WebhookReceiver(), free_port())
    both = wk(path, "silence", "add", "--check", "db-main", "--tag", "db", "--for", "1h",
              "--reason", "x")  # fmt: skip
    assert both.returncode == 2 and "exactly one of --check, --tag or --match" in both.stderr
    unknown = wk(path, "silence", "add", "--check", "nope", "--for", "1h", "--reason", "x")
    assert unknown.returncode == 2 and "no check named 'nope'" in unknown.stderr
    bad = wk(path, "silence", "add", "--tag", "db", "--for", "soon", "--reason", "x")
    assert bad.returncode == 2 and "--for" in bad.stderr
    missing = wk(path, "ack", "7")
    assert missing.returncode == 1 and "no incident #7" in missing.stderr
    assert wk(path, "silence", "expire", "9").returncode == 1


def heartbeat_config(tmp_path: Path, hook: WebhookReceiver, listen: int) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[daemon]
state_dir = "{tmp_path / "state"}"
cycle_window = "0s"
jitter = "0s"
health_listen = "127.0.0.1:{listen}"
[[notify]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:{hook.port}/hook"
[[checks]]
name = "nightly-backup"
type = "heartbeat"
period = "2s"
grace = "1s"
interval = "1s"
token = "secret:HB_TOKEN"
[[checks]]
name = "report-job"
type = "heartbeat"
period = "1h"
interval = "1s"
""")
    return path


def test_a_missed_heartbeat_pages_once_and_recovers(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    import httpx

    listen = free_port()
    path = heartbeat_config(tmp_path, webhook_receiver, listen)
    token = "tok-9f8e7d6c5b4a"
    base = f"http://127.0.0.1:{listen}"
    proc = subprocess.Popen(
        [PY, "-m", "daemon", "run", "--config", str(path)],
        env=child_env(HB_TOKEN=token),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: _get(base + "/healthz") == 200, "the listener", DEADLINE_S)
        answer = httpx.post(f"{base}/ping/{token}", content=b"42 GB in 3 min\nmore detail")
        assert (answer.status_code, answer.json()) == (200, {"status": "ok"})
        # An unknown token is answered exactly like any unknown path: no oracle.
        unknown = httpx.post(f"{base}/ping/not-{token}")
        other = httpx.post(f"{base}/nothing-here")
        assert (unknown.status_code, unknown.content) == (other.status_code, other.content)
        assert unknown.status_code == 404
        too_big = httpx.post(f"{base}/ping/{token}", content=b"x" * 20_000)
        assert too_big.status_code == 413

        wait_for(lambda: "opened" in events(webhook_receiver), "the missed ping's page", 15)
        opened = webhook_receiver.messages[0]
        assert opened["title"] == "[HIGH] nightly-backup failing — incident #1"
        assert opened["evidence"].startswith("last ping ")
        assert opened["evidence"].endswith(
            "expected every 2s, grace 1s: 42 GB in 3 min more detail"
        )
        time.sleep(2)
        assert events(webhook_receiver) == ["opened"]  # once

        assert httpx.get(f"{base}/ping/{token}/0").status_code == 200
        wait_for(lambda: "resolved" in events(webhook_receiver), "the recovery", 15)

        # A generated token works the same way; the token itself is never stored.
        made = wk(path, "heartbeat", "token", "report-job")
        assert made.returncode == 0, made.stderr
        url = made.stdout.strip()
        assert url.startswith(f"{base}/ping/")
        assert httpx.post(url + "/fail", content=b"exit 3: no space left").status_code == 200
        # (nightly-backup, pinged every 2 s by nobody now, may page again meanwhile)
        wait_for(lambda: _opened(webhook_receiver, "report-job"), "report-job's failure", 15)
        failed = _opened(webhook_receiver, "report-job")[0]
        assert failed["evidence"].startswith("the job reported a failure ")
        assert failed["evidence"].endswith(": exit 3: no space left")
        db = b"".join(p.read_bytes() for p in (tmp_path / "state").glob("watchkeeper.db*"))
        assert url.rsplit("/", 1)[1].encode() not in db and token.encode() not in db
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=DEADLINE_S)
    assert proc.returncode == 0, out[-3000:]
    assert token not in out


def test_watchkeeper_ping_runs_a_job_and_reports_its_exit(tmp_path: Path) -> None:
    path = heartbeat_config(tmp_path, WebhookReceiver(), free_port())
    job = ("sh", "-c", "echo working; echo 'disk full' >&2; exit 3")
    ran = cli("ping", "--config", str(path), "report-job", "--", *job)
    assert ran.returncode == 3
    assert "working" in ran.stdout and "disk full" in ran.stderr
    checked = json.loads(wk(path, "check", "report-job", "--json").stdout)
    (result,) = checked if isinstance(checked, list) else checked["results"]
    assert result["status"] == "failing"
    assert result["evidence"].endswith("(exit 3): disk full")
    assert wk(path, "ping", "report-job", "-m", "all good").returncode == 0
    checked = json.loads(wk(path, "check", "report-job", "--json").stdout)
    (result,) = checked if isinstance(checked, list) else checked["results"]
    assert result["status"] == "ok" and result["evidence"].endswith(": all good")
    wrong = wk(path, "ping", "nope")
    assert wrong.returncode == 2 and "no heartbeat check named 'nope'" in wrong.stderr


def _opened(hook: WebhookReceiver, check: str) -> list[dict[str, Any]]:
    title = f"[HIGH] {check} "
    return [m for m in hook.messages if m["event"] == "opened" and m["title"].startswith(title)]


def _get(url: str) -> int:
    import httpx

    try:
        return httpx.get(url, timeout=1).status_code
    except httpx.HTTPError:
        return 0
