"""End to end: the dbt models in transform/ on real PostgreSQL and DuckDB, run by Meltano.

Per warehouse, with its own sandbox and Meltano state: `meltano run tap-omnitron <loader>
dbt-<warehouse>:build`, then the sandbox changes 5 orders and creates 2, and the same run
again. `dbt build` seeds, builds and tests every model (keys, relationships, statuses, the
marts' numbers against the raw tables); a failing dbt test fails the run. This module then
checks the marts against what the sandbox's HTTP API serves (read independently of the tap
and of dbt): every order's amounts, item count, status and flattened columns, total and
daily revenue, the items, the detail relations, and the status of the orders that changed
between the two runs. Also: source freshness passes, a dbt test fails when a mart is wrong,
the demo's report reads the marts, and every model compiles as Snowflake SQL offline.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from e2e_support import (
    DUCKDB_PY,
    PLUGIN_VENVS,
    ROOT,
    SECRET_MARK,
    Meltano,
    Source,
    as_utc,
    python_of,
    unavailable,
)
from test_pipelines import PostgresWarehouse, Warehouse, new_warehouse

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

ORDERS = 80
MARTS = "analytics"  # the utilities' `schema` setting; staging models go to analytics_staging
STAGING = f"{MARTS}_staging"
UTILITY = {"postgres": "dbt-postgres", "duckdb": "dbt-duckdb"}
MODELS = (
    "stg_omnitron__orders", "stg_omnitron__order_items", "stg_omnitron__order_details",
    "stg_omnitron__payment_transactions", "stg_omnitron__shipping_infos",
    "stg_omnitron__cancellation_plans",
    "omnitron__orders", "omnitron__order_items", "omnitron__daily_revenue",
)  # fmt: skip
ORDER_COLUMNS = (
    "order_id", "order_number", "status_code", "status_name", "currency", "placed_on", "item_count",
    "items_amount", "gross_amount", "discount_amount", "refund_amount", "net_amount", "order_amount",
    "customer_email", "customer_first_name", "customer_last_name", "shipping_city",
    "shipping_country", "shipping_country_code", "billing_city", "billing_country_code",
    "payment_option_slug", "payment_option_name", "cargo_company_name", "channel_name",
)  # fmt: skip


def _utility_installed(name: str) -> None:
    if not (PLUGIN_VENVS / "utilities" / name / "venv" / "bin" / "dbt").exists():
        unavailable(f"Meltano utility {name} is not installed: run `make meltano`")


def select(wh: Warehouse, table: str, columns: tuple[str, ...]) -> list[dict[str, str | None]]:
    """Rows of a model as text (dates and numbers cast in SQL: no driver conversions)."""
    cols = ", ".join(f"CAST({c} AS VARCHAR) AS {c}" for c in columns)
    return [dict(zip(columns, r, strict=True)) for r in wh.rows(f"SELECT {cols} FROM {table}")]


def _execute(wh: Warehouse, sql: str) -> None:
    if isinstance(wh, PostgresWarehouse):
        wh.pg.sql(sql, db=wh.db)
        return
    code = "import duckdb, sys\nduckdb.connect(sys.argv[1]).execute(sys.argv[2])\n"
    subprocess.run([str(DUCKDB_PY), "-c", code, str(wh.path), sql], check=True, timeout=60)


def dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


@dataclass
class Analytics:
    wh: Warehouse
    utility: str
    meltano: Meltano
    env: dict[str, str]
    source: Source
    first: dict[int, dict] = field(default_factory=dict)  # omnitron__orders after the first run
    second: dict[int, dict] = field(default_factory=dict)  # ... after the second
    modified: list[int] = field(default_factory=list)
    created: list[int] = field(default_factory=list)

    def orders_mart(self) -> dict[int, dict]:
        return {int(r["order_id"]): r for r in select(self.wh, f"{MARTS}.omnitron__orders", ORDER_COLUMNS)}

    def dbt(self, command: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.meltano("invoke", f"{self.utility}:{command}", *args, env=self.env, check=check)


@pytest.fixture(scope="module", params=["postgres", "duckdb"])
def analytics(
    request: pytest.FixtureRequest,
    meltano: Meltano,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Analytics]:
    from omnitron_sandbox import Sandbox

    _utility_installed(UTILITY[request.param])
    wh = new_warehouse(request, tmp_path_factory, "analytics")
    dbt_dir = tmp_path_factory.mktemp(f"dbt-{wh.name}")  # dbt's target/ and logs/, not transform/'s
    seed = {"postgres": 303, "duckdb": 404}[request.param]
    with Sandbox(orders=ORDERS, seed=seed, latency_ms=0) as sb:
        env = {
            "TAP_OMNITRON_BASE_URL": sb.url,
            "TAP_OMNITRON_API_TOKEN": sb.api_token,
            **wh.env(),
            "DBT_TARGET_PATH": str(dbt_dir / "target"),
            "DBT_LOG_PATH": str(dbt_dir / "logs"),
        }
        a = Analytics(
            wh=wh,
            utility=UTILITY[wh.name],
            meltano=meltano.isolated(f"analytics-{wh.name}"),
            env=env,
            source=Source(orders={}, items={}, details={}),
        )
        a.meltano.run("tap-omnitron", wh.loader, f"{a.utility}:build", env=env)
        a.first = a.orders_mart()
        a.modified = sb.modify(count=5)
        a.created = sb.create(2)
        a.meltano.run("tap-omnitron", wh.loader, f"{a.utility}:build", env=env)
        a.second = a.orders_mart()
        a.source = Source.fetch(sb.url, sb.api_token)
        yield a


# -- the order mart -------------------------------------------------------------------------
def test_every_model_was_built(analytics: Analytics) -> None:
    built = {
        t
        for (t,) in analytics.wh.rows(
            f"SELECT table_name FROM information_schema.tables WHERE table_schema IN ('{MARTS}', '{STAGING}')"
        )
    }
    assert set(MODELS) <= built, set(MODELS) - built


def test_orders_mart_equals_source(analytics: Analytics) -> None:
    from omnitron_sandbox.data import STATUSES

    src, mart = analytics.source, analytics.second
    assert set(mart) == set(src.orders)
    for oid, o in src.orders.items():
        row, detail = mart[oid], src.details[oid]
        amount, discount, refund = Decimal(o["amount"]), Decimal(o["discount_amount"]), Decimal(o["refund_amount"])
        assert dec(row["order_amount"]) == amount, (oid, row["order_amount"], o["amount"])
        assert dec(row["discount_amount"]) == discount
        assert dec(row["refund_amount"]) == refund
        assert dec(row["gross_amount"]) == amount + discount
        assert dec(row["net_amount"]) == amount - refund
        assert int(row["item_count"]) == len(o["orderitem_set"])
        assert dec(row["items_amount"]) == sum(Decimal(i["price"]) for i in o["orderitem_set"])
        assert (row["status_code"], row["status_name"]) == (o["status"], STATUSES[o["status"]])
        assert row["status_name"] == detail["status_display"]
        assert row["order_number"] == o["number"]
        assert row["currency"] == o["currency"].upper()
        assert row["placed_on"] == as_utc(o["date_placed"]).date().isoformat()
        # nested JSON flattened (non-ASCII text intact)
        assert (row["customer_email"], row["customer_first_name"], row["customer_last_name"]) == (
            o["customer"]["email"],
            o["customer"]["first_name"],
            o["customer"]["last_name"],
        )
        ship, bill = o["shipping_address"], o["billing_address"]
        assert (row["shipping_city"], row["shipping_country"], row["shipping_country_code"]) == (
            ship["city"]["name"],
            ship["country"]["name"],
            ship["country"]["code"].upper(),
        )
        assert (row["billing_city"], row["billing_country_code"]) == (
            bill["city"]["name"],
            bill["country"]["code"].upper(),
        )
        assert row["channel_name"] == o["channel"]["name"]
        assert row["payment_option_slug"] == o["payment_option_slug"]
        assert row["payment_option_name"] == detail["payment_option"]["name"]
        assert row["cargo_company_name"] == (detail["cargo_company"] or {}).get("name")
    assert any(r["cargo_company_name"] is None for r in mart.values())  # orders without one are kept
    assert any(any(ord(ch) > 127 for ch in r["customer_last_name"]) for r in mart.values())


def test_status_change_between_runs(analytics: Analytics) -> None:
    first, second, src = analytics.first, analytics.second, analytics.source
    assert len(analytics.modified) == 5 and len(analytics.created) == 2
    for oid in analytics.modified:
        assert first[oid]["status_code"] != second[oid]["status_code"] == src.orders[oid]["status"], oid
        assert first[oid]["status_name"] != second[oid]["status_name"]
        assert dec(second[oid]["order_amount"]) == Decimal(src.orders[oid]["amount"])
    for oid in analytics.created:
        assert oid not in first and oid in second
    untouched = set(first) - set(analytics.modified)
    assert all(first[o] == second[o] for o in untouched)


# -- revenue -------------------------------------------------------------------------------
def test_total_revenue(analytics: Analytics) -> None:
    src = analytics.source
    rows = analytics.wh.rows(
        "SELECT currency, CAST(sum(order_count) AS VARCHAR) AS n, CAST(sum(item_count) AS VARCHAR) AS i, "
        "CAST(sum(order_amount) AS VARCHAR) AS a, CAST(sum(net_amount) AS VARCHAR) AS net "
        f"FROM {MARTS}.omnitron__daily_revenue GROUP BY currency"
    )
    want: dict[str, list] = defaultdict(lambda: [0, 0, Decimal(0), Decimal(0)])
    for o in src.orders.values():
        w = want[o["currency"].upper()]
        w[0] += 1
        w[1] += len(o["orderitem_set"])
        w[2] += Decimal(o["amount"])
        w[3] += Decimal(o["amount"]) - Decimal(o["refund_amount"])
    got = {c: [int(n), int(i), Decimal(a), Decimal(net)] for c, n, i, a, net in rows}
    assert got == dict(want)
    assert sum(v[0] for v in got.values()) == ORDERS + 2
    print(f"{analytics.wh.name}: total revenue {got}")


def test_daily_revenue_by_status_and_currency(analytics: Analytics) -> None:
    want: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0), Decimal(0)])
    for o in analytics.source.orders.values():
        w = want[(as_utc(o["date_placed"]).date().isoformat(), o["status"], o["currency"].upper())]
        w[0] += 1
        w[1] += Decimal(o["amount"]) + Decimal(o["discount_amount"])
        w[2] += Decimal(o["discount_amount"])
    rows = select(
        analytics.wh,
        f"{MARTS}.omnitron__daily_revenue",
        ("placed_on", "status_code", "currency", "order_count", "gross_amount", "discount_amount"),
    )
    got = {
        (r["placed_on"], r["status_code"], r["currency"]): [
            int(r["order_count"]),
            dec(r["gross_amount"]),
            dec(r["discount_amount"]),
        ]
        for r in rows
    }
    assert len(rows) == len(got)  # one row per day, status and currency
    assert got == dict(want)


# -- items and the detail relations -------------------------------------------------------------
def test_order_items_mart(analytics: Analytics) -> None:
    src = analytics.source
    rows = select(
        analytics.wh,
        f"{MARTS}.omnitron__order_items",
        (
            "order_item_id",
            "order_id",
            "price",
            "status_code",
            "order_status_code",
            "placed_on",
            "customer_email",
            "channel_name",
        ),
    )
    assert Counter(int(r["order_item_id"]) for r in rows) == Counter(list(src.items))  # each item once
    for r in rows:
        item, order = src.items[int(r["order_item_id"])], src.orders[int(r["order_id"])]
        assert int(r["order_id"]) == item["order"]
        assert dec(r["price"]) == Decimal(item["price"])
        assert r["status_code"] == item["status"]
        assert r["order_status_code"] == order["status"]
        assert r["placed_on"] == as_utc(order["date_placed"]).date().isoformat()
        assert (r["customer_email"], r["channel_name"]) == (order["customer"]["email"], order["channel"]["name"])


def test_payment_transactions_shipping_infos_cancellation_plans(analytics: Analytics) -> None:
    wh, details = analytics.wh, analytics.source.details.values()
    want = {
        t["pk"]: (d["pk"], Decimal(t["amount"]), t["transaction_type"], t["pos"]["name"])
        for d in details
        for t in d["transaction_set"]
    }
    rows = select(
        wh,
        f"{STAGING}.stg_omnitron__payment_transactions",
        ("transaction_id", "order_id", "amount", "transaction_type", "pos_name"),
    )
    got = {
        int(r["transaction_id"]): (int(r["order_id"]), dec(r["amount"]), r["transaction_type"], r["pos_name"])
        for r in rows
    }
    assert len(rows) == len(got) and got == want and want
    columns = {
        c
        for (c,) in wh.rows(
            "SELECT column_name FROM information_schema.columns "
            f"WHERE table_schema = '{STAGING}' AND table_name = 'stg_omnitron__payment_transactions'"
        )
    }
    assert not {"raw_request", "raw_response"} & columns

    want = {s["pk"]: (d["pk"], s["shipping_company"]) for d in details for s in d["ordershippinginfo_set"]}
    rows = select(wh, f"{STAGING}.stg_omnitron__shipping_infos", ("shipping_info_id", "order_id", "shipping_company"))
    assert {int(r["shipping_info_id"]): (int(r["order_id"]), r["shipping_company"]) for r in rows} == want and want

    # The sandbox, like the documented example, serves no cancellation plans: the model is empty.
    plans = sum(len(d["cancellationplan_set"] or []) for d in details)
    assert int(wh.scalar(f"SELECT count(*) FROM {STAGING}.stg_omnitron__cancellation_plans")) == plans


def test_cancellation_plans_from_a_loaded_plan(analytics: Analytics) -> None:
    """The sandbox serves no plans, so one is written into a loaded row (the staging models are views)."""
    wh, oid = analytics.wh, max(analytics.second)
    plan = {
        "pk": 9001,
        "amount": "98765.43210987",
        "created_date": "2025-01-02T03:04:05.123456Z",
        "modified_date": "2025-01-03T00:00:00+03:00",
        "not_declared": "kept out",
    }
    doc = json.dumps(plan).replace("'", "''")
    value = f"ARRAY['{doc}'::jsonb]" if isinstance(wh, PostgresWarehouse) else f"'[{doc}]'"
    table = "tap_omnitron.order_details"
    _execute(wh, f"UPDATE {table} SET cancellationplan_set = {value} WHERE pk = {oid}")
    try:
        rows = select(
            wh,
            f"{STAGING}.stg_omnitron__cancellation_plans",
            ("cancellation_plan_id", "order_id", "amount", "created_at", "modified_at"),
        )
        tested = analytics.dbt("test", "--select", "stg_omnitron__cancellation_plans", check=False)
    finally:
        empty = "ARRAY[]::jsonb[]" if isinstance(wh, PostgresWarehouse) else "'[]'"
        _execute(wh, f"UPDATE {table} SET cancellationplan_set = {empty} WHERE pk = {oid}")
    assert len(rows) == 1, rows
    row = rows[0]
    assert (int(row["cancellation_plan_id"]), int(row["order_id"])) == (9001, oid)
    assert dec(row["amount"]) == Decimal("98765.43210987")
    assert as_utc(row["created_at"]) == as_utc(plan["created_date"])
    assert as_utc(row["modified_at"]) == as_utc(plan["modified_date"])
    assert tested.returncode == 0, tested.stdout


def test_no_secrets_in_any_model(analytics: Analytics) -> None:
    wh = analytics.wh
    for model in MODELS:
        schema = MARTS if model.startswith("omnitron__") else STAGING
        text = wh.row_as_text("t")
        hits = wh.scalar(
            f"SELECT count(*) FROM {schema}.{model} t WHERE {text} LIKE '%REDACTED%' OR {text} LIKE '%{SECRET_MARK}%'"
        )
        assert int(hits) == 0, model


# -- dbt itself: freshness, and tests that fail when a mart is wrong ------------------------------
def test_source_freshness(analytics: Analytics) -> None:
    out = analytics.dbt("freshness").stdout
    for table in ("orders", "order_items", "order_details"):
        assert f"PASS freshness of omnitron.{table}" in out, out


def test_dbt_tests_fail_when_a_mart_is_wrong(analytics: Analytics) -> None:
    oid = min(analytics.second)
    table = f"{MARTS}.omnitron__orders"
    _execute(analytics.wh, f"UPDATE {table} SET order_amount = order_amount + 0.01 WHERE order_id = {oid}")
    try:
        proc = analytics.dbt("test", "--select", "assert_orders_mart_matches_source", check=False)
    finally:
        _execute(analytics.wh, f"UPDATE {table} SET order_amount = order_amount - 0.01 WHERE order_id = {oid}")
    assert proc.returncode != 0
    assert "FAIL 1 assert_orders_mart_matches_source" in proc.stdout, proc.stdout
    assert analytics.dbt("test", "--select", "assert_orders_mart_matches_source").returncode == 0


# -- the demo's report, read from the marts ---------------------------------------------------------
@pytest.mark.parametrize("analytics", ["duckdb"], indirect=True)
def test_demo_report_reads_the_marts(analytics: Analytics) -> None:
    proc = subprocess.run(
        [python_of(DUCKDB_PY), str(ROOT / "scripts" / "demo_report.py"), "--db", str(analytics.wh.path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out, src = proc.stdout, analytics.source
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for o in src.orders.values():
        totals[o["currency"]] += Decimal(o["amount"])
    for currency, total in totals.items():
        count = sum(1 for o in src.orders.values() if o["currency"] == currency)
        assert f"total {currency.upper()}: {count} orders, {total:,.2f}" in out, out
    assert f"{len(src.orders)} orders, {len(src.items)} order items" in out
    assert f"marts in {analytics.wh.path}: {MARTS}.omnitron__orders" in out


# -- Snowflake: the same SQL, compiled without an account -----------------------------------------
def test_models_compile_for_snowflake(meltano: Meltano, tmp_path: Path) -> None:
    _utility_installed("dbt-snowflake")
    env = {"DBT_TARGET_PATH": str(tmp_path / "target"), "DBT_LOG_PATH": str(tmp_path / "logs")}
    meltano("invoke", "dbt-snowflake:compile-offline", env=env)
    compiled = tmp_path / "target" / "compiled" / "omnitron"
    models = {p.stem: p.read_text() for p in compiled.glob("models/*/*.sql")}  # generic tests: models/*/*.yml/
    assert set(models) == set(MODELS)
    assert "lateral flatten(input => d.transaction_set)" in models["stg_omnitron__payment_transactions"]
    assert "strip_null_value(get_path(o.customer, 'email'))" in models["stg_omnitron__orders"]
    assert "timestamp_tz_from_parts(" in models["stg_omnitron__orders"]
    assert len(list(compiled.glob("tests/*.sql"))) == 3  # the singular tests compile too
    assert len(list(compiled.glob("models/*/*.yml/*.sql"))) >= 50  # and the generic ones
