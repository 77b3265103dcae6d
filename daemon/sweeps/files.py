"""The report files of a sweep run under the state directory: Markdown, JSON and (security)
SARIF and OCSF findings (`.ocsf.json`, an array), each run's own and a `latest` copy.

Reports list every weakness of the estate: files are 0600, directories 0700, written atomically.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from daemon.store.sweeps import SweepRunRecord
from daemon.sweeps.compliance import compliance, compliance_markdown
from daemon.sweeps.ocsf import ocsf_findings
from daemon.sweeps.reports import report_json, report_markdown
from daemon.sweeps.sarif import report_sarif

if TYPE_CHECKING:
    from jobs.sweeps.base import RuleMeta


def stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def project_url() -> str | None:
    """The project's home page as the installed distribution declares it (pyproject's
    `[project.urls] Homepage`): SARIF's `informationUri`. None when not installed."""
    try:
        urls = importlib.metadata.metadata("watchkeeper").get_all("Project-URL") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    return next((u.split(", ", 1)[1] for u in urls if u.startswith("Homepage, ")), None)


def write_reports(
    state_dir: Path, record: SweepRunRecord, metas: Mapping[str, RuleMeta]
) -> dict[str, str]:
    """`reports/<sweep>/<UTC stamp>.{md,json[,sarif,ocsf.json]}` and `latest.*` copies: files 0600,
    directories 0700. Returns the timestamped paths by extension."""
    from daemon import __version__

    folder = state_dir / "reports" / record.sweep
    for directory in (state_dir / "reports", folder):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        directory.chmod(0o700)
    document = report_json(record)
    audit = compliance(record, metas)
    if audit:
        document["compliance"] = audit
    texts = {
        "md": report_markdown(record) + compliance_markdown(record, metas),
        "json": json.dumps(document, indent=2, ensure_ascii=False) + "\n",
    }
    if record.kind == "security":
        sarif = report_sarif(record, metas, __version__, project_url())
        texts["sarif"] = json.dumps(sarif, indent=2, ensure_ascii=False) + "\n"
        ocsf = ocsf_findings(record, metas, __version__)
        texts["ocsf.json"] = json.dumps(ocsf, indent=2, ensure_ascii=False) + "\n"
    name = stamp(record.started_at)
    if any((folder / f"{name}.{ext}").exists() for ext in texts):
        name += "-" + record.id.rsplit("-", 1)[-1]  # two runs in one second
    paths: dict[str, str] = {}
    for ext, text in texts.items():
        path = folder / f"{name}.{ext}"
        _write_private(path, text)
        _write_private(folder / f"latest.{ext}", text)
        paths[ext] = str(path)
    return paths


def _write_private(path: Path, text: str) -> None:
    """Atomically, readable by us alone."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            fd = -1
            handle.write(text)
    finally:
        if fd >= 0:
            os.close(fd)
    os.replace(temporary, path)
