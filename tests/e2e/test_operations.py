"""Running it as a data team does: jobs and schedules, state kept outside the machine,
several shops side by side, the lines a person reads, and deleted orders reconciled."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import pytest

from e2e_support import ROOT, Meltano, Postgres, detail_requests, sandbox_stats
from omnitron_sandbox import Sandbox

if TYPE_CHECKING:
    from pathlib import Path

ORDERS = 40


@pytest.fixture
def database(postgres: Postgres) -> dict[str, str]:
    """A fresh database, and the loader settings that point target-postgres at it."""
    name = f"ops_{uuid.uuid4().hex[:8]}"
    postgres.sql(f"CREATE DATABASE {name}")
    return {
        "TARGET_POSTGRES_HOST": postgres.host,
        "TARGET_POSTGRES_PORT": str(postgres.port),
        "TARGET_POSTGRES_USER": postgres.user,
        "TARGET_POSTGRES_PASSWORD": "unused-trust-auth",
        "TARGET_POSTGRES_DATABASE": name,
    }


def shop_env(sandbox: Sandbox, prefix: str = "TAP_OMNITRON") -> dict[str, str]:
    return {f"{prefix}_BASE_URL": sandbox.url, f"{prefix}_API_TOKEN": sandbox.api_token}


def rows(postgres: Postgres, database: dict[str, str], query: str) -> list[dict]:
    return postgres.sql(query, db=database["TARGET_POSTGRES_DATABASE"])


def details_during(sandbox: Sandbox, action) -> int:
    before = detail_requests(sandbox_stats(sandbox.url))
    action()
    return detail_requests(sandbox_stats(sandbox.url)) - before


def test_the_schedules_and_their_jobs_are_declared(meltano: Meltano) -> None:
    listed = json.loads(meltano("schedule", "list", "--format=json").stdout)["schedules"]["job"]
    jobs = {s["name"]: (s["job"]["name"], s["job"]["tasks"], s["env"]) for s in listed}
    assert jobs["omnitron-to-postgres-hourly"] == (
        "omnitron-to-postgres",
        ["tap-omnitron target-postgres dbt-postgres:build"],
        {},
    )
    assert jobs["omnitron-to-postgres-weekly-full-refresh"][2] == {"MELTANO_RUN_FULL_REFRESH": "true"}
    assert "omnitron-to-snowflake-hourly" in jobs
    assert jobs["shops-to-postgres-hourly"][1] == [
        "tap-omnitron--shop-a target-postgres",
        "tap-omnitron--shop-b target-postgres",
    ]


def test_the_hourly_schedule_runs_incrementally_and_the_weekly_one_tells_deleted_orders_apart(
    meltano: Meltano, postgres: Postgres, database: dict[str, str]
) -> None:
    """One shop's week, in three scheduled runs (each a load and a dbt build): the first hourly
    run, an hourly run after 3 changes, and the weekly full refresh after 3 deletions."""
    meltano = meltano.isolated("schedule")
    with Sandbox(orders=ORDERS, seed=31) as sandbox:
        env = {**database, **shop_env(sandbox)}
        first = meltano("schedule", "run", "omnitron-to-postgres-hourly", env=env)
        assert "Starting: every order (no bookmark); the list reports 40 orders." in first.stderr
        assert "Finished in " in first.stderr and ": 40 orders, " in first.stderr
        changed = sandbox.modify(count=3)
        fetched = details_during(sandbox, lambda: meltano("schedule", "run", "omnitron-to-postgres-hourly", env=env))
        assert fetched == len(changed)
        statuses = {
            int(r["id"]): r["status"] for r in rows(postgres, database, "SELECT id, status FROM tap_omnitron.orders")
        }
        assert len(statuses) == ORDERS
        assert all(statuses[oid] == sandbox.list_record(oid)["status"] for oid in changed)

        deleted = sandbox.delete(count=3)
        started = datetime.now(timezone.utc)
        fetched = details_during(
            sandbox, lambda: meltano("schedule", "run", "omnitron-to-postgres-weekly-full-refresh", env=env)
        )
        assert fetched == ORDERS - len(deleted)
        untouched = rows(
            postgres,
            database,
            f"SELECT id FROM tap_omnitron.orders WHERE _sdc_batched_at < '{started.isoformat()}'",
        )
        assert {int(r["id"]) for r in untouched} == set(deleted)


def test_state_in_a_file_backend_and_none_in_the_system_database(meltano: Meltano, tmp_path: Path) -> None:
    meltano = meltano.isolated("file-state")
    backend = tmp_path / "state"
    with Sandbox(orders=ORDERS, seed=32) as sandbox:
        env = {
            **shop_env(sandbox),
            "MELTANO_STATE_BACKEND_URI": backend.as_uri(),
            "TARGET_DUCKDB_FILEPATH": str(tmp_path / "shop.duckdb"),
        }
        # The load alone: the state is the extractor's and the loader's, the dbt build adds nothing here.
        meltano("run", "tap-omnitron", "target-duckdb", env=env)
        sandbox.modify(count=4)
        fetched = details_during(sandbox, lambda: meltano("run", "tap-omnitron", "target-duckdb", env=env))
        assert fetched == 4  # the second run started from the file's state
        state = json.loads(meltano("state", "get", "dev:tap-omnitron-to-target-duckdb", env=env).stdout)
        bookmark = state["singer_state"]["bookmarks"]["orders"]["replication_key_value"]
        files = [p for p in backend.rglob("*") if p.is_file()]
        assert files and any(bookmark in p.read_text() for p in files)
    database = meltano.base_env["MELTANO_DATABASE_URI"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM state").fetchone() == (0,)


def test_two_shops_keep_their_own_tables_and_state(
    meltano: Meltano, postgres: Postgres, database: dict[str, str]
) -> None:
    meltano = meltano.isolated("shops")
    with Sandbox(orders=30, seed=33) as shop_a, Sandbox(orders=20, seed=34) as shop_b:
        env = {
            **database,
            **shop_env(shop_a, "TAP_OMNITRON__SHOP_A"),
            **shop_env(shop_b, "TAP_OMNITRON__SHOP_B"),
        }
        meltano("run", "shops-to-postgres", env=env)
        counts = {
            schema: int(rows(postgres, database, f"SELECT count(*) AS n FROM {schema}.orders")[0]["n"])
            for schema in ("tap_omnitron_shop_a", "tap_omnitron_shop_b")
        }
        assert counts == {"tap_omnitron_shop_a": 30, "tap_omnitron_shop_b": 20}
        shop_a.modify(count=2)
        fetched_a = details_during(shop_a, lambda: meltano("run", "shops-to-postgres", env=env))
        assert fetched_a == 2
        assert detail_requests(sandbox_stats(shop_b.url)) == 20, "shop B had nothing new"

        def bookmark(shop: str) -> str:
            state = json.loads(meltano("state", "get", f"dev:tap-omnitron--{shop}-to-target-postgres").stdout)
            return state["singer_state"]["bookmarks"]["orders"]["replication_key_value"]

        before = bookmark("shop-b")
        meltano("run", "tap-omnitron--shop-a", "target-postgres", env=env)
        assert bookmark("shop-a") > before == bookmark("shop-b"), "shop A's run moved shop A's state only"


def test_make_test_snowflake_without_an_account_says_so_in_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARGET_SNOWFLAKE_")}
    done = subprocess.run(
        ["make", "-s", "--no-print-directory", "snowflake-account"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout.splitlines() == [
        (
            "make test-snowflake: a real Snowflake account is needed; not set: TARGET_SNOWFLAKE_ACCOUNT "
            "TARGET_SNOWFLAKE_USER TARGET_SNOWFLAKE_DATABASE TARGET_SNOWFLAKE_WAREHOUSE "
            "TARGET_SNOWFLAKE_PASSWORD(or _PRIVATE_KEY_PATH)"
        )
    ]
