"""`make demo`, twice, as a person would run it (output in a temporary DEMO_OUT).

The demo starts its own sandbox process; with a fixed --now and --seed the sandbox's data is
reproducible, so the expected totals come from an in-process Sandbox built the same way.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from decimal import Decimal
from typing import TYPE_CHECKING

from e2e_support import ROOT, Meltano, duckdb_query, unavailable

if TYPE_CHECKING:
    from pathlib import Path

ORDERS = 60
NOW = "2026-01-01T00:00:00+00:00"
SEED = "7"


def make_demo(out: Path, meltano: Meltano) -> str:
    make = shutil.which("make")
    if make is None:
        unavailable("make is not installed")
    args = [
        make,
        "-s",
        "--no-print-directory",
        # never (re)install from inside a test: `make test` already did
        "-o",
        ".venv/.installed",
        "-o",
        ".meltano/.plugins-installed",
        "demo",
        f"DEMO_OUT={out}",
        f"DEMO_ORDERS={ORDERS}",
        f"DEMO_SANDBOX_ARGS=--seed {SEED} --now {NOW}",
    ]
    proc = subprocess.run(
        args,
        cwd=ROOT,
        env=meltano.base_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    print(proc.stdout)
    assert proc.returncode == 0, f"make demo failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_make_demo_runs_twice_incrementally(meltano: Meltano, tmp_path: Path) -> None:
    meltano = meltano.isolated("state-demo")
    from omnitron_sandbox import Sandbox
    from omnitron_sandbox.data import parse_iso

    sb = Sandbox(orders=ORDERS, seed=int(SEED), now=parse_iso(NOW))  # not started: data only
    truth = sb.ground_truth()
    total = sum(Decimal(o["amount"]) for o in truth)

    first = make_demo(tmp_path, meltano)
    assert f"loaded into {tmp_path}/omnitron.duckdb: {ORDERS} orders" in first
    assert f"orders written by this run: {ORDERS}" in first
    assert re.search(rf"^total TRY: {ORDERS} orders, {total:,.2f}$", first, re.MULTILINE), first
    assert "orders per status" in first and "items per order" in first
    statuses = {o["status"] for o in truth}
    for status in statuses:
        assert re.search(rf"^{status}\s", first, re.MULTILINE), f"status {status} missing"

    second = make_demo(tmp_path, meltano)
    assert "second run: sandbox changed 5 orders and created 2" in second
    assert f"{ORDERS + 2} orders" in second
    written = int(re.search(r"orders written by this run: (\d+)", second).group(1))
    assert written == 7, second  # the changed and created ones, not all
    assert "state bookmark (next run starts here): orders.modified_date = " in second

    db = tmp_path / "omnitron.duckdb"
    [[dups]] = duckdb_query(db, "SELECT count(*) - count(DISTINCT id) FROM tap_omnitron.orders")
    assert dups == "0"
