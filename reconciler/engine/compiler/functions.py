"""SQL building blocks whose spelling differs between warehouses.

Each construct is a SQLAlchemy `ColumnElement` compiled per dialect with
`@compiles`, so the rest of the compiler writes one expression tree and the
warehouse's dialect decides the text. Supported spellings: DuckDB,
PostgreSQL, Trino, Snowflake and Databricks; any other dialect gets standard
SQL (`JSON_VALUE`, `CAST`), which may or may not run there.

JSON paths are tuples of keys: `("product", "sku")` reads `product.sku`.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement



class ExactDecimal(sa.types.TypeDecorator):
    """NUMERIC(38, 9) passed to and from the driver as Decimal, never through float.

    SQLAlchemy converts numerics through float for drivers that do not declare
    native decimals (duckdb-engine among them), which loses digits past the
    15th or so.
    """

    impl = sa.Numeric(38, 9)
    cache_ok = True

    def bind_processor(self, dialect):
        return None

    def result_processor(self, dialect, coltype):
        return _to_decimal


def _to_decimal(value: Any) -> Any:
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(str(value))


DECIMAL = ExactDecimal()
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# PostgreSQL has no TRY_CAST before version 16, so text is checked first.
_PG_NUMBER = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"
_PG_TIMESTAMP = r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?\s*(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)?\s*$"
# A zone counts only after a time of day, so the "-01" ending a date alone is not read as one.
_PG_ZONE = r"[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?\s*(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)\s*$"


def _quote(compiler, value: str) -> str:
    return compiler.render_literal_value(value, sa.String())


def _jsonpath(path: tuple[str, ...]) -> str:
    """`$.a.b`, with keys that are not plain names written `$."a b"`."""
    parts = []
    for key in path:
        parts.append(f".{key}" if _PLAIN_KEY.match(key) else '."' + key.replace('"', '\\"') + '"')
    return "$" + "".join(parts)


def _bracket_jsonpath(path: tuple[str, ...]) -> str:
    """`$["a"]["b"]`, the form Trino reads for any key."""
    return "$" + "".join('["' + key.replace('"', '\\"') + '"]' for key in path)


def _snowflake_path(path: tuple[str, ...]) -> str:
    return ".".join(key if _PLAIN_KEY.match(key) else '"' + key.replace('"', '""') + '"' for key in path)


def _pg_path(compiler, path: tuple[str, ...]) -> str:
    """Write a path as the PostgreSQL text[] literal that #> and #>> take, such as '{a,b}'."""
    items = ",".join('"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"' for key in path)
    return _quote(compiler, "{" + items + "}")


# --------------------------------------------------------------------------- JSON reads

class JsonText(ColumnElement):
    """A JSON document's value at `path` as text; NULL when absent or JSON null.

    Strings come back without quotes, numbers and booleans as written, objects
    and arrays as JSON text.
    """

    type = sa.Text()
    inherit_cache = False

    def __init__(self, document: Any, path: tuple[str, ...]):
        self.document = document
        self.path = tuple(path)


@compiles(JsonText)
def _json_text_default(element, compiler, **kw):
    return f"JSON_VALUE({compiler.process(element.document, **kw)}, {_quote(compiler, _jsonpath(element.path))})"


@compiles(JsonText, "duckdb")
def _json_text_duckdb(element, compiler, **kw):
    return f"json_extract_string({compiler.process(element.document, **kw)}, {_quote(compiler, _jsonpath(element.path))})"


@compiles(JsonText, "postgresql")
def _json_text_postgresql(element, compiler, **kw):
    return f"({compiler.process(element.document, **kw)} #>> {_pg_path(compiler, element.path)})"


@compiles(JsonText, "trino")
def _json_text_trino(element, compiler, **kw):
    document = compiler.process(element.document, **kw)
    path = _quote(compiler, _bracket_jsonpath(element.path))
    # json_extract_scalar is NULL for objects and arrays; fall back to their JSON text.
    return f"COALESCE(json_extract_scalar({document}, {path}), json_format(json_extract({document}, {path})))"


@compiles(JsonText, "snowflake")
def _json_text_snowflake(element, compiler, **kw):
    return f"TO_VARCHAR(GET_PATH({compiler.process(element.document, **kw)}, {_quote(compiler, _snowflake_path(element.path))}))"


@compiles(JsonText, "databricks")
def _json_text_databricks(element, compiler, **kw):
    return f"get_json_object({compiler.process(element.document, **kw)}, {_quote(compiler, _bracket_jsonpath(element.path))})"


class JsonHasKey(ColumnElement):
    """Test whether the JSON document contains `path`, even with an explicit null."""

    type = sa.Boolean()
    inherit_cache = False

    def __init__(self, document: Any, path: tuple[str, ...]):
        self.document = document
        self.path = tuple(path)


@compiles(JsonHasKey)
def _has_key_default(element, compiler, **kw):
    return f"JSON_EXISTS({compiler.process(element.document, **kw)}, {_quote(compiler, _jsonpath(element.path))})"


@compiles(JsonHasKey, "duckdb")
def _has_key_duckdb(element, compiler, **kw):
    return f"json_exists({compiler.process(element.document, **kw)}, {_quote(compiler, _jsonpath(element.path))})"


@compiles(JsonHasKey, "postgresql")
def _has_key_postgresql(element, compiler, **kw):
    # #> returns the JSON null for an explicit null and SQL NULL for an absent key.
    return f"(({compiler.process(element.document, **kw)} #> {_pg_path(compiler, element.path)}) IS NOT NULL)"


@compiles(JsonHasKey, "trino")
def _has_key_trino(element, compiler, **kw):
    return f"(json_extract({compiler.process(element.document, **kw)}, {_quote(compiler, _bracket_jsonpath(element.path))}) IS NOT NULL)"


@compiles(JsonHasKey, "snowflake")
def _has_key_snowflake(element, compiler, **kw):
    return f"(GET_PATH({compiler.process(element.document, **kw)}, {_quote(compiler, _snowflake_path(element.path))}) IS NOT NULL)"


@compiles(JsonHasKey, "databricks")
def _has_key_databricks(element, compiler, **kw):
    # get_json_object cannot tell an explicit null from an absent key: both read as absent.
    return f"(get_json_object({compiler.process(element.document, **kw)}, {_quote(compiler, _bracket_jsonpath(element.path))}) IS NOT NULL)"


# --------------------------------------------------------------------------- safe casts

class SafeCast(ColumnElement):
    """Text cast to `target` ("decimal", "timestamp" or "boolean"); NULL when it does not parse.

    Timestamps with a zone are converted to UTC; those without one are UTC.
    """

    inherit_cache = False

    def __init__(self, text: Any, target: str):
        self.text = text
        self.target = target
        self.type = {"decimal": DECIMAL, "timestamp": sa.DateTime(), "boolean": sa.Boolean()}[target]


_TRY_TYPES = {
    "default": {"decimal": "DECIMAL(38, 9)", "timestamp": "TIMESTAMP", "boolean": "BOOLEAN"},
    "snowflake": {"decimal": "NUMBER(38, 9)", "timestamp": "TIMESTAMP_NTZ", "boolean": "BOOLEAN"},
}


def _boolean_case(text: str) -> str:
    return f"(CASE WHEN LOWER({text}) = 'true' THEN TRUE WHEN LOWER({text}) = 'false' THEN FALSE END)"


@compiles(SafeCast)
def _safe_cast_default(element, compiler, **kw):
    text = compiler.process(element.text, **kw)
    if element.target == "boolean":
        return _boolean_case(text)
    name = compiler.dialect.name
    types = _TRY_TYPES.get(name, _TRY_TYPES["default"])
    return f"TRY_CAST({text} AS {types[element.target]})"


@compiles(SafeCast, "duckdb")
def _safe_cast_duckdb(element, compiler, **kw):
    text = compiler.process(element.text, **kw)
    if element.target == "timestamp":
        # With a zone: through TIMESTAMPTZ so the offset is honoured. Without: UTC as written,
        # whatever the session's time zone.
        return (
            f"(CASE WHEN regexp_matches({text}, {_quote(compiler, _PG_ZONE)}) "
            f"THEN timezone('UTC', TRY_CAST({text} AS TIMESTAMPTZ)) ELSE TRY_CAST({text} AS TIMESTAMP) END)"
        )
    if element.target == "boolean":
        return _boolean_case(text)
    return f"TRY_CAST({text} AS DECIMAL(38, 9))"


@compiles(SafeCast, "postgresql")
def _safe_cast_postgresql(element, compiler, **kw):
    text = compiler.process(element.text, **kw)
    if element.target == "decimal":
        return f"(CASE WHEN {text} ~ {_quote(compiler, _PG_NUMBER)} THEN CAST({text} AS NUMERIC(38, 9)) END)"
    if element.target == "timestamp":
        return (
            f"(CASE WHEN {text} ~ {_quote(compiler, _PG_TIMESTAMP)} THEN "
            f"(CASE WHEN {text} ~ {_quote(compiler, _PG_ZONE)} "
            f"THEN CAST({text} AS TIMESTAMPTZ) AT TIME ZONE 'UTC' ELSE CAST({text} AS TIMESTAMP) END) END)"
        )
    return _boolean_case(text)


# --------------------------------------------------------------------------- lists

class JsonList(FunctionElement):
    """Aggregate: the sorted distinct non-null values of a text expression, as a JSON array."""

    type = sa.JSON()
    inherit_cache = False
    name = "json_list"

    def __init__(self, value: Any):
        self.value = value
        super().__init__()


@compiles(JsonList)
def _json_list_default(element, compiler, **kw):
    value = compiler.process(element.value, **kw)
    return f"JSON_ARRAYAGG(DISTINCT {value} ORDER BY {value})"


@compiles(JsonList, "duckdb")
def _json_list_duckdb(element, compiler, **kw):
    value = compiler.process(element.value, **kw)
    return f"to_json(list_sort(list_distinct(list({value}))))"


@compiles(JsonList, "postgresql")
def _json_list_postgresql(element, compiler, **kw):
    value = compiler.process(element.value, **kw)
    return f"jsonb_agg(DISTINCT {value} ORDER BY {value}) FILTER (WHERE {value} IS NOT NULL)"


@compiles(JsonList, "trino")
def _json_list_trino(element, compiler, **kw):
    value = compiler.process(element.value, **kw)
    return f"CAST(array_sort(array_distinct(array_agg({value}) FILTER (WHERE {value} IS NOT NULL))) AS JSON)"


@compiles(JsonList, "snowflake")
def _json_list_snowflake(element, compiler, **kw):
    value = compiler.process(element.value, **kw)
    return f"ARRAY_AGG(DISTINCT {value}) WITHIN GROUP (ORDER BY {value})"


@compiles(JsonList, "databricks")
def _json_list_databricks(element, compiler, **kw):
    return f"to_json(array_sort(collect_set({compiler.process(element.value, **kw)})))"


class EmptyJsonList(ColumnElement):
    """The empty JSON array `[]` in the dialect's JSON type."""

    type = sa.JSON()
    inherit_cache = False


@compiles(EmptyJsonList)
def _empty_default(element, compiler, **kw):
    return "JSON_ARRAY()"


@compiles(EmptyJsonList, "duckdb")
def _empty_duckdb(element, compiler, **kw):
    return "CAST('[]' AS JSON)"


@compiles(EmptyJsonList, "postgresql")
def _empty_postgresql(element, compiler, **kw):
    return "CAST('[]' AS JSONB)"


@compiles(EmptyJsonList, "trino")
def _empty_trino(element, compiler, **kw):
    return "JSON_PARSE('[]')"


@compiles(EmptyJsonList, "snowflake")
def _empty_snowflake(element, compiler, **kw):
    return "ARRAY_CONSTRUCT()"


@compiles(EmptyJsonList, "databricks")
def _empty_databricks(element, compiler, **kw):
    return "'[]'"


class JsonListContains(ColumnElement):
    """Test whether a JSON array contains a text element."""

    type = sa.Boolean()
    inherit_cache = False

    def __init__(self, document: Any, element: Any):
        self.document = document
        self.element = element


@compiles(JsonListContains)
def _contains_default(element, compiler, **kw):
    document = compiler.process(element.document, **kw)
    return f"JSON_EXISTS({document}, '$[*] ? (@ == $v)' PASSING {compiler.process(element.element, **kw)} AS \"v\")"


@compiles(JsonListContains, "duckdb")
def _contains_duckdb(element, compiler, **kw):
    return f"json_contains({compiler.process(element.document, **kw)}, to_json({compiler.process(element.element, **kw)}))"


@compiles(JsonListContains, "postgresql")
def _contains_postgresql(element, compiler, **kw):
    return f"(CAST({compiler.process(element.document, **kw)} AS JSONB) @> jsonb_build_array({compiler.process(element.element, **kw)}))"


@compiles(JsonListContains, "trino")
def _contains_trino(element, compiler, **kw):
    return f"contains(CAST({compiler.process(element.document, **kw)} AS ARRAY(VARCHAR)), {compiler.process(element.element, **kw)})"


@compiles(JsonListContains, "snowflake")
def _contains_snowflake(element, compiler, **kw):
    return f"ARRAY_CONTAINS(TO_VARIANT({compiler.process(element.element, **kw)}), {compiler.process(element.document, **kw)})"


@compiles(JsonListContains, "databricks")
def _contains_databricks(element, compiler, **kw):
    document = compiler.process(element.document, **kw)
    return f"array_contains(from_json({document}, 'array<string>'), {compiler.process(element.element, **kw)})"


# --------------------------------------------------------------------------- hashing

class Md5Hex(ColumnElement):
    """Lower-case hexadecimal MD5 of a text expression: the same digits on every warehouse."""

    type = sa.Text()
    inherit_cache = False

    def __init__(self, text: Any):
        self.text = text


@compiles(Md5Hex)
def _md5_default(element, compiler, **kw):
    return f"LOWER(MD5({compiler.process(element.text, **kw)}))"


@compiles(Md5Hex, "trino")
def _md5_trino(element, compiler, **kw):
    return f"lower(to_hex(md5(to_utf8({compiler.process(element.text, **kw)}))))"


# --------------------------------------------------------------------------- temporary tables

class CreateTempTableAs(sa.sql.expression.Executable, sa.sql.expression.ClauseElement):
    """CREATE TEMPORARY TABLE name AS SELECT ...: a result computed once and read several times."""

    inherit_cache = False

    def __init__(self, name: str, query: Any):
        self.name = name
        self.query = query


@compiles(CreateTempTableAs)
def _create_temp_default(element, compiler, **kw):
    return f"CREATE TEMPORARY TABLE {compiler.preparer.quote(element.name)} AS {compiler.process(element.query, **kw)}"


class AddSeconds(ColumnElement):
    """A timestamp expression moved by a whole number of seconds (a literal, not a bind)."""

    type = sa.DateTime()
    inherit_cache = False

    def __init__(self, timestamp: Any, seconds: int):
        self.timestamp = timestamp
        self.seconds = int(seconds)


@compiles(AddSeconds)
def _add_seconds_default(element, compiler, **kw):
    return f"({compiler.process(element.timestamp, **kw)} + INTERVAL '{element.seconds}' SECOND)"


@compiles(AddSeconds, "duckdb")
@compiles(AddSeconds, "postgresql")
def _add_seconds_interval(element, compiler, **kw):
    return f"({compiler.process(element.timestamp, **kw)} + {element.seconds} * INTERVAL '1 second')"


@compiles(AddSeconds, "trino")
def _add_seconds_trino(element, compiler, **kw):
    return f"date_add('second', {element.seconds}, {compiler.process(element.timestamp, **kw)})"


@compiles(AddSeconds, "snowflake")
def _add_seconds_snowflake(element, compiler, **kw):
    return f"DATEADD(second, {element.seconds}, {compiler.process(element.timestamp, **kw)})"


@compiles(AddSeconds, "databricks")
def _add_seconds_databricks(element, compiler, **kw):
    return f"timestampadd(SECOND, {element.seconds}, {compiler.process(element.timestamp, **kw)})"


class DecimalAvg(FunctionElement):
    """Aggregate: the average of a DECIMAL(38,9) expression, exact to nine decimals (halves round away from zero)."""

    type = DECIMAL
    inherit_cache = False
    name = "decimal_avg"

    def __init__(self, value: Any):
        self.value = value
        super().__init__()


@compiles(DecimalAvg)
def _avg_default(element, compiler, **kw):
    return f"CAST(AVG({compiler.process(element.value, **kw)}) AS DECIMAL(38, 9))"


@compiles(DecimalAvg, "duckdb")
def _avg_duckdb(element, compiler, **kw):
    # DuckDB's AVG of decimals is a DOUBLE. Divide the sum scaled to nine decimals as a
    # HUGEINT instead, round half away from zero, then scale back by multiplying.
    value = compiler.process(element.value, **kw)
    total, count = f"SUM({value})", f"COUNT({value})"
    scaled = f"ABS(CAST({total} * 1000000000 AS HUGEINT))"
    quotient = f"SIGN({total}) * ((2 * {scaled} + {count}) // (2 * {count}))"
    return f"(CASE WHEN {count} = 0 THEN NULL ELSE CAST({quotient} AS DECIMAL(38, 0)) * 0.000000001 END)"
