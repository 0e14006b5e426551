"""The tap's wheel holds the tap and its schemas only (no sandbox, no tests), its LICENSE, one console script.

One wheel is built per module (`pip wheel --no-deps`, which needs nothing beyond pip: it fetches the
build backend, hatchling, from the index), then read with `zipfile`.
"""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ("orders.json", "order_items.json", "order_details.json")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Iterator[zipfile.ZipFile]:
    out = tmp_path_factory.mktemp("wheel")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    built = sorted(out.glob("tap_omnitron-*.whl"))
    assert done.returncode == 0 and len(built) == 1, (
        f"pip wheel failed ({done.returncode}), built {[p.name for p in out.iterdir()]}:\n{done.stdout}\n{done.stderr}"
    )
    with zipfile.ZipFile(built[0]) as archive:
        yield archive


def dist_info(wheel: zipfile.ZipFile) -> str:
    folders = {name.split("/", 1)[0] for name in wheel.namelist()}
    folders = {folder for folder in folders if folder.endswith(".dist-info")}
    assert len(folders) == 1, folders
    return folders.pop()


def test_only_the_tap_and_its_metadata(wheel):
    tops = {name.split("/", 1)[0] for name in wheel.namelist()}
    assert tops == {"tap_omnitron", dist_info(wheel)}, tops


def test_no_sandbox_and_no_tests(wheel):
    names = wheel.namelist()
    assert not [n for n in names if "omnitron_sandbox" in n or n.startswith("sandbox/")]
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n or n.endswith("conftest.py")]


def test_the_tap_and_its_three_schemas(wheel):
    names = set(wheel.namelist())
    assert "tap_omnitron/tap.py" in names
    assert "tap_omnitron/__init__.py" in names
    for schema in SCHEMAS:
        path = f"tap_omnitron/schemas/{schema}"
        assert path in names, f"{path} missing from the wheel"
        assert json.loads(wheel.read(path)) == json.loads((ROOT / "schemas" / schema).read_text())


def test_the_license_in_the_dist_info(wheel):
    info = dist_info(wheel)
    licenses = [n for n in wheel.namelist() if n.startswith(f"{info}/") and Path(n).name == "LICENSE"]
    assert len(licenses) == 1, wheel.namelist()
    text = wheel.read(licenses[0]).decode()
    assert text == (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    metadata = Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
    assert metadata["License-Expression"] == "Apache-2.0"
    assert "LICENSE" in metadata.get_all("License-File", [])


def test_one_console_script_the_tap(wheel):
    entry_points = configparser.ConfigParser()
    entry_points.optionxform = str  # names are case-sensitive
    entry_points.read_string(wheel.read(f"{dist_info(wheel)}/entry_points.txt").decode())
    scripts = dict(entry_points["console_scripts"])
    assert scripts.get("tap-omnitron") == "tap_omnitron.tap:cli"
    assert "omnitron-sandbox" not in scripts
