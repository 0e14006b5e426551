"""Run SQL statements on a real Snowflake account; print each result as JSON lines.

Runs in the target-snowflake venv (it has the connector). The account comes from the same
TARGET_SNOWFLAKE_* variables the loader reads. usage: snowflake_query.py SQL [SQL ...]
"""

import json
import os
import sys
from pathlib import Path

import snowflake.connector

env = os.environ
params = {
    "account": env["TARGET_SNOWFLAKE_ACCOUNT"],
    "user": env["TARGET_SNOWFLAKE_USER"],
    "database": env["TARGET_SNOWFLAKE_DATABASE"],
    "warehouse": env["TARGET_SNOWFLAKE_WAREHOUSE"],
}
if env.get("TARGET_SNOWFLAKE_ROLE"):
    params["role"] = env["TARGET_SNOWFLAKE_ROLE"]
if env.get("TARGET_SNOWFLAKE_PASSWORD"):
    params["password"] = env["TARGET_SNOWFLAKE_PASSWORD"]
else:
    from cryptography.hazmat.primitives import serialization

    passphrase = env.get("TARGET_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE")
    with Path(env["TARGET_SNOWFLAKE_PRIVATE_KEY_PATH"]).open("rb") as fh:
        key = serialization.load_pem_private_key(fh.read(), passphrase.encode() if passphrase else None)
    params["private_key"] = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
with snowflake.connector.connect(**params) as connection:
    cursor = connection.cursor()
    for statement in sys.argv[1:]:
        rows = cursor.execute(statement).fetchall()
        print(json.dumps([[None if v is None else str(v) for v in row] for row in rows]))
