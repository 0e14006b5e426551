"""Small helpers for `make demo`.

Two modes:

* ``--db FILE``: print a short summary of what `meltano run tap-omnitron target-duckdb`
  loaded (row counts of the loaded tables) and a report read from the dbt marts that
  `dbt-duckdb:build` made in the same file (transform/). Run it with the target-duckdb
  plugin's Python (it needs ``duckdb``, in the version the file was written with). Money
  is summed as DECIMAL, never as float.
* ``--mutate URL``: ask a running sandbox to modify/create some orders (stdlib only), so
  that a second demo run has something for the incremental sync to pick up.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from decimal import Decimal

SCHEMA = "tap_omnitron"  # the loader's tables
MARTS = "analytics"  # the dbt marts (transform/, the dbt-duckdb utility's schema)
MART_NAMES = ("omnitron__orders", "omnitron__order_items", "omnitron__daily_revenue")


def money(value: Decimal | None) -> str:
    """Exact decimal text with at least two places: 1234.5 -> '1234.50'."""
    if value is None:
        return "-"
    value = Decimal(value).normalize()
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        value = value.quantize(Decimal("0.01"))
    return f"{value:,f}"


def table(headers: list[str], rows: list[list[str]], numeric: int = 1) -> str:
    """Plain-text table; the last `numeric` columns are right-aligned."""
    widths = [max(len(str(x)) for x in [h, *(r[i] for r in rows)]) for i, h in enumerate(headers)]
    right = [i >= len(headers) - numeric for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            str(c).rjust(w) if r else str(c).ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        ).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def report(db: str, since: str | None, state: str | None) -> None:
    import duckdb  # noqa: PLC0415  (only in the target-duckdb venv)

    con = duckdb.connect(db, read_only=True)

    def q(sql: str, *p: object) -> list:
        return con.execute(sql, list(p)).fetchall()

    cols = {
        r[0]
        for r in q(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = 'orders'",
            SCHEMA,
        )
    }
    (n_orders,) = q(f"SELECT count(*) FROM {SCHEMA}.orders")[0]
    (n_items,) = q(f"SELECT count(*) FROM {SCHEMA}.order_items")[0]
    (n_details,) = q(f"SELECT count(*) FROM {SCHEMA}.order_details")[0]
    print(f"\nloaded into {db}: {n_orders} orders, {n_items} order items, {n_details} order details")
    if since and "_sdc_batched_at" in cols:
        (this_run,) = q(f"SELECT count(*) FROM {SCHEMA}.orders WHERE _sdc_batched_at >= ?::TIMESTAMP", since)[0]
        print(f"orders written by this run: {this_run}")
    if state:
        try:
            bookmarks = json.loads(state).get("singer_state", {}).get("bookmarks", {})
            mark = bookmarks.get("orders", {}).get("replication_key_value")
            if mark:
                print(f"state bookmark (next run starts here): orders.modified_date = {mark}")
        except (ValueError, AttributeError):
            pass

    # The rest comes from the dbt marts (transform/models/marts), built after the load.
    have = {r[0] for r in q("SELECT table_name FROM information_schema.tables WHERE table_schema = ?", MARTS)}
    if missing := [m for m in MART_NAMES if m not in have]:
        print(
            f"\nno dbt marts in {db} ({MARTS}.{', '.join(missing)} missing): "
            "run `meltano invoke dbt-duckdb:build` after the load"
        )
        sys.exit(1)
    print(
        f"\nmodels: transform/ (dbt, `meltano invoke dbt-duckdb:build`); marts in {db}: "
        + ", ".join(f"{MARTS}.{m}" for m in MART_NAMES)
    )

    # Amounts are DECIMAL(28, 8) in the marts: summed exactly, never as float.
    rows = q(f"""
        SELECT status_code, status_name, currency, sum(order_count), sum(order_amount)
        FROM {MARTS}.omnitron__daily_revenue
        GROUP BY status_code, status_name, currency
        ORDER BY try_cast(status_code AS INTEGER), currency""")
    print("\norders per status  (omnitron__daily_revenue)")
    print(
        table(
            ["status", "name", "currency", "orders", "revenue (sum of amount)"],
            [[s or "-", n or "?", c or "-", str(k), money(r)] for s, n, c, k, r in rows],
            numeric=2,
        )
    )
    totals = q(f"""
        SELECT currency, count(*), sum(order_amount)
        FROM {MARTS}.omnitron__orders GROUP BY currency ORDER BY currency""")
    for c, n, r in totals:
        print(f"total {c or '-'}: {n} orders, {money(r)}")

    rows = q(f"SELECT item_count, count(*) FROM {MARTS}.omnitron__orders GROUP BY item_count ORDER BY item_count")
    print("\nitems per order  (omnitron__orders)")
    print(table(["items", "orders"], [[str(i), str(n)] for i, n in rows], numeric=2))
    (avg,) = q(f"SELECT round(sum(item_count) / count(*), 2) FROM {MARTS}.omnitron__orders")[0]
    print(f"average: {avg} items per order")


def mutate(url: str, modify: int, create: int) -> None:
    body = json.dumps({"modify": modify, "create": create}).encode()
    req = urllib.request.Request(
        url.rstrip("/") + "/_sandbox/mutate",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()
    print(f"second run: sandbox changed {modify} orders and created {create} (incremental sync picks them up)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", help="DuckDB file to summarise")
    p.add_argument("--since", help="UTC time the run started (counts rows written by it)")
    p.add_argument("--state", help="output of `meltano state get ...`")
    p.add_argument("--mutate", metavar="URL", help="sandbox base URL to change")
    p.add_argument("--modify", type=int, default=5)
    p.add_argument("--create", type=int, default=2)
    a = p.parse_args()
    if a.mutate:
        mutate(a.mutate, a.modify, a.create)
    if a.db:
        report(a.db, a.since, a.state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
