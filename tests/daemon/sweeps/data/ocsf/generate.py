"""Regenerate the vendored OCSF JSON Schemas from a checkout of the official schema repository.

Build-time only (never run by the tests, not a dependency of watchkeeper):

    python -m venv /tmp/ocsf && /tmp/ocsf/bin/pip install ocsf-lib==0.10.4 ocsf-json-schema==1.2.0
    git clone --branch 1.8.0 https://github.com/ocsf/ocsf-schema /tmp/ocsf-schema
    /tmp/ocsf/bin/python tests/daemon/sweeps/data/ocsf/generate.py /tmp/ocsf-schema

`ocsf.compile` (ocsf-lib) compiles the repository as the OCSF server does; its output names an
object attribute's object in `type` and keeps `null` keys, where ocsf-json-schema reads the
server's export (`type: object_t` + `object_type`, no nulls), so the two are bridged here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

CLASSES = ("compliance_finding", "detection_finding")
PROFILES = ["cloud"]
HERE = Path(__file__).parent
NO_EXT = ("--ignore-extension", "linux", "macos", "windows")


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


def compiled(repository: Path) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-m", "ocsf.compile", str(repository), "--set-object-types", *NO_EXT],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    schema: dict[str, Any] = _strip_nulls(json.loads(output))
    for section in ("classes", "objects"):
        for item in schema[section].values():
            for attribute in item.get("attributes", {}).values():
                if attribute.get("type") in schema["objects"]:
                    attribute["object_type"] = attribute["type"]
                    attribute["type"] = "object_t"
    return schema


def main(repository: Path) -> None:
    from ocsf_json_schema import OcsfJsonSchemaEmbedded

    schema = compiled(repository)
    generator = OcsfJsonSchemaEmbedded(schema)
    for name in CLASSES:
        document = generator.get_class_schema(class_name=name, profiles=PROFILES)
        path = HERE / f"{name}-{schema['version']}.schema.json"
        path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(path)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
