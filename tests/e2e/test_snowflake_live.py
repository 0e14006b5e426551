"""The two-run scenario against a real Snowflake account: `make test-snowflake`, not `make test`.

No emulator can run target-snowflake's load (it PUTs files to the user stage and MERGEs from
them). This needs TARGET_SNOWFLAKE_ACCOUNT, _USER, _DATABASE, _WAREHOUSE and _PASSWORD (or
_PRIVATE_KEY_PATH), optionally _ROLE. It loads into a schema of its own, dropped at the end.
Collected only with `pytest --snowflake`; without the account it fails, it does not skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from e2e_support import SNOWFLAKE_PY, Meltano, Source, python_of
from omnitron_sandbox import Sandbox

NEEDED = ("ACCOUNT", "USER", "DATABASE", "WAREHOUSE")
ORDERS = 60


def missing_settings() -> list[str]:
    missing = [f"TARGET_SNOWFLAKE_{name}" for name in NEEDED if not os.environ.get(f"TARGET_SNOWFLAKE_{name}")]
    if not (os.environ.get("TARGET_SNOWFLAKE_PASSWORD") or os.environ.get("TARGET_SNOWFLAKE_PRIVATE_KEY_PATH")):
        missing.append("TARGET_SNOWFLAKE_PASSWORD (or TARGET_SNOWFLAKE_PRIVATE_KEY_PATH)")
    return missing


@pytest.fixture(scope="module")
def snowflake_schema() -> str:
    if missing := missing_settings():
        pytest.fail(f"a real Snowflake account is needed: set {', '.join(missing)}", pytrace=False)
    schema = f"TAP_OMNITRON_TEST_{uuid.uuid4().hex[:8].upper()}"
    yield schema
    query(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def query(*statements: str) -> list[list[list[str | None]]]:
    proc = subprocess.run(
        [python_of(SNOWFLAKE_PY), str(Path(__file__).with_name("snowflake_query.py")), *statements],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"Snowflake query failed: {proc.stderr[-2000:]}"
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_two_runs_into_snowflake(meltano: Meltano, snowflake_schema: str) -> None:
    meltano = meltano.isolated("snowflake-live")
    env = {key: value for key, value in os.environ.items() if key.startswith("TARGET_SNOWFLAKE_")}
    env["TARGET_SNOWFLAKE_DEFAULT_TARGET_SCHEMA"] = snowflake_schema
    with Sandbox(orders=ORDERS, seed=41) as sandbox:
        env.update(TAP_OMNITRON_BASE_URL=sandbox.url, TAP_OMNITRON_API_TOKEN=sandbox.api_token)
        meltano("run", "omnitron-to-snowflake", env=env, timeout=900)
        changed = sandbox.modify(count=5)
        created = sandbox.create(2)
        meltano("run", "omnitron-to-snowflake", env=env, timeout=900)
        source = Source.fetch(sandbox.url, sandbox.api_token)
    s = snowflake_schema
    counts, total, statuses, duplicates, scale = query(
        f"SELECT (SELECT count(*) FROM {s}.ORDERS), (SELECT count(*) FROM {s}.ORDER_ITEMS), "
        f"(SELECT count(*) FROM {s}.ORDER_DETAILS)",
        f"SELECT sum(AMOUNT) FROM {s}.ORDERS",
        f"SELECT ID, STATUS FROM {s}.ORDERS WHERE ID IN ({','.join(map(str, changed + created))})",
        f"SELECT count(*) - count(DISTINCT ID) FROM {s}.ORDERS",
        f"SELECT NUMERIC_SCALE FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = '{s}' "
        "AND TABLE_NAME = 'ORDERS' AND COLUMN_NAME = 'AMOUNT'",
    )
    assert [int(n) for n in counts[0]] == [len(source.orders), len(source.items), len(source.details)]
    assert Decimal(total[0][0]) == sum(Decimal(o["amount"]) for o in source.orders.values())
    assert {int(i): st for i, st in statuses} == {i: source.orders[i]["status"] for i in changed + created}
    assert duplicates == [["0"]]
    assert scale == [["8"]]
