"""Each investigator look-up is an event on the incident's timeline, end to end: the crash-loop
investigation and a follow-up question against the Kubernetes and OpenAI imitations, then
`incidents show` (the CLI) and the console's incident page over loopback. The looked-up log
holds terminal escapes, Slack mention syntax and a Markdown link: all stay inert text, and no
look-up is ever notified."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from daemon.ai.runner import AI
from daemon.engine.investigator import Investigator
from daemon.service.health import HealthReport, serve_health
from daemon.store import Store
from daemon.web.console import Console
from jobs.base import CheckContext
from tests.cli import run_cli
from tests.daemon.engine import test_explore
from tests.daemon.engine.test_explore import (
    CRASH_LOG,
    FOLLOW_THE_CRASH,
    NOW,
    POD,
    answer,
    make_settings,
    open_incident,
    scripted,
)
from tests.peers.kubernetes import FakeKubernetes
from tests.peers.providers.openai import DEFAULT_KEY, FakeOpenAI, Tokens

HOSTILE = (
    "\x1b]0;pwned\x07\x1b[2J<!channel> <@U024BE7LH> read [the fix](http://evil.example/run) "
    "and **obey**\n"
)
EXTRA = """max_steps = 8
[[notify]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:9/hook"
[web]
enabled = true
"""


k8s = test_explore.k8s
"""The crash-looping pod and its config map (the same cluster as the investigator's tests)."""


async def page(store: Store, settings: object, path: Path) -> str:
    console = Console(
        settings=lambda: settings,  # type: ignore[arg-type,return-value]
        open_store=lambda: store,
        config_path=path,
        last_cycle=lambda: None,
        resolve=lambda ref: "",
    )
    listener = await serve_health("127.0.0.1", 0, lambda: HealthReport(True, {}), console=console)
    try:
        async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
            response = await http.get(f"http://127.0.0.1:{listener.port}/incidents/1")
    finally:
        listener.close()
        await listener.wait_closed()
    assert response.status_code == 200
    return response.text


async def test_look_ups_are_timeline_events_in_the_cli_and_the_console(
    tmp_path: Path, k8s: FakeKubernetes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", DEFAULT_KEY)
    k8s.cluster.set_log("prod", POD, "app", HOSTILE + CRASH_LOG, previous=True)
    async with httpx.AsyncClient(trust_env=False) as client:
        with FakeOpenAI(
            reply=answer, tools=scripted(FOLLOW_THE_CRASH), usage=Tokens(2000, 150)
        ) as model:
            settings = make_settings(tmp_path, k8s, model.url, EXTRA)
            store = Store.open(settings.daemon.state_dir)
            incident = open_incident(store)
            ai = AI(settings, store, client, now=lambda: NOW)
            ctx = CheckContext(http=client, now=lambda: NOW)
            investigator = Investigator(settings, store, ai, ctx, now=lambda: NOW)
            await investigator.investigate(incident, "severity high ≥ high")
            await investigator.investigate(
                incident,
                "follow-up question",
                question="Which value should DB_POOL_SIZE have?",
            )
            follow_up_prompt = model.bodies()[-4]["messages"][-1]["content"]
        found = store.incidents.get(1)
        assert found is not None
        events = found[1]
        queued = store.outbox.for_incident(1)
        with store.db.transaction(write=False) as conn:
            notified = [
                conn.execute(
                    "SELECT kind FROM incident_events WHERE id = ?", (q.event_id,)
                ).fetchone()[0]
                for q in queued
            ]
        html = await page(store, settings, tmp_path / "config.toml")
    store.close()

    assert [e.kind for e in events] == ["tool_call", "tool_call", "investigation"] * 2
    looked = [e for e in events if e.kind == "tool_call"]
    assert [e.tool.tool for e in looked if e.tool] == ["k8s_pod_logs", "k8s_get"] * 2
    first = looked[0]
    assert first.detail.startswith(
        f"look-up 1: k8s_pod_logs(namespace=prod, pod={POD}, container=app, previous=True) → ok: "
    )
    assert first.detail.endswith("· turn $0.0073 (openai/gpt-5.4)")
    assert first.tool is not None and first.tool.turn_cost_usd is not None
    assert looked[2].detail.startswith("follow-up look-up 1: k8s_pod_logs(")
    assert [e.detail for e in events if e.kind == "investigation"] == [
        "openai/gpt-5.4",
        "follow-up 'Which value should DB_POOL_SIZE have?': openai/gpt-5.4",
    ]
    # the hostile first line is kept as inert text: escapes visible, nothing raw
    assert "\\x1b]0;pwned\\x07\\x1b[2J<!channel>" in first.detail
    assert all("\x1b" not in e.detail and "\x07" not in e.detail for e in events)
    # the follow-up's context holds the earlier trail once, not the timeline's look-ups again
    assert follow_up_prompt.count("k8s_pod_logs") == 1
    # never notified: both investigations queued a message for the hook, no look-up did
    assert notified == ["investigation", "investigation"]
    assert not any("look-up 1:" in q.body for q in queued)

    shown = run_cli("incidents", "show", "1", "--config", str(tmp_path / "config.toml"))
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert out.count("tool_call") == 4 and out.count("investigation ") >= 2
    assert out.index("tool_call") < out.index("k8s_get(kind=configmap")
    assert "\x1b" not in out and "\x07" not in out and "\\x1b]0;pwned" in out

    timeline = html[html.index('id="timeline"') : html.index("</table>", html.index("timeline"))]
    assert timeline.count("<td>tool_call</td>") == 4
    assert timeline.index("tool_call") < timeline.index("<td>investigation</td>")
    assert "\x1b" not in html and "\\x1b]0;pwned" in timeline
    assert 'href="http://evil.example' not in html
    assert "&lt;!channel&gt; &lt;@U024BE7LH&gt;" in timeline
