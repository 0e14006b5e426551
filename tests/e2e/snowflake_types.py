"""Map the tap's stream schemas through MeltanoLabs target-snowflake, with no connection.

Run with the target-snowflake plugin's own Python (Meltano's venv for it):

    .meltano/loaders/target-snowflake/venv/bin/python tests/e2e/snowflake_types.py CATALOG.json

Reads a Singer catalog (`tap-omnitron --discover`) and prints JSON:
``{stream: {"columns": {name: {"sql": "...", "class": "...", "precision": p, "scale": s}},
            "create_table": "...", "merge": "...", "copy": "..."}}``
using the target's own connector: `to_sql_type` (its JSON-schema-to-Snowflake mapping),
a CREATE TABLE compiled with the Snowflake dialect, and the MERGE/COPY statements the
target would send for a batch. Any schema the target cannot handle raises here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import sqlalchemy as sa
from snowflake.sqlalchemy.snowdialect import SnowflakeDialect
from sqlalchemy.schema import CreateTable
from target_snowflake.connector import SnowflakeConnector


def main(catalog_path: str) -> None:
    with Path(catalog_path).open(encoding="utf-8") as fh:
        catalog = json.load(fh)
    dialect = SnowflakeDialect()
    connector = SnowflakeConnector(
        config={
            "account": "offline",
            "user": "offline",
            "password": "offline",
            "database": "OMNITRON",
            "default_target_schema": "TAP_OMNITRON",
        }
    )
    # `formatter` normally comes from a live engine; the dialect's preparer is the same object.
    connector.__dict__["formatter"] = dialect.identifier_preparer

    out: dict[str, dict] = {}
    for entry in catalog["streams"]:
        stream = entry.get("stream") or entry["tap_stream_id"]
        schema = entry["schema"]
        keys = entry.get("key_properties") or []
        columns: dict[str, dict] = {}
        sa_columns = []
        for name, prop in schema["properties"].items():
            sql_type = connector.to_sql_type(prop)
            columns[name] = {
                "sql": sql_type.compile(dialect=dialect),
                "class": type(sql_type).__name__,
                "precision": getattr(sql_type, "precision", None),
                "scale": getattr(sql_type, "scale", None),
            }
            sa_columns.append(
                sa.Column(
                    connector.format_identifier(name),
                    sql_type,
                    primary_key=name in keys,
                )
            )
        table = sa.Table(stream.upper(), sa.MetaData(), *sa_columns, schema="TAP_OMNITRON")
        full_name = f"OMNITRON.TAP_OMNITRON.{stream.upper()}"
        merge, _ = connector._get_merge_from_stage_statement(full_name, schema, "sync-1", "FF_1", keys)
        copy, _ = connector._get_copy_statement(full_name, schema, "sync-1", "FF_1")
        out[stream] = {
            "columns": columns,
            "create_table": str(CreateTable(table).compile(dialect=dialect)),
            "merge": str(merge),
            "copy": str(copy),
        }
    json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
