"""Session fixtures for the end-to-end tests: Meltano, a throwaway PostgreSQL cluster, the catalog.

The e2e tests drive the real `meltano` CLI (its own venv, `.venv-meltano`) with the plugins
that `make meltano` installed under `.meltano/`. Meltano's state goes to private SQLite
databases in the test's temp dir (one per pipeline, `Meltano.isolated`), so the tests never
touch the demo's state (and vice versa). Sandboxes are per test module.

Without those installs (or without PostgreSQL server binaries) the tests are skipped
locally; under CI (CI=true) they fail instead, so that a missing install step shows.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # e2e_support, whatever pytest's import mode

from typing import TYPE_CHECKING

from e2e_support import (
    MELTANO,
    PLUGIN_VENVS,
    ROOT,
    Meltano,
    Postgres,
    _free_port,
    _pg_bindir,
    unavailable,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="session")
def meltano(tmp_path_factory: pytest.TempPathFactory) -> Meltano:
    if not MELTANO.exists():
        unavailable(f"{MELTANO} missing: run `make meltano`")
    for name in (
        "extractors/tap-omnitron",
        "loaders/target-postgres",
        "loaders/target-duckdb",
        "loaders/target-snowflake",
    ):
        if not (PLUGIN_VENVS / name / "venv" / "bin").is_dir():
            unavailable(f"Meltano plugin {name} is not installed: run `make meltano`")
    workdir = tmp_path_factory.mktemp("meltano")
    # A system directory of its own (the installed plugins linked in): concurrent `meltano run`s
    # of one plugin in one project share .meltano/run/<plugin>/, its config and state files.
    sys_dir = workdir / "sys"
    sys_dir.mkdir()
    for installed in PLUGIN_VENVS.iterdir():
        if installed.is_dir() and installed.name not in {"run", "logs"}:
            (sys_dir / installed.name).symlink_to(installed)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_OMNITRON_", "TARGET_", "MELTANO_"))}
    env.update(
        {
            "MELTANO_DATABASE_URI": f"sqlite:///{workdir / 'meltano.db'}",
            "MELTANO_SYS_DIR_ROOT": str(sys_dir),
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_ENVIRONMENT": "dev",
            "MELTANO_CLI_LOG_LEVEL": "info",
            "NO_COLOR": "1",
        }
    )
    return Meltano(workdir=workdir, base_env=env)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A private PostgreSQL cluster on 127.0.0.1:<free port>, trust auth, removed afterwards."""
    bindir = _pg_bindir()
    psql = shutil.which("psql") or (str(bindir / "psql") if bindir else None)
    if bindir is None or psql is None:
        unavailable("PostgreSQL server binaries not found (apt-get install postgresql)")
    as_root = os.geteuid() == 0
    run_as: dict = {}
    if as_root:  # initdb/postgres refuse to run as root: drop to the 'postgres' user
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root but there is no 'postgres' user")
        run_as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    base = Path(tempfile.mkdtemp(prefix="omnitron-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if as_root:
        for p in (base, sock):
            os.chown(p, run_as["user"], run_as["group"])
    log = base / "postgres.log"
    proc: subprocess.Popen | None = None
    try:
        subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=base,
            **run_as,
        )
        port = _free_port()
        with log.open("wb") as fh:
            if as_root:
                os.chown(log, run_as["user"], run_as["group"])
            proc = subprocess.Popen(
                [
                    str(bindir / "postgres"),
                    "-D",
                    str(data),
                    "-k",
                    str(sock),
                    "-p",
                    str(port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=50",
                    "-c",
                    "shared_buffers=64MB",
                ],
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=base,
                start_new_session=True,
                **run_as,
            )
        pg = Postgres(host="127.0.0.1", port=port, user="postgres", psql=psql)
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
            try:
                pg.sql("SELECT 1")
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield pg
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`tap-omnitron --discover` (no network needed)."""
    cfg = tmp_path_factory.mktemp("discover") / "config.json"
    cfg.write_text(json.dumps({"base_url": "http://127.0.0.1:9", "api_token": "unused"}))
    proc = subprocess.run(
        [sys.executable, "-m", "tap_omnitron", "--config", str(cfg), "--discover"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
    )
    return json.loads(proc.stdout)
