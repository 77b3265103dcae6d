"""The systemd unit and the launchd plist keep the operations contract (see DESIGN.md)."""

from __future__ import annotations

import plistlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests import DATA

UNIT = DATA / "watchkeeper.service"
PLIST = DATA / "io.watchkeeper.agent.plist"
MAX_EXPOSURE = 2.0
DEFAULT_DRAIN_S = 20


def _parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections → key → every value (systemd keys may repeat); comments skipped."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"key outside a section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not key=value: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def service() -> dict[str, list[str]]:
    return _parse_unit(UNIT)["Service"]


def _one(service: dict[str, list[str]], key: str) -> str:
    values = service.get(key)
    assert values, f"{key}= missing from {UNIT.name}"
    return values[-1]


def test_unit_is_type_notify_with_main_notify_access(service: dict[str, list[str]]) -> None:
    assert _one(service, "Type") == "notify"
    assert _one(service, "NotifyAccess") == "main"


def test_unit_runs_the_daemon(service: dict[str, list[str]]) -> None:
    assert _one(service, "ExecStart").split()[-1] == "run"


def test_unit_reloads_with_sighup(service: dict[str, list[str]]) -> None:
    assert _one(service, "ExecReload") == "/bin/kill -HUP $MAINPID"


def test_unit_has_a_watchdog(service: dict[str, list[str]]) -> None:
    assert int(_one(service, "WatchdogSec")) > 0


def test_unit_restarts_on_failure(service: dict[str, list[str]]) -> None:
    assert _one(service, "Restart") == "on-failure"
    assert int(_one(service, "RestartSec")) > 0


def test_stop_timeout_outlasts_the_drain(service: dict[str, list[str]]) -> None:
    assert int(_one(service, "TimeoutStopSec")) > DEFAULT_DRAIN_S


def test_unit_state_and_config_directories(service: dict[str, list[str]]) -> None:
    assert _one(service, "StateDirectory") == "watchkeeper"
    assert _one(service, "ConfigurationDirectory") == "watchkeeper"
    assert "WATCHKEEPER_CONFIG=/etc/watchkeeper/config.toml" in service["Environment"]


def test_unit_does_not_run_as_root(service: dict[str, list[str]]) -> None:
    assert _one(service, "DynamicUser") == "yes" or service.get("User", ["root"])[-1] != "root"


def test_unit_documents_credentials_but_loads_none_by_default() -> None:
    text = UNIT.read_text(encoding="utf-8")
    assert (
        "#LoadCredential=anthropic_api_key:/etc/watchkeeper/credentials/anthropic_api_key" in text
    )
    assert "#LoadCredentialEncrypted=" in text


def test_unit_keeps_exec_and_network(service: dict[str, list[str]]) -> None:
    """`command` checks exec binaries; checks and providers need IPv4/IPv6 and AF_UNIX."""
    assert "NoExecPaths" not in service
    assert "PrivateNetwork" not in service
    families = set(_one(service, "RestrictAddressFamilies").split())
    assert {"AF_INET", "AF_INET6", "AF_UNIX"} <= families


def _exposure(output: str) -> float:
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", output)
    assert match, f"no overall exposure line in:\n{output[-2000:]}"
    return float(match.group(1))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_hardening_exposure_is_low() -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Exit status is non-zero when the score passes --threshold; the score itself is what counts.
    assert _exposure(result.stdout + result.stderr) <= MAX_EXPOSURE


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify insists that ExecStart= exists; the real binary is not installed here.
    true = shutil.which("true") or "/bin/true"
    text = UNIT.read_text(encoding="utf-8").replace("/usr/local/bin/watchkeeper", true)
    copy = tmp_path / UNIT.name
    copy.write_text(text, encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Only complaints about our unit count; other units on the host are not ours to judge.
    ours = [line for line in (result.stdout + result.stderr).splitlines() if UNIT.name in line]
    assert ours == []


def test_config_errors_are_not_restarted(service: dict[str, list[str]]) -> None:
    assert "2" in _one(service, "RestartPreventExitStatus").split()


def test_exposure_line_parser() -> None:
    assert _exposure("→ Overall exposure level for watchkeeper.service: 1.1 OK 🙂") == 1.1


# --- launchd --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plist() -> dict[str, Any]:
    with PLIST.open("rb") as f:
        data: dict[str, Any] = plistlib.load(f)
    return data


def test_plist_label(plist: dict[str, Any]) -> None:
    assert plist["Label"] == "io.watchkeeper.agent"


def test_plist_runs_the_daemon(plist: dict[str, Any]) -> None:
    args = plist["ProgramArguments"]
    assert args[0].endswith("/watchkeeper")
    assert args[-1] == "run"


def test_plist_keeps_it_alive(plist: dict[str, Any]) -> None:
    keep_alive = plist["KeepAlive"]
    assert keep_alive is True or keep_alive == {"SuccessfulExit": False}
    assert plist["RunAtLoad"] is True
    assert plist["ThrottleInterval"] > 0


def test_plist_sets_config_and_logs(plist: dict[str, Any]) -> None:
    assert plist["EnvironmentVariables"]["WATCHKEEPER_CONFIG"].endswith("/config.toml")
    for key in ("StandardOutPath", "StandardErrorPath"):
        assert "/Library/Logs/watchkeeper/" in plist[key]
    assert plist["ProcessType"] == "Background"


def test_plist_stop_timeout_outlasts_the_drain(plist: dict[str, Any]) -> None:
    assert plist["ExitTimeOut"] > DEFAULT_DRAIN_S
