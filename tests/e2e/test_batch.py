"""BATCH end to end: `meltano run tap-omnitron target-postgres` with the tap's `batch_config`
loads the same tables as a run of RECORD messages (the loader's own `_sdc_` columns aside)."""

from __future__ import annotations

import json
import uuid

from e2e_support import STREAMS, Meltano, Postgres
from test_pipelines import PostgresWarehouse


def loaded(warehouse: PostgresWarehouse) -> dict[str, dict[int, dict]]:
    return {
        table: {key: {c: v for c, v in row.items() if not c.startswith("_sdc_")} for key, row in rows.items()}
        for table, rows in ((table, warehouse.dump(table)) for table in STREAMS)
    }


def test_a_batch_run_loads_the_tables_a_record_run_loads(meltano: Meltano, postgres: Postgres, tmp_path) -> None:
    from omnitron_sandbox import Sandbox

    batches = tmp_path / "batches"
    batches.mkdir()
    batch_config = {"encoding": {"format": "jsonl", "compression": "gzip"}, "storage": {"root": f"file://{batches}"}}
    tables = {}
    with Sandbox(orders=150, seed=303) as sandbox:
        for mode in ("record", "batch"):
            db = f"batch_{mode}_{uuid.uuid4().hex[:8]}"
            postgres.sql(f"CREATE DATABASE {db}")
            warehouse = PostgresWarehouse(pg=postgres, db=db)
            env = {"TAP_OMNITRON_BASE_URL": sandbox.url, "TAP_OMNITRON_API_TOKEN": sandbox.api_token, **warehouse.env()}
            if mode == "batch":
                env["TAP_OMNITRON_BATCH_CONFIG"] = json.dumps(batch_config)
            meltano.isolated(f"state-{db}").run("tap-omnitron", "target-postgres", env=env)
            tables[mode] = loaded(warehouse)
    assert sorted(p.name for p in batches.iterdir()), "the batch run wrote its records to files"
    for table in STREAMS:
        assert len(tables["batch"][table]) == len(tables["record"][table]) > 0, table
        assert tables["batch"][table] == tables["record"][table], table
