"""The stream schemas against Omnitron's documented examples, and their Singer conventions.

Fixtures are the JSON examples of Omnitron's documentation, parsed with exact decimals.
Records go through the tap's own preparation before validation, as they do in the tap.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from jsonschema import Draft7Validator, FormatChecker

from conftest import config_for
from helpers import PRIMARY_KEYS, run_tap
from tap_omnitron.records import Preparer

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SCHEMAS = ROOT / "schemas"

STREAMS = ("orders", "order_items", "order_details")
DECIMAL = "x-singer.decimal"

Path_ = tuple[str, ...]


# --------------------------------------------------------------------------- loading


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)


def load_schema(stream: str) -> dict:
    return load_json(SCHEMAS / f"{stream}.json")


def fixture_records(stream: str) -> list[dict]:
    """The records a stream emits for the documented examples, as the API sends them."""
    if stream == "order_details":
        return [load_json(FIXTURES / "order_detail.json")]
    orders = load_json(FIXTURES / "orders_page.json")["results"]
    if stream == "orders":
        return orders
    return [item for order in orders for item in order["orderitem_set"]]


def prepared_records(stream: str, *, redact: bool = True) -> list[dict]:
    schema = load_schema(stream)
    return [Preparer(schema, redact=redact)(copy.deepcopy(record)) for record in fixture_records(stream)]


# --------------------------------------------------------------------------- walkers


def types_of(node: dict) -> set[str]:
    kind = node.get("type", [])
    return {kind} if isinstance(kind, str) else set(kind)


def walk_schema(node: dict, path: Path = ()) -> Iterator[tuple[Path, dict]]:
    """Every property schema and array item schema below `node`, with its path."""
    for name, prop in (node.get("properties") or {}).items():
        yield (*path, name), prop
        yield from walk_schema(prop, (*path, name))
    items = node.get("items")
    if isinstance(items, dict):
        yield (*path, "[]"), items
        yield from walk_schema(items, (*path, "[]"))


def walk_data(
    value: Any,
    node: dict | None,
    path: Path = (),
) -> Iterator[tuple[Path, Any, dict | None]]:
    """Every value below `value` with the schema declared for it (None: undeclared).

    Free-form objects (no `properties`) and untyped array items (`{}`) accept anything,
    so the walk does not descend into them.
    """
    if node is None:
        return
    if isinstance(value, dict) and "properties" in node:
        for key, item in value.items():
            sub = node["properties"].get(key)
            yield (*path, key), item, sub
            yield from walk_data(item, sub, (*path, key))
    elif isinstance(value, list) and node.get("items"):
        for item in value:
            yield (*path, "[]"), item, node["items"]
            yield from walk_data(item, node["items"], (*path, "[]"))


def dotted(path: Path) -> str:
    return ".".join(path).replace(".[]", "[]")


def decimal_places(value: Any) -> tuple[int, int]:
    """(digits before the point, digits after it) of a number or numeric text."""
    _sign, digits, exponent = Decimal(str(value)).as_tuple()
    assert isinstance(exponent, int), value
    after = max(-exponent, 0)
    return max(len(digits) - after, 0) + max(exponent, 0), after


# --------------------------------------------------------------------------- formats


def _check_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return "T" in value and dt.datetime.fromisoformat(value).tzinfo is not None


def _check_decimal(value: object) -> bool:
    return not isinstance(value, str) or Decimal(value).is_finite()


def format_checker() -> FormatChecker:
    """Draft 7 formats, with date-time and Singer decimals actually checked.

    jsonschema only checks date-time when an optional package is installed; this
    checker does not depend on it.
    """
    checker = FormatChecker()
    checker.checks("date-time", raises=ValueError)(_check_datetime)
    checker.checks(DECIMAL, raises=InvalidOperation)(_check_decimal)
    return checker


def validation_errors(record: dict, schema: dict) -> list[str]:
    validator = Draft7Validator(schema, format_checker=format_checker())
    return [
        f"{dotted(tuple(map(str, error.absolute_path)))}: {error.message}" for error in validator.iter_errors(record)
    ]


# --------------------------------------------------------------------------- fixtures


def test_fixtures_are_the_documented_examples() -> None:
    page = load_json(FIXTURES / "orders_page.json")
    assert set(page) == {"count", "next", "previous", "results"}
    assert page["count"] == 595
    assert page["previous"] is None
    assert [order["id"] for order in page["results"]] == [1, 2]
    assert [len(order["orderitem_set"]) for order in page["results"]] == [1, 2]

    detail = load_json(FIXTURES / "order_detail.json")
    assert detail["pk"] == 27
    assert detail["net_shipping_amount"] == Decimal("8.5")
    assert isinstance(detail["net_shipping_amount"], Decimal)
    assert detail["customer"]["email"] == "[email protected]"


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("redact", [True, False], ids=["redacted", "raw"])
@pytest.mark.parametrize("stream", STREAMS)
def test_prepared_examples_validate(stream: str, redact: bool) -> None:
    schema = load_schema(stream)
    Draft7Validator.check_schema(schema)
    records = prepared_records(stream, redact=redact)
    assert records
    for record in records:
        assert validation_errors(record, schema) == []


@pytest.mark.parametrize("stream", STREAMS)
def test_format_checker_rejects_bad_timestamps(stream: str) -> None:
    """Guards the validation above: date-time is really checked, not ignored."""
    schema = load_schema(stream)
    record = prepared_records(stream)[0]
    record["modified_date"] = "30/01/2017 08:28"
    assert any("modified_date" in error for error in validation_errors(record, schema))


@pytest.mark.parametrize("stream", STREAMS)
def test_every_documented_key_is_declared(stream: str) -> None:
    schema = load_schema(stream)
    undeclared = {
        dotted(path)
        for record in fixture_records(stream)
        for path, _, node in walk_data(record, schema)
        if node is None
    }
    assert undeclared == set()


# --------------------------------------------------------------------------- structure


@pytest.mark.parametrize("stream", STREAMS)
def test_top_level_and_primary_key(stream: str) -> None:
    schema = load_schema(stream)
    assert schema["type"] == "object"
    key = PRIMARY_KEYS[stream]
    assert schema["properties"][key]["type"] == ["integer"]
    nullable_violations = [
        dotted(path)
        for path, node in walk_schema(schema)
        if path != (key,) and path[-1] != "[]" and node != {} and "null" not in types_of(node)
    ]
    assert nullable_violations == []


@pytest.mark.parametrize("stream", STREAMS)
def test_no_closed_objects(stream: str) -> None:
    schema = load_schema(stream)
    closed = [
        dotted(path) or "<root>"
        for path, node in [((), schema), *walk_schema(schema)]
        if node.get("additionalProperties") is False
    ]
    assert closed == []


@pytest.mark.parametrize("stream", STREAMS)
def test_objects_list_properties_or_are_free_form(stream: str) -> None:
    schema = load_schema(stream)
    bad = [
        dotted(path)
        for path, node in walk_schema(schema)
        if "object" in types_of(node) and not node.get("properties") and node.get("additionalProperties") is not True
    ]
    assert bad == []


@pytest.mark.parametrize("stream", STREAMS)
def test_arrays_of_objects_list_item_properties(stream: str) -> None:
    schema = load_schema(stream)
    bad = []
    for path, node in walk_schema(schema):
        if "array" not in types_of(node):
            continue
        items = node.get("items")
        if items == {}:
            continue
        if not isinstance(items, dict) or ("object" in types_of(items) and not items.get("properties")):
            bad.append(dotted(path))
    assert bad == []


@pytest.mark.parametrize("stream", STREAMS)
def test_timestamps_are_strings(stream: str) -> None:
    schema = load_schema(stream)
    dated = [(dotted(path), node) for path, node in walk_schema(schema) if node.get("format") in {"date-time", "date"}]
    assert dated
    bad = [path for path, node in dated if types_of(node) != {"string", "null"}]
    assert bad == []


@pytest.mark.parametrize("stream", STREAMS)
def test_decimals_declare_precision_and_scale(stream: str) -> None:
    schema = load_schema(stream)
    decimals = {dotted(path): node for path, node in walk_schema(schema) if node.get("format") == DECIMAL}
    assert decimals
    for path, node in decimals.items():
        assert types_of(node) == {"string", "null"}, path
        precision, scale = node.get("precision"), node.get("scale")
        assert type(precision) is int and type(scale) is int, path
        assert 0 <= scale < precision, path
        assert scale >= 6, path  # rates come with six places ("0.000000")
    assert len({(n["precision"], n["scale"]) for n in decimals.values()}) == 1


@pytest.mark.parametrize("stream", STREAMS)
def test_example_decimals_fit_precision_and_scale(stream: str) -> None:
    schema = load_schema(stream)
    checked = 0
    for record in fixture_records(stream):
        for path, value, node in walk_data(record, schema):
            if node is None or node.get("format") != DECIMAL or value is None:
                continue
            before, after = decimal_places(value)
            assert after <= node["scale"], (dotted(path), value)
            assert before <= node["precision"] - node["scale"], (dotted(path), value)
            checked += 1
    assert checked


@pytest.mark.parametrize("stream", STREAMS)
def test_numbers_become_decimal_text(stream: str) -> None:
    """No decimal field leaves preparation as a JSON number."""
    schema = load_schema(stream)
    for record in prepared_records(stream):
        for path, value, node in walk_data(record, schema):
            if node is not None and node.get("format") == DECIMAL:
                assert value is None or isinstance(value, str), (dotted(path), value)


# --------------------------------------------------------------------------- exact values


def test_detail_decimals_survive_exactly() -> None:
    (detail,) = prepared_records("order_details")
    assert detail["installment"]["interest_rate"] == "0.000000"
    assert detail["amount"] == "16.40"
    assert detail["shipping_amount"] == "8.50"
    assert detail["transaction_set"][0]["amount"] == "16.40"
    assert detail["transaction_set"][0]["order"]["net_shipping_amount"] == "8.50"
    assert isinstance(detail["net_shipping_amount"], str)
    assert Decimal(detail["net_shipping_amount"]) == Decimal("8.5")


def test_list_decimals_survive_exactly() -> None:
    orders = prepared_records("orders")
    for order in orders:
        assert isinstance(order["net_shipping_amount"], str)
        assert Decimal(order["net_shipping_amount"]) == Decimal(7)
        assert order["shipping_tax_rate"] is None
    assert [order["amount"] for order in orders] == ["107.00", "207.00"]
    items = prepared_records("order_items")
    assert {(item["price"], item["tax_rate"]) for item in items} == {("100.00", "18.00")}
    assert [item["order"] for item in items] == [1, 2, 2]


# --------------------------------------------------------------------------- what the tap emits


@pytest.fixture(scope="module")
def emitted() -> dict[str, list[dict]]:
    """A run of the tap against the sandbox, orders with every date field (the extended shape)."""
    from omnitron_sandbox import Sandbox

    with Sandbox(orders=40, seed=13, shape="extended") as sandbox:
        run = run_tap(config_for(sandbox))
    assert run.returncode == 0, run.stderr
    return {stream: run.records(stream) for stream in STREAMS}


@pytest.mark.parametrize("stream", STREAMS)
def test_what_the_tap_emits_validates_against_its_schema(emitted, stream: str) -> None:
    schema = load_schema(stream)
    assert emitted[stream]
    for record in emitted[stream]:
        assert validation_errors(record, schema) == [], record[PRIMARY_KEYS[stream]]


@pytest.mark.parametrize("stream", STREAMS)
def test_the_validation_above_rejects_a_float_in_a_decimal_or_a_bad_date(emitted, stream: str) -> None:
    """Guards the test above: a number where decimal text belongs, or a date that is no date,
    does not validate."""
    schema = load_schema(stream)
    record = copy.deepcopy(emitted[stream][0])
    decimal = next(name for name, prop in schema["properties"].items() if prop.get("format") == DECIMAL)
    record[decimal] = 1.5
    assert any(decimal in error for error in validation_errors(record, schema))
    record = copy.deepcopy(emitted[stream][0])
    record["modified_date"] = "30/01/2017 08:28"
    assert any("modified_date" in error for error in validation_errors(record, schema))
