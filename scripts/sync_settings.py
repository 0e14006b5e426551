"""Write the tap's settings, as `tap-omnitron --about` reports them, into meltano.yml and the
README's settings table: `config_jsonschema` is their one definition (`make settings`).

tests/test_settings.py fails when either file disagrees with the tap.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KINDS = {"number": "decimal"}  # Meltano's name where it differs from JSON Schema's


def about(fmt: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "tap_omnitron", "--about", f"--format={fmt}"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout


def meltano_settings(properties: dict) -> str:
    lines = []
    for name, prop in properties.items():
        kind = next(t for t in prop["type"] if t != "null")
        kind = "date_iso8601" if prop.get("format") == "date-time" else KINDS.get(kind, kind)
        lines += [f"    - name: {name}", f"      kind: {kind}"]
        if prop.get("secret"):
            lines.append("      sensitive: true")
        for key, label in (("default", "value"), ("title", "label"), ("description", "description")):
            if key in prop:
                lines.append(f"      {label}: {json.dumps(prop[key], ensure_ascii=False)}")
    return "\n".join(lines) + "\n"


def table(lines: list[str]) -> tuple[int, int]:
    start = next(i for i, line in enumerate(lines) if line.startswith("| Setting |"))
    return start, next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))


def main() -> None:
    properties = json.loads(about("json"))["settings"]["properties"]
    project = ROOT / "meltano.yml"
    text = project.read_text()
    start = text.index("\n", text.index("    settings:\n    - name: base_url")) + 1
    end = text.index("\n  # Several shops")
    project.write_text(text[:start] + meltano_settings(properties) + text[end:])

    readme = ROOT / "README.md"
    lines, new = readme.read_text().splitlines(), about("markdown").splitlines()
    (a, b), (c, d) = table(lines), table(new)
    readme.write_text("\n".join([*lines[:a], *new[c:d], *lines[b:]]) + "\n")


if __name__ == "__main__":
    main()
