{#- Reading the loaders' JSON portably. The same model runs on
    PostgreSQL (target-postgres: objects jsonb, arrays jsonb[]),
    DuckDB     (target-duckdb: objects and arrays JSON) and
    Snowflake  (target-snowflake: objects and arrays VARIANT).
    `path` is a dotted path of object keys: 'customer.email', 'city.name'. -#}

{#- Text at `path` (NULL when missing or JSON null); numbers come back as their text. -#}
{% macro json_text(column, path) -%}
    {{ return(adapter.dispatch('json_text', 'omnitron')(column, path)) }}
{%- endmacro %}

{% macro default__json_text(column, path) -%}
    {{ exceptions.raise_compiler_error("json_text: no implementation for adapter " ~ adapter.type()) }}
{%- endmacro %}

{% macro postgres__json_text(column, path) -%}
    ({{ column }} #>> '{{ "{" ~ path.split(".") | join(",") ~ "}" }}')
{%- endmacro %}

{% macro duckdb__json_text(column, path) -%}
    json_extract_string({{ column }}, '$.{{ path }}')
{%- endmacro %}

{% macro snowflake__json_text(column, path) -%}
    cast(strip_null_value(get_path({{ column }}, '{{ path }}')) as varchar)
{%- endmacro %}


{#- A FROM-clause item, after a comma, with one row per element of the JSON array in
    `column` (no row for NULL or []); the element is `<alias>.value`, a JSON value that
    json_text() reads: `from details as d, {{ json_array_elements('d.transaction_set', 't') }}` -#}
{% macro json_array_elements(column, alias) -%}
    {{ return(adapter.dispatch('json_array_elements', 'omnitron')(column, alias)) }}
{%- endmacro %}

{% macro default__json_array_elements(column, alias) -%}
    {{ exceptions.raise_compiler_error("json_array_elements: no implementation for adapter " ~ adapter.type()) }}
{%- endmacro %}

{#- to_jsonb() takes jsonb[] (what target-postgres creates) as well as a jsonb array. -#}
{% macro postgres__json_array_elements(column, alias) -%}
    lateral jsonb_array_elements(to_jsonb({{ column }})) as {{ alias }}(value)
{%- endmacro %}

{% macro duckdb__json_array_elements(column, alias) -%}
    unnest(cast({{ column }} as json[])) as {{ alias }}(value)
{%- endmacro %}

{% macro snowflake__json_array_elements(column, alias) -%}
    lateral flatten(input => {{ column }}) as {{ alias }}
{%- endmacro %}


{#- Number of elements of the JSON array in `column` (0 for NULL). -#}
{% macro json_array_length(column) -%}
    {{ return(adapter.dispatch('json_array_length', 'omnitron')(column)) }}
{%- endmacro %}

{% macro default__json_array_length(column) -%}
    {{ exceptions.raise_compiler_error("json_array_length: no implementation for adapter " ~ adapter.type()) }}
{%- endmacro %}

{% macro postgres__json_array_length(column) -%}
    coalesce(jsonb_array_length(to_jsonb({{ column }})), 0)
{%- endmacro %}

{% macro duckdb__json_array_length(column) -%}
    coalesce(json_array_length({{ column }}), 0)
{%- endmacro %}

{% macro snowflake__json_array_length(column) -%}
    coalesce(array_size({{ column }}), 0)
{%- endmacro %}


{#- A column whose name is an SQL keyword (order_items."order"). target-snowflake creates
    such names upper-case and quoted, the other loaders lower-case. -#}
{% macro quoted_column(relation, name) -%}
    {{ return(adapter.dispatch('quoted_column', 'omnitron')(relation, name)) }}
{%- endmacro %}

{% macro default__quoted_column(relation, name) -%}
    {{ relation }}."{{ name }}"
{%- endmacro %}

{% macro snowflake__quoted_column(relation, name) -%}
    {{ relation }}."{{ name | upper }}"
{%- endmacro %}
