"""Helpers shared by the e2e tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
MELTANO = ROOT / ".venv-meltano" / "bin" / "meltano"
PLUGIN_VENVS = ROOT / ".meltano"
DUCKDB_PY = PLUGIN_VENVS / "loaders" / "target-duckdb" / "venv" / "bin" / "python"
SNOWFLAKE_PY = PLUGIN_VENVS / "loaders" / "target-snowflake" / "venv" / "bin" / "python"
SECRET_MARK = "SANDBOX-SECRET"


def unavailable(reason: str) -> None:
    """Skip locally, fail in CI: a CI run must not pass by skipping the e2e tests."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"e2e prerequisite missing in CI: {reason}")
    pytest.skip(reason)


# -- Meltano ---------------------------------------------------------------------------
@dataclass
class Meltano:
    """Runs the project's `meltano` with a private system database (state) and env."""

    workdir: Path
    base_env: dict[str, str]
    runs: list[tuple[str, float]] = field(default_factory=list)

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 300, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        run_env = {**self.base_env, **(env or {})}
        log = self.workdir / f"meltano-{len(self.runs):02d}-{'-'.join(args)[:60]}.log"
        t0 = time.monotonic()
        with log.open("w") as out:
            proc = subprocess.run(
                [str(MELTANO), *args],
                cwd=ROOT,
                env=run_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=out,
                text=True,
                timeout=timeout,
                check=False,
            )
        elapsed = time.monotonic() - t0
        proc.stderr = log.read_text(errors="replace")  # Meltano's log, the plugins' lines included
        self.runs.append((" ".join(args), elapsed))
        print(f"meltano {' '.join(args)}: exit {proc.returncode} in {elapsed:.1f}s (log {log})")
        if check and proc.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:])
            pytest.fail(f"meltano {' '.join(args)} exited {proc.returncode}; log tail:\n{tail}")
        return proc

    def isolated(self, name: str) -> Meltano:
        """The same Meltano with its own system database, i.e. its own state."""
        workdir = self.workdir / name
        workdir.mkdir(exist_ok=True)
        env = {**self.base_env, "MELTANO_DATABASE_URI": f"sqlite:///{workdir / 'meltano.db'}"}
        return Meltano(workdir=workdir, base_env=env, runs=self.runs)

    def run(self, *blocks: str, env: dict[str, str] | None = None, timeout: float = 300) -> float:
        """`meltano run BLOCK...`; returns seconds taken."""
        t0 = time.monotonic()
        self("run", *blocks, env=env, timeout=timeout)
        return time.monotonic() - t0


# -- PostgreSQL ------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bindir() -> Path | None:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class Postgres:
    host: str
    port: int
    user: str
    psql: str

    def sql(self, query: str, db: str = "postgres") -> list[dict[str, str | None]]:
        """Run one statement with psql; rows as dicts of text (NULL -> None)."""
        proc = subprocess.run(
            [
                self.psql,
                "-X",
                "-q",
                "--csv",
                "-v",
                "ON_ERROR_STOP=1",
                "-P",
                "null=\\N",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                db,
                "-c",
                query,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "PGCONNECT_TIMEOUT": "10", "PGCLIENTENCODING": "UTF8", "PGTZ": "UTC"},
        )
        if proc.returncode != 0:
            raise AssertionError(f"psql failed ({proc.returncode}) for {query!r}: {proc.stderr}")
        if not proc.stdout.strip():
            return []
        rows = list(csv.DictReader(io.StringIO(proc.stdout)))
        return [{k: (None if v == "\\N" else v) for k, v in r.items()} for r in rows]

    def scalar(self, query: str, db: str = "postgres") -> str | None:
        rows = self.sql(query, db)
        assert len(rows) == 1, rows
        return next(iter(rows[0].values()))


# -- helpers for the DuckDB file ------------------------------------------------------
def duckdb_query(db: Path, sql: str) -> list[list]:
    """Run a read-only query with the duckdb that target-duckdb wrote the file with."""
    code = (
        "import duckdb, json, sys\n"
        "con = duckdb.connect(sys.argv[1], read_only=True)\n"
        "rows = con.execute(sys.argv[2]).fetchall()\n"
        "print(json.dumps([[None if v is None else str(v) for v in r] for r in rows]))\n"
    )
    proc = subprocess.run(
        [str(DUCKDB_PY), "-c", code, str(db), sql],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"duckdb query failed: {sql}\n{proc.stderr}")
    return json.loads(proc.stdout)


def python_of(venv_python: Path) -> str:
    if not venv_python.exists():
        unavailable(f"{venv_python} missing: run `make meltano`")
    return str(venv_python)


# -- what the source holds, read through its public HTTP API ----------------------------
def _get(url: str, token: str | None = None) -> Any:
    req = urllib.request.Request(url, headers={"Authorization": f"Token {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read(), parse_float=Decimal)


@dataclass
class Source:
    """Every order, order item and detailed order the sandbox serves right now."""

    orders: dict[int, dict]
    items: dict[int, dict]
    details: dict[int, dict]

    @classmethod
    def fetch(cls, base_url: str, token: str) -> Source:
        orders: dict[int, dict] = {}
        url: str | None = f"{base_url}/api/i1/orders/?limit=200&page=1"
        while url:
            page = _get(url, token)
            orders.update({o["id"]: o for o in page["results"]})
            url = page["next"]
        items = {it["id"]: it for o in orders.values() for it in o["orderitem_set"]}
        details = {
            oid: _get(f"{base_url}/api/i1/orders_integration/{oid}/detailed_integration/", token) for oid in orders
        }
        ids = {o["id"] for o in _get(f"{base_url}/_sandbox/orders")}
        assert ids == set(orders), "list endpoint and /_sandbox/orders disagree"
        return cls(orders=orders, items=items, details=details)


def sandbox_stats(base_url: str) -> dict:
    return _get(f"{base_url}/_sandbox/stats")


def detail_requests(stats: dict) -> int:
    return sum(n for path, n in stats.get("by_path", {}).items() if "detailed_integration" in path)


def as_decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def as_utc(value: str | None) -> datetime | None:
    """Parse an ISO/SQL timestamp; naive ones are taken as UTC."""
    if value is None:
        return None
    dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


# -- the tap's catalog ------------------------------------------------------------------
def stream_schema(catalog: dict, stream: str) -> dict:
    for entry in catalog["streams"]:
        if (entry.get("stream") or entry["tap_stream_id"]) == stream:
            return entry
    raise KeyError(stream)


def columns_with_format(catalog: dict, stream: str, fmt: str) -> list[str]:
    props = stream_schema(catalog, stream)["schema"]["properties"]
    return sorted(k for k, v in props.items() if v.get("format") == fmt)


def declared_decimals() -> dict[tuple[str, str], tuple[int | None, int | None]]:
    """(stream, column) -> (precision, scale) as declared in schemas/*.json (top level)."""
    out = {}
    for f in sorted((ROOT / "schemas").glob("*.json")):
        props = json.loads(f.read_text())["properties"]
        for k, v in props.items():
            if v.get("format") == "x-singer.decimal":
                out[(f.stem, k)] = (v.get("precision"), v.get("scale"))
    return out


STREAMS = {"orders": "id", "order_items": "id", "order_details": "pk"}
