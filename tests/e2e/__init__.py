"""End-to-end tests: Meltano pipelines into PostgreSQL and DuckDB, Snowflake type mapping, the demo."""
