"""The command line as a user meets it: exit codes, one-line errors, --json everywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import DATA
from tests.cli import run_cli
from tests.peers.loopback import free_port

PY = sys.executable


def wk(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`watchkeeper ARGS` in process (tests.cli): none of these tests is about the process."""
    full = {k: v for k, v in os.environ.items() if k != "WATCHKEEPER_CONFIG"}
    full.update(env or {})
    return run_cli(*args, env=full)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[daemon]
state_dir = "state"

[[checks]]
name = "dead"
type = "tcp"
host = "127.0.0.1"
port = {free_port()}
timeout = "2s"
failure_threshold = 1

[[checks]]
name = "local-dns"
type = "dns"
host = "localhost"
"""
    )
    return path


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from daemon.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('boto3', 'kubernetes', 'pydantic', 'apprise', 'httpx', "
        "'apscheduler', 'structlog', 'rich', 'markdown_it', 'pygments', 'uvicorn', "
        "'starlette', 'jinja2', 'prometheus_client', 'mcp', 'psycopg') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
    assert "Usage: " in out


def test_config_validate_prints_ok_for_the_example() -> None:
    result = wk(
        "config",
        "validate",
        "--config",
        str(DATA / "config.example.toml"),
        env={"WATCHKEEPER_DAEMON__STATE_DIR": "/tmp/wk-cli-validate"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_config_validate_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[checks]]\nname = "a"\ntype = "tcp"\nport = "x"\ncolour = 1\n')
    result = wk("config", "validate", "--config", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert f"{path}: checks[a].host: required key is missing" in lines
    assert any(line.startswith(f"{path}: checks[a].port: ") for line in lines)
    assert any(line.startswith(f"{path}: checks[a].colour: unknown key") for line in lines)
    assert "Traceback" not in result.stderr


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = wk("status", "--config", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"{tmp_path / 'nope.toml'}: file not found"


def test_unknown_command_is_a_usage_error() -> None:
    result = wk("frobnicate")
    assert result.returncode == 2
    assert "No such command" in result.stderr


def test_config_schema_is_json_schema() -> None:
    result = wk("config", "schema")
    schema = json.loads(result.stdout)
    assert schema["title"] == "watchkeeper configuration"
    assert "checks" in schema["properties"]


def test_check_prints_a_table_and_exits_1_when_failing(config: Path) -> None:
    result = wk("check", "--config", str(config))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["CHECK", "STATUS", "LATENCY", "EVIDENCE"]
    dead = next(line for line in lines if line.startswith("dead "))
    assert "FAILING" in dead and "refused" in dead
    assert not (config.parent / "state" / "watchkeeper.db").exists()  # nothing recorded


def test_check_json_for_one_named_check(config: Path) -> None:
    result = wk("check", "local-dns", "--json", "--config", str(config))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [r["check"] for r in data["results"]] == ["local-dns"]
    assert data["results"][0]["status"] == "ok"


def test_check_unknown_name_exits_2(config: Path) -> None:
    result = wk("check", "nope", "--config", str(config))
    assert result.returncode == 2
    assert "no check named 'nope'; configured: dead, local-dns" in result.stderr


def test_record_then_status_and_incidents(config: Path) -> None:
    recorded = wk("check", "--record", "--config", str(config))
    assert recorded.returncode == 1
    assert "incident #1 opened: [HIGH] dead" in recorded.stdout

    status = json.loads(wk("status", "--json", "--config", str(config)).stdout)
    assert status["checks"]["dead"]["status"] == "failing"
    assert status["checks"]["local-dns"]["status"] == "ok"
    assert [i["id"] for i in status["open_incidents"]] == [1]

    listed = wk("incidents", "--config", str(config))
    assert listed.returncode == 0
    assert "#1" in listed.stdout and "OPEN" in listed.stdout

    shown = json.loads(wk("incidents", "show", "1", "--json", "--config", str(config)).stdout)
    assert shown["incident"]["check"] == "dead"
    assert [e["kind"] for e in shown["events"]] == ["opened"]

    text = wk("incidents", "show", "1", "--config", str(config)).stdout
    assert "incident #1 [HIGH] dead — open" in text


def test_incidents_show_unknown_id_exits_1(config: Path) -> None:
    result = wk("incidents", "show", "99", "--config", str(config))
    assert result.returncode == 1
    assert "no incident #99" in result.stderr


def test_notify_test_without_targets_is_a_usage_error(config: Path) -> None:
    result = wk("notify", "test", "--config", str(config))
    assert result.returncode == 2
    assert "no [[notify]] targets" in result.stderr


def test_notify_test_reports_each_target(config: Path) -> None:
    text = (
        config.read_text()
        + f'\n[[notify]]\nname = "nobody"\nurl = "json://127.0.0.1:{free_port()}/x"\n'
    )
    config.write_text(text)
    result = wk("notify", "test", "--config", str(config))
    assert result.returncode == 1
    assert result.stdout.startswith("nobody: FAILED")


def test_unwritable_state_dir_exits_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    path = tmp_path / "c.toml"
    path.write_text(f'[daemon]\nstate_dir = "{blocker}/sub"\n')
    result = wk("run", "--once", "--config", str(path))
    assert result.returncode == 2
    assert ": daemon.state_dir: cannot write to" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_opens_and_resolves_an_incident_on_loopback() -> None:
    env = {"OLLAMA_HOST": f"http://127.0.0.1:{free_port()}"}  # no model: deterministic path
    result = wk("demo", "--pause", "0", env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "triage: deterministic" in out
    assert "notification: [MEDIUM] session-cache degraded — incident #1" in out
    assert "notification: [HIGH] session-cache severity raised from medium — incident #1" in out
    assert "Blast radius: checkout-api" in out
    # no model anywhere: one line per message, never a paragraph per provider
    assert "Triage off: no model reachable — run watchkeeper models" in out
    assert "AI off: no model reachable — run watchkeeper models" in out
    assert "no key;" not in out.split("== cycle 1")[1]
    assert "notification: [RESOLVED] session-cache — incident #1" in out
    assert "3 notifications delivered through the real outbox" in out
    assert "Traceback" not in out + result.stderr


def test_check_prints_kubernetes_evidence_from_a_cluster(tmp_path: Path) -> None:
    from tests.peers.kubernetes import FakeCluster, FakeKubernetes, crashloop_pod, healthy_pod

    cluster = FakeCluster()
    cluster.add(crashloop_pod("worker-5f6b-abcde"), healthy_pod("web-1"))
    k8s = FakeKubernetes(cluster).start()
    try:
        kubeconfig = k8s.kubeconfig(tmp_path / "kubeconfig")
        config = tmp_path / "c.toml"
        config.write_text(
            f'[[checks]]\nname = "prod-cluster"\ntype = "kubernetes"\n'
            f'kubeconfig = "{kubeconfig}"\nnamespaces = ["prod"]\nnodes = false\n'
        )
        result = wk("check", "prod-cluster", "--config", str(config))
    finally:
        k8s.stop()
    assert result.returncode == 1
    line = next(x for x in result.stdout.splitlines() if "worker-5f6b-abcde" in x)
    assert "FAILING" in line and "CrashLoopBackOff" in line


def test_an_unparseable_notify_url_never_reaches_the_output(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    url = "slak://T0CANARYA/B0CANARYB/tokencanary9f8e7d"  # apprise logs the first segments
    path.write_text(f'[[notify]]\nname = "ops"\nurl = "{url}"\n')
    result = wk("config", "validate", "--config", str(path))
    assert result.returncode == 2
    assert "notify[ops].url: apprise cannot use this URL (scheme 'slak')" in result.stderr
    for part in ("T0CANARYA", "B0CANARYB", "tokencanary9f8e7d"):
        assert part not in result.stdout + result.stderr
