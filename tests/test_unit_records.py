"""records in-process: decimal plans for every schema form, floats, redaction with a fresh key cache, the
record preparer both ways, and the decimal bounds given back to SCHEMA messages (`make mutation` runs these)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tap_omnitron import records
from tap_omnitron.records import (
    REDACTED,
    Preparer,
    decimal_plan,
    normalise_decimals,
    redact_secrets,
    restore_decimal_bounds,
    to_decimal_text,
)

DECIMAL = {"type": ["string", "null"], "format": "x-singer.decimal"}


@pytest.fixture(autouse=True)
def fresh_key_cache(monkeypatch):
    """Key names are classified once per process and cached: each test starts with none known, so that it
    exercises the classification itself, not what an earlier test left behind."""
    monkeypatch.setattr(records, "_kinds", {})
    monkeypatch.setattr(records, "_plain", set())


# --------------------------------------------------------------------------- decimal plans


def test_an_array_named_by_a_plain_string_type_is_planned_through_its_items() -> None:
    schema = {"properties": {"lines": {"type": "array", "items": {"properties": {"price": DECIMAL}}}}}
    assert decimal_plan(schema) == {"lines": {"price": None}}


def test_a_property_without_a_type_is_planned_by_its_format() -> None:
    schema = {"properties": {"amount": {"format": "x-singer.decimal"}, "note": {}}}
    assert decimal_plan(schema) == {"amount": None}


def test_an_array_without_items_plans_nothing_and_does_not_fail() -> None:
    assert decimal_plan({"properties": {"tags": {"type": ["array", "null"]}, "amount": DECIMAL}}) == {"amount": None}


def test_items_are_read_for_arrays_only() -> None:
    """`items` means nothing on a property that is not an array: the property itself is the decimal."""
    stray = {**DECIMAL, "items": {"type": "string"}}
    assert decimal_plan({"properties": {"amount": stray}}) == {"amount": None}


# --------------------------------------------------------------------------- decimal text


@pytest.mark.parametrize(
    ("number", "text"),
    [(0.1, "0.10"), (1.5, "1.50"), (7.25, "7.25"), (2.0, "2.00"), (1e-7, "1E-7"), (-3.125, "-3.125")],
)
def test_a_float_becomes_the_decimal_it_prints_as_never_its_binary_expansion(number: float, text: str) -> None:
    assert Decimal(to_decimal_text(number)) == Decimal(text)
    assert to_decimal_text(number) == f"{Decimal(text):f}"


def test_infinite_numbers_are_no_decimals() -> None:
    assert to_decimal_text(float("inf")) is None
    assert to_decimal_text(Decimal("-Infinity")) is None
    assert to_decimal_text("Infinity") is None


def test_a_record_that_is_no_object_is_left_alone() -> None:
    for value in ("text", 7, None):
        normalise_decimals(value, {"amount": None})  # no error, nothing to do
    items = [{"amount": 7}, "stray", {"other": 1}]
    normalise_decimals(items, {"amount": None})
    assert items == [{"amount": "7.00"}, "stray", {"other": 1}]


# --------------------------------------------------------------------------- redaction


def test_a_key_seen_for_the_first_time_is_classified_plain_or_secret() -> None:
    record = {"shipping_note": "leave at door", "bank_password": "p", "order_number": 12}
    assert redact_secrets(record) == {"shipping_note": "leave at door", "bank_password": REDACTED, "order_number": 12}
    # ... and the second time, from the cache, the same way.
    again = {"shipping_note": "ring twice", "bank_password": "q", "order_number": 13}
    assert redact_secrets(again) == {"shipping_note": "ring twice", "bank_password": REDACTED, "order_number": 13}


@pytest.mark.parametrize("key", ["raw_request", "raw_response", "send_request"])
def test_texts_that_quote_whole_requests_are_secret_though_their_names_say_nothing(key: str) -> None:
    assert redact_secrets({key: "<Password>x</Password>", "send_response": "ok"}) == {
        key: REDACTED,
        "send_response": "ok",
    }


@pytest.mark.parametrize("key", ["status", "amount", "conference", "configuration_id", "pos", "passenger"])
def test_ordinary_keys_keep_their_values(key: str) -> None:
    assert redact_secrets({key: "visible"}) == {key: "visible"}
    assert redact_secrets({key: {"inner": "visible"}}) == {key: {"inner": "visible"}}


def test_a_secret_key_holding_an_object_keeps_its_shape_with_every_leaf_masked() -> None:
    record = {"password": {"old": "a", "new": ["b", None, 3]}, "api_key": ["k1", "k2"]}
    assert redact_secrets(record) == {
        "password": {"old": REDACTED, "new": [REDACTED, None, REDACTED]},
        "api_key": [REDACTED, REDACTED],
    }


def test_a_configuration_object_masks_every_leaf_but_keeps_nulls_and_structure() -> None:
    record = {"conf": {"server": "https://x", "ports": [443, 8443], "backup": None, "nested": {"user": "u"}}}
    assert redact_secrets(record) == {
        "conf": {"server": REDACTED, "ports": [REDACTED, REDACTED], "backup": None, "nested": {"user": REDACTED}}
    }
    assert redact_secrets({"config": "a whole text"}) == {"config": REDACTED}


def test_a_null_secret_stays_null() -> None:
    assert redact_secrets({"password": None, "conf": None}) == {"password": None, "conf": None}


def test_secrets_inside_lists_of_lists_are_found() -> None:
    assert redact_secrets([[{"token": "t", "id": 1}], "plain"]) == [[{"token": REDACTED, "id": 1}], "plain"]


def test_the_key_cache_stays_within_its_bound(monkeypatch) -> None:
    monkeypatch.setattr(records, "_MAX_KINDS", 2)
    redact_secrets({"a": 1, "b": 2, "c": 3, "token": "t"})
    assert len(records._kinds) == 2
    # Keys past the bound are still classified, every time.
    assert redact_secrets({"c": 3, "token": "t"}) == {"c": 3, "token": REDACTED}


# --------------------------------------------------------------------------- the preparer


def test_the_preparer_redacts_only_when_asked_and_always_makes_exact_decimals() -> None:
    schema = {"properties": {"amount": DECIMAL, "channel": {"type": "object"}}}

    def record() -> dict:
        return {"amount": 8.5, "channel": {"conf": {"token": "t"}}, "auth_token": "t"}

    redacted = Preparer(schema, redact=True)(record())
    assert redacted == {"amount": "8.50", "channel": {"conf": {"token": REDACTED}}, "auth_token": REDACTED}
    kept = Preparer(schema, redact=False)(record())
    assert kept == {"amount": "8.50", "channel": {"conf": {"token": "t"}}, "auth_token": "t"}


# --------------------------------------------------------------------------- decimal bounds in SCHEMA messages


def bounded(precision: int, scale: int) -> dict:
    return {**DECIMAL, "precision": precision, "scale": scale}


SOURCE = {
    "type": "object",
    "properties": {
        "amount": bounded(20, 2),
        "rate": bounded(9, 6),
        "lines": {"type": ["array", "null"], "items": {"type": "object", "properties": {"price": bounded(30, 4)}}},
        "installment": {"type": ["object", "null"], "properties": {"interest": bounded(12, 8)}},
        "note": {"type": ["string", "null"]},
    },
}


def stripped(schema: dict) -> dict:
    """The schema as the SDK hands it back: every `precision` and `scale` dropped."""
    text = json.dumps(schema)
    plain = json.loads(text)

    def drop(node: object) -> None:
        if isinstance(node, dict):
            node.pop("precision", None)
            node.pop("scale", None)
            for value in node.values():
                drop(value)

    drop(plain)
    return plain


def test_each_decimal_gets_back_the_bounds_of_the_same_path() -> None:
    schema = stripped(SOURCE)
    restore_decimal_bounds(schema, SOURCE)
    assert schema == SOURCE


def test_a_decimal_the_source_lacks_gets_the_widest_precision_and_scale_found_anywhere() -> None:
    """A stream map's or flattening's new name: precision 30 is an array item's, scale 8 a nested object's."""
    schema = {
        "properties": {
            "amount": dict(DECIMAL),
            "installment__interest": dict(DECIMAL),
            "lines": {"type": "array", "items": {"properties": {"price_with_tax": dict(DECIMAL)}}},
        }
    }
    restore_decimal_bounds(schema, SOURCE)
    assert schema["properties"]["amount"] == bounded(20, 2)
    assert schema["properties"]["installment__interest"] == bounded(30, 8)
    assert schema["properties"]["lines"]["items"]["properties"]["price_with_tax"] == bounded(30, 8)


def test_the_widest_bounds_are_the_largest_not_the_last_seen() -> None:
    source = {
        "properties": {
            "first": bounded(25, 10),
            "second": bounded(5, 1),
            "items_first": {"type": "array", "items": bounded(18, 9)},
        }
    }
    schema = {"properties": {"renamed": dict(DECIMAL)}}
    restore_decimal_bounds(schema, source)
    assert schema["properties"]["renamed"] == bounded(25, 10)


def test_whole_number_decimals_keep_scale_zero() -> None:
    source = {"properties": {"quantity": bounded(10, 0), "items": {"type": "array", "items": bounded(8, 0)}}}
    schema = {"properties": {"quantity": dict(DECIMAL), "renamed": dict(DECIMAL)}}
    restore_decimal_bounds(schema, source)
    assert schema["properties"]["quantity"] == bounded(10, 0)
    assert schema["properties"]["renamed"] == bounded(10, 0)


def test_bounds_already_in_the_schema_are_kept_and_other_properties_untouched() -> None:
    schema = {"properties": {"amount": bounded(5, 1), "note": {"type": ["string", "null"]}}}
    restore_decimal_bounds(schema, SOURCE)
    assert schema == {"properties": {"amount": bounded(5, 1), "note": {"type": ["string", "null"]}}}


def test_a_source_node_that_is_no_object_counts_as_missing() -> None:
    source = {"properties": {"amount": True, "other": bounded(14, 3), "lines": {"items": None}}}
    schema = {"properties": {"amount": dict(DECIMAL), "lines": {"type": "array", "items": dict(DECIMAL)}}}
    restore_decimal_bounds(schema, source)
    assert schema["properties"]["amount"] == bounded(14, 3)
    assert schema["properties"]["lines"]["items"] == bounded(14, 3)


def test_a_schema_node_that_is_no_object_is_skipped() -> None:
    schema = {"properties": {"anything": True, "amount": dict(DECIMAL)}}
    restore_decimal_bounds(schema, SOURCE)
    assert schema == {"properties": {"anything": True, "amount": bounded(20, 2)}}
