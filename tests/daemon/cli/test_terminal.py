"""Evidence a monitored system wrote never drives the operator's terminal: escape sequences
(window title, colours, cursor moves, bidi overrides) are shown, not run, by every text view."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from daemon.cli import main
from daemon.models import CheckResult, EngineState, Incident, IncidentEvent, Severity, fingerprint
from daemon.store import Store

T0 = datetime(2026, 11, 27, 14, 2, tzinfo=UTC)
HOSTILE = "refused\x1b]0;owned\x07 \x1b[2J\x1b[31mred\x1b[0m \u202egnp.exe\rOK"


def test_incidents_and_status_show_escapes_instead_of_sending_them(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n'
        '[[checks]]\nname = "api"\ntype = "tcp"\nhost = "127.0.0.1"\nport = 9\n'
    )
    with Store.open(tmp_path / "state") as store:
        incident = Incident(
            id=1, fingerprint=fingerprint("api"), check="api", severity=Severity.HIGH,
            opened_at=T0, evidence=HOSTILE, first_evidence=HOSTILE,
        )  # fmt: skip
        opened = IncidentEvent(
            incident_id=1, kind="opened", at=T0, check="api", severity=Severity.HIGH,
            evidence=HOSTILE, opened_at=T0, detail=HOSTILE,
        )  # fmt: skip
        result = CheckResult(check="api", status="failing", evidence=HOSTILE, started_at=T0)
        store.incidents.commit_cycle(
            [result], EngineState(incidents={1: incident}), [opened], [], []
        )
    runner = CliRunner()
    for args in (["incidents", "show", "1"], ["incidents"], ["status"]):
        out = runner.invoke(main, [*args, "--config", str(config)])
        assert out.exit_code == 0, out.output
        for raw in ("\x1b", "\x07", "\u202e", "\r"):
            assert raw not in out.output, (args, raw)
        assert "\\x1b" in out.output and "refused" in out.output
    shown = runner.invoke(main, ["incidents", "show", "1", "--config", str(config)]).output
    assert "\\x1b]0;owned\\x07" in shown and "\\u202egnp.exe\\x0dOK" in shown
