"""Snowflake without an account: the tap's schemas through target-snowflake's own type mapping.

`snowflake_types.py` runs in the target-snowflake venv that Meltano created and uses the
target's connector (`to_sql_type`, plus its CREATE TABLE / MERGE / COPY statements) with
no connection. Money must land in NUMBER(p, s) with the declared scale (not NUMBER(38, 0),
which would drop the cents), date-times in TIMESTAMP_*, nested objects/arrays in VARIANT.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from e2e_support import ROOT, SNOWFLAKE_PY, STREAMS, columns_with_format, declared_decimals, python_of


@pytest.fixture(scope="module")
def mapped(catalog: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = tmp_path_factory.mktemp("snowflake") / "catalog.json"
    path.write_text(json.dumps(catalog))
    proc = subprocess.run(
        [python_of(SNOWFLAKE_PY), str(Path(__file__).with_name("snowflake_types.py")), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, f"target-snowflake could not map the schemas:\n{proc.stderr}"
    return json.loads(proc.stdout)


def _props(catalog: dict, stream: str) -> dict:
    for entry in catalog["streams"]:
        if (entry.get("stream") or entry["tap_stream_id"]) == stream:
            return entry["schema"]["properties"]
    raise KeyError(stream)


def _types(prop: dict) -> set[str]:
    t = prop.get("type", [])
    return {t} if isinstance(t, str) else set(t)


def test_every_stream_maps(mapped: dict) -> None:
    assert set(mapped) == set(STREAMS)
    for stream, out in mapped.items():
        assert out["create_table"].startswith("\nCREATE TABLE") or "CREATE TABLE" in out["create_table"]
        assert out["merge"].startswith("merge into"), stream
        assert out["copy"].startswith("copy into"), stream


def test_money_is_number_with_declared_scale(mapped: dict, catalog: dict) -> None:
    declared = declared_decimals()
    problems = []
    for stream in STREAMS:
        for col in columns_with_format(catalog, stream, "x-singer.decimal"):
            got = mapped[stream]["columns"][col]
            want_p, want_s = declared.get((stream, col), (None, None))
            ok = (
                got["class"] in {"NUMBER", "DECIMAL", "NUMERIC"}
                and got["scale"] is not None
                and got["scale"] > 0
                and (want_s is None or (got["precision"], got["scale"]) == (want_p, want_s))
            )
            if not ok:
                problems.append(
                    f"{stream}.{col}: {got['sql']} (schemas/{stream}.json declares "
                    f"precision={want_p}, scale={want_s}; the catalog says "
                    f"{json.dumps(_props(catalog, stream)[col])})"
                )
    assert not problems, "money would lose its decimals in Snowflake:\n" + "\n".join(problems)
    # The MERGE casts staged JSON to the same type: no bare DECIMAL/NUMBER there either.
    merge = mapped["orders"]["merge"]
    assert re.search(r"\$1:amount::(DECIMAL|NUMBER)\(\d+, ?\d+\)", merge), merge


def test_timestamps_and_variants(mapped: dict, catalog: dict) -> None:
    for stream in STREAMS:
        cols = mapped[stream]["columns"]
        for col in columns_with_format(catalog, stream, "date-time"):
            assert cols[col]["sql"].startswith("TIMESTAMP_"), (stream, col, cols[col])
        for col, prop in _props(catalog, stream).items():
            if _types(prop) & {"object", "array"}:
                assert cols[col]["sql"] == "VARIANT", (stream, col, cols[col])
    assert mapped["orders"]["columns"]["orderitem_set"]["sql"] == "VARIANT"
    assert mapped["orders"]["columns"]["customer"]["sql"] == "VARIANT"
    assert mapped["order_items"]["columns"]["order"]["class"] in {"NUMBER", "DECIMAL", "INTEGER"}
