"""End to end: sandbox API -> `meltano run tap-omnitron <target>` -> SQL, twice (incremental).

Each target gets its own sandbox and its own Meltano state. The expected values are read
from the sandbox's public HTTP API (list pages and detailed_integration), independently of
the tap. What is checked after the first run: row counts, column types, exact money,
timestamps, nested/non-ASCII data, item -> order joins, no secrets. After the sandbox
changes some orders and creates new ones, a second run must update exactly those rows,
add the new ones, fetch only the changed orders' details, and create no duplicate keys.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from e2e_support import (
    DUCKDB_PY,
    SECRET_MARK,
    STREAMS,
    Meltano,
    Postgres,
    Source,
    as_decimal,
    as_utc,
    columns_with_format,
    detail_requests,
    duckdb_query,
    python_of,
    sandbox_stats,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

SCHEMA = "tap_omnitron"
ORDERS = 150  # two list pages at the default page_size (100)


# -- the two SQL targets behind one small interface ---------------------------------------
class Warehouse:
    name: str
    loader: str
    money_types: set[str]
    timestamp_types: set[str]

    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def rows(self, sql: str) -> list[list[str | None]]:
        raise NotImplementedError

    def scalar(self, sql: str) -> str | None:
        rows = self.rows(sql)
        assert len(rows) == 1 and len(rows[0]) == 1, rows
        return rows[0][0]

    def row_as_text(self, alias: str) -> str:
        raise NotImplementedError

    def row_as_json(self, alias: str) -> str:
        raise NotImplementedError

    def column_types(self, table: str) -> dict[str, str]:
        return {
            c: (t or "").lower()
            for c, t in self.rows(
                "SELECT column_name, data_type FROM information_schema.columns "
                f"WHERE table_schema = '{SCHEMA}' AND table_name = '{table}'"
            )
        }

    def dump(self, table: str) -> dict[int, dict]:
        """Every row of a table as JSON (numbers as Decimal), keyed by primary key."""
        key = STREAMS[table]
        out: dict[int, dict] = {}
        for (doc,) in self.rows(f'SELECT {self.row_as_json("t")} FROM {SCHEMA}."{table}" t'):
            row = json.loads(doc, parse_float=Decimal)
            out[int(row[key])] = row
        return out

    def secret_rows(self, table: str) -> int:
        return int(
            self.scalar(
                f"SELECT count(*) FROM {SCHEMA}.\"{table}\" t WHERE {self.row_as_text('t')} LIKE '%{SECRET_MARK}%'"
            )
        )

    def duplicate_keys(self, table: str) -> int:
        key = STREAMS[table]
        return int(self.scalar(f'SELECT count(*) - count(DISTINCT "{key}") FROM {SCHEMA}."{table}"'))


@dataclass
class PostgresWarehouse(Warehouse):
    pg: Postgres
    db: str
    name = "postgres"
    loader = "target-postgres"
    money_types = {"numeric"}  # noqa: RUF012  (a constant of the class)
    timestamp_types = {"timestamp without time zone", "timestamp with time zone"}  # noqa: RUF012  (a constant of the class)

    def env(self) -> dict[str, str]:
        return {
            "TARGET_POSTGRES_HOST": self.pg.host,
            "TARGET_POSTGRES_PORT": str(self.pg.port),
            "TARGET_POSTGRES_USER": self.pg.user,
            "TARGET_POSTGRES_PASSWORD": "unused-trust-auth",
            "TARGET_POSTGRES_DATABASE": self.db,
        }

    def rows(self, sql: str) -> list[list[str | None]]:
        return [list(r.values()) for r in self.pg.sql(sql, db=self.db)]

    def row_as_text(self, alias: str) -> str:
        return f"CAST({alias} AS text)"

    def row_as_json(self, alias: str) -> str:
        return f"row_to_json({alias})::text"


@dataclass
class DuckDBWarehouse(Warehouse):
    path: Path
    name = "duckdb"
    loader = "target-duckdb"
    # target-duckdb maps every JSON-schema string to VARCHAR, x-singer.decimal included:
    # money stays exact decimal text and is CAST to DECIMAL in queries (see docs/pipelines.md).
    money_types = {"varchar"}  # noqa: RUF012  (a constant of the class)
    timestamp_types = {"timestamp", "timestamp with time zone"}  # noqa: RUF012  (a constant of the class)

    def env(self) -> dict[str, str]:
        return {"TARGET_DUCKDB_FILEPATH": str(self.path)}

    def rows(self, sql: str) -> list[list[str | None]]:
        return duckdb_query(self.path, sql)

    def row_as_text(self, alias: str) -> str:
        return f"CAST({alias} AS VARCHAR)"

    def row_as_json(self, alias: str) -> str:
        return f"CAST(to_json({alias}) AS VARCHAR)"


# -- one pipeline per target: sandbox + warehouse + two runs ------------------------------
@dataclass
class Run:
    seconds: float
    details_fetched: int
    source: Source
    tables: dict[str, dict[int, dict]] = field(default_factory=dict)


@dataclass
class Pipeline:
    wh: Warehouse
    sandbox: object
    meltano: Meltano
    first: Run | None = None
    second: Run | None = None
    modified: list[int] = field(default_factory=list)
    created: list[int] = field(default_factory=list)

    def run(self) -> Run:
        sb = self.sandbox
        before = detail_requests(sandbox_stats(sb.url))
        seconds = self.meltano.run(
            "tap-omnitron",
            self.wh.loader,
            env={"TAP_OMNITRON_BASE_URL": sb.url, "TAP_OMNITRON_API_TOKEN": sb.api_token, **self.wh.env()},
        )
        fetched = detail_requests(sandbox_stats(sb.url)) - before
        run = Run(seconds=seconds, details_fetched=fetched, source=Source.fetch(sb.url, sb.api_token))
        run.tables = {t: self.wh.dump(t) for t in STREAMS}
        return run


def new_warehouse(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, name: str) -> Warehouse:
    """An empty database of the kind `request.param` names: a new PostgreSQL database, or a
    new DuckDB file."""
    if request.param == "postgres":
        pg: Postgres = request.getfixturevalue("postgres")
        db = f"{name}_{uuid.uuid4().hex[:8]}"
        pg.sql(f"CREATE DATABASE {db}")
        return PostgresWarehouse(pg=pg, db=db)
    python_of(DUCKDB_PY)
    return DuckDBWarehouse(path=tmp_path_factory.mktemp(f"{name}-duckdb") / "omnitron.duckdb")


@pytest.fixture(scope="module", params=["postgres", "duckdb"])
def pipeline(
    request: pytest.FixtureRequest,
    meltano: Meltano,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Pipeline]:
    from omnitron_sandbox import Sandbox

    wh = new_warehouse(request, tmp_path_factory, "omnitron")
    seed = {"postgres": 101, "duckdb": 202}[request.param]
    with Sandbox(orders=ORDERS, seed=seed, latency_ms=0) as sb:
        p = Pipeline(wh=wh, sandbox=sb, meltano=meltano.isolated(f"state-{wh.name}"))
        p.first = p.run()
        p.modified = sb.modify(count=5)
        p.created = sb.create(2)
        p.second = p.run()
        print(
            f"{wh.name}: first run {p.first.seconds:.1f}s, second run {p.second.seconds:.1f}s "
            f"({p.second.details_fetched} details fetched)"
        )
        yield p


# -- first run ---------------------------------------------------------------------------
def test_row_counts_match_source(pipeline: Pipeline) -> None:
    run = pipeline.first
    src = run.source
    assert len(src.orders) == ORDERS
    assert set(run.tables["orders"]) == set(src.orders)
    assert set(run.tables["order_details"]) == set(src.orders)
    assert set(run.tables["order_items"]) == set(src.items)
    assert len(run.tables["order_items"]) == sum(len(o["orderitem_set"]) for o in src.orders.values())
    assert run.details_fetched >= ORDERS


def test_column_types(pipeline: Pipeline, catalog: dict) -> None:
    wh = pipeline.wh
    for stream in STREAMS:
        types = wh.column_types(stream)
        assert types, f"no table {stream}"
        money = columns_with_format(catalog, stream, "x-singer.decimal")
        stamps = columns_with_format(catalog, stream, "date-time")
        assert money and stamps
        wrong = {c: types.get(c) for c in money if types.get(c) not in wh.money_types}
        assert not wrong, f"{stream}: money columns not {wh.money_types}: {wrong}"
        wrong = {c: types.get(c) for c in stamps if types.get(c) not in wh.timestamp_types}
        assert not wrong, f"{stream}: date-time columns not {wh.timestamp_types}: {wrong}"


def _source_rows(src: Source, stream: str) -> dict[int, dict]:
    return {"orders": src.orders, "order_items": src.items, "order_details": src.details}[stream]


def _assert_same_values(run: Run, catalog: dict, ids: dict[str, set[int]] | None = None) -> None:
    """Money (exact) and timestamps of the loaded rows equal the source's."""
    for stream in STREAMS:
        loaded, source = run.tables[stream], _source_rows(run.source, stream)
        keys = ids[stream] if ids else set(source)
        money = columns_with_format(catalog, stream, "x-singer.decimal")
        stamps = columns_with_format(catalog, stream, "date-time")
        for k in keys:
            row, want = loaded[k], source[k]
            for c in money:
                got, exp = as_decimal(row.get(c)), as_decimal(want.get(c))
                assert got == exp, f"{stream}[{k}].{c}: loaded {row.get(c)!r} != source {want.get(c)!r}"
            for c in stamps:
                got, exp = as_utc(row.get(c)), as_utc(want.get(c))
                assert got == exp, f"{stream}[{k}].{c}: loaded {row.get(c)!r} != source {want.get(c)!r}"


def test_money_and_timestamps_exact(pipeline: Pipeline, catalog: dict) -> None:
    _assert_same_values(pipeline.first, catalog)
    # Sums in SQL: no float anywhere on the way (DuckDB keeps the text, so cast there).
    cast = "amount" if pipeline.wh.name == "postgres" else "CAST(amount AS DECIMAL(38, 8))"
    total = Decimal(pipeline.wh.scalar(f"SELECT sum({cast}) FROM {SCHEMA}.orders"))
    # (the second run changed some amounts; compare with what the source says now)
    assert total == sum(Decimal(o["amount"]) for o in pipeline.second.source.orders.values())


def test_nested_and_non_ascii_text(pipeline: Pipeline) -> None:
    run = pipeline.first
    non_ascii = 0
    for oid, want in run.source.orders.items():
        row = run.tables["orders"][oid]
        assert row["number"] == want["number"]
        assert row["customer"] == want["customer"]
        assert row["shipping_address"] == want["shipping_address"]
        assert [it["id"] for it in row["orderitem_set"]] == [it["id"] for it in want["orderitem_set"]]
        assert [as_decimal(it["price"]) for it in row["orderitem_set"]] == [
            as_decimal(it["price"]) for it in want["orderitem_set"]
        ]
        non_ascii += any(ord(ch) > 127 for ch in json.dumps(want["customer"], ensure_ascii=False))
    assert non_ascii > 0, "sandbox data had no non-ASCII text to check"
    for oid, want in run.source.details.items():
        row = run.tables["order_details"][oid]
        assert row["number"] == want["number"]
        assert row["status_display"] == want["status_display"]


def test_every_item_joins_its_order(pipeline: Pipeline) -> None:
    orphans = pipeline.wh.scalar(
        f'SELECT count(*) FROM {SCHEMA}.order_items i LEFT JOIN {SCHEMA}.orders o ON o.id = i."order" '
        "WHERE o.id IS NULL"
    )
    assert int(orphans) == 0
    for item in pipeline.first.tables["order_items"].values():
        assert int(item["order"]) in pipeline.first.tables["orders"]


def test_no_secrets_loaded(pipeline: Pipeline) -> None:
    src = pipeline.first.source
    assert any(SECRET_MARK in json.dumps(d, default=str) for d in src.details.values()), (
        "the sandbox serves no secrets: this test would prove nothing"
    )
    for stream in STREAMS:
        for run in (pipeline.first, pipeline.second):
            assert SECRET_MARK not in json.dumps(run.tables[stream], default=str), stream
        assert pipeline.wh.secret_rows(stream) == 0, stream


# -- second run: incremental ---------------------------------------------------------------
def test_incremental_run_updates_changed_orders(pipeline: Pipeline, catalog: dict) -> None:
    first, second = pipeline.first, pipeline.second
    assert len(pipeline.modified) == 5 and len(pipeline.created) == 2
    changed = set(pipeline.modified)
    for oid in changed:
        old, new = first.tables["orders"][oid], second.tables["orders"][oid]
        want = second.source.orders[oid]
        assert (new["status"], new["tracking_number"]) == (want["status"], want["tracking_number"])
        assert (old["status"], old["tracking_number"]) != (new["status"], new["tracking_number"])
        assert as_decimal(new["amount"]) == as_decimal(want["amount"])
        assert as_utc(new.get("modified_date")) == as_utc(want.get("modified_date"))  # None: documented
    item_ids = {
        it["id"] for oid in changed | set(pipeline.created) for it in second.source.orders[oid]["orderitem_set"]
    }
    _assert_same_values(
        second,
        catalog,
        ids={
            "orders": changed | set(pipeline.created),
            "order_details": changed | set(pipeline.created),
            "order_items": item_ids,
        },
    )
    # Orders nobody touched are as they were.
    for oid in set(first.source.orders) - changed:
        assert as_decimal(second.tables["orders"][oid]["amount"]) == as_decimal(first.tables["orders"][oid]["amount"])


def test_incremental_run_adds_new_orders_without_duplicates(pipeline: Pipeline) -> None:
    second = pipeline.second
    src = second.source
    assert set(pipeline.created) <= set(second.tables["orders"])
    assert set(second.tables["orders"]) == set(src.orders)
    assert set(second.tables["order_details"]) == set(src.orders)
    assert set(second.tables["order_items"]) == set(src.items)
    for stream in STREAMS:
        assert pipeline.wh.duplicate_keys(stream) == 0, stream


def test_incremental_run_reads_only_changed_orders(pipeline: Pipeline) -> None:
    # One detail request per changed or new order: the bookmark is the first run's start.
    fetched = pipeline.second.details_fetched
    assert fetched == 7, f"second run fetched {fetched} order details"
    state = pipeline.meltano("state", "get", f"dev:tap-omnitron-to-{pipeline.wh.loader}").stdout
    bookmark = json.loads(state)["singer_state"]["bookmarks"]["orders"]["replication_key_value"]
    # The server's clock (to the second) at the start of the second run: after every change.
    newest = max(as_utc(o["modified_date"]) for o in pipeline.sandbox.ground_truth())
    assert newest.replace(microsecond=0) <= as_utc(bookmark) < newest + timedelta(minutes=5)
