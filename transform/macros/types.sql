{#- Casts shared by every model, so each type is decided once. -#}

{#- Money: exact decimal, the precision and scale the tap declares (x-singer.decimal 28, 8).
    PostgreSQL has numeric, Snowflake NUMBER(28, 8), DuckDB the decimal text
    (target-duckdb stores strings as VARCHAR): the one cast fits all three. -#}
{% macro money(expression) -%}
    cast({{ expression }} as numeric(28, 8))
{%- endmacro %}

{#- Ids: loaders store JSON integers as bigint (PostgreSQL), HUGEINT (DuckDB), NUMBER (Snowflake). -#}
{% macro id(expression) -%}
    cast({{ expression }} as bigint)
{%- endmacro %}

{#- A loaded date-time column as a timestamp with time zone. Every loader here writes
    UTC into a timestamp without zone (PostgreSQL timestamp, DuckDB TIMESTAMP,
    Snowflake TIMESTAMP_NTZ); this marks it as UTC whatever the session's time zone. -#}
{% macro utc_timestamp(column) -%}
    {{ return(adapter.dispatch('utc_timestamp', 'omnitron')(column)) }}
{%- endmacro %}

{% macro default__utc_timestamp(column) -%}
    {{ exceptions.raise_compiler_error("utc_timestamp: no implementation for adapter " ~ adapter.type()) }}
{%- endmacro %}

{% macro postgres__utc_timestamp(column) -%}
    ({{ column }} at time zone 'UTC')
{%- endmacro %}

{% macro duckdb__utc_timestamp(column) -%}
    timezone('UTC', {{ column }})
{%- endmacro %}

{% macro snowflake__utc_timestamp(column) -%}
    timestamp_tz_from_parts(
        year({{ column }}), month({{ column }}), day({{ column }}),
        hour({{ column }}), minute({{ column }}), second({{ column }}),
        date_part(nanosecond, {{ column }}), 'UTC')
{%- endmacro %}

{#- An ISO 8601 text with its offset (JSON date-times: "2024-12-06T22:24:07.360890Z"). -#}
{% macro iso_timestamp(expression) -%}
    {{ return(adapter.dispatch('iso_timestamp', 'omnitron')(expression)) }}
{%- endmacro %}

{% macro default__iso_timestamp(expression) -%}
    cast({{ expression }} as timestamp with time zone)
{%- endmacro %}

{% macro snowflake__iso_timestamp(expression) -%}
    to_timestamp_tz({{ expression }})
{%- endmacro %}
