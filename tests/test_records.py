"""What the tap does to records: exact decimals and redaction, on documented and odd shapes."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import TYPE_CHECKING

from hypothesis import given, settings
from hypothesis import strategies as st

from tap_omnitron import dates
from tap_omnitron.api import decode_json
from tap_omnitron.records import (
    REDACTED,
    SECRET_CONTAINERS,
    SECRET_KEY,
    SECRET_TEXTS,
    decimal_plan,
    normalise_decimals,
    redact_secrets,
    to_decimal_text,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

SECRET = "SANDBOX-SECRET-xyz"
MONEY = {"type": ["string", "null"], "format": "x-singer.decimal", "precision": 28, "scale": 8}
SCHEMA = {
    "properties": {
        "amount": MONEY,
        "net_shipping_amount": MONEY,
        "orderitem_set": {"type": ["array", "null"], "items": {"properties": {"price": MONEY}}},
        "installment": {"type": ["object", "null"], "properties": {"interest_rate": MONEY}},
        "number": {"type": ["string", "null"]},
    }
}


def test_numbers_become_exact_decimal_text_without_a_float() -> None:
    record = decode_json(
        b'{"amount": "107.55", "net_shipping_amount": 8.5, "number": "1",'
        b' "orderitem_set": [{"price": 0.1}, {"price": "12345678901234567.89"}],'
        b' "installment": {"interest_rate": "0.000000"}}'
    )
    normalise_decimals(record, decimal_plan(SCHEMA))
    assert record["amount"] == "107.55"
    assert record["net_shipping_amount"] == "8.50"
    assert record["orderitem_set"][0]["price"] == "0.10"
    assert record["orderitem_set"][1]["price"] == "12345678901234567.89"
    assert record["installment"]["interest_rate"] == "0.000000"
    assert record["number"] == "1"


def test_decimal_text_of_odd_values() -> None:
    assert to_decimal_text(7) == "7.00"
    assert to_decimal_text(Decimal("1E+5")) == "100000.00"
    assert to_decimal_text(Decimal("0.000001")) == "0.000001"
    assert to_decimal_text("  3.14 ") == "3.14"
    assert to_decimal_text("") is None
    assert to_decimal_text("abc") is None
    assert to_decimal_text("NaN") is None
    assert to_decimal_text(True) is None
    assert to_decimal_text({"a": 1}) is None


def test_documented_secrets_are_masked_and_keys_kept() -> None:
    detail = {
        "channel": {"conf": {"server": "https://x", "auth_token": SECRET, "nested": {"a": SECRET}}},
        "transaction_set": [
            {
                "pos": {"config": {"auth": {"username": "ISBANKAPI", "password": SECRET}}},
                "raw_request": f"<Password>{SECRET}</Password>",
                "raw_response": "<CC5Response/>",
                "auth_code": "P31790",
            }
        ],
        "ordershippinginfo_set": [{"send_request": f"user={SECRET}", "send_response": {}}],
        "extra_field": {"API_KEY": SECRET, "my_client_secret": SECRET, "note": "ok"},
    }
    clean = redact_secrets(detail)
    assert SECRET not in json.dumps(clean)
    assert clean["channel"]["conf"] == {"server": REDACTED, "auth_token": REDACTED, "nested": {"a": REDACTED}}
    pos_config = clean["transaction_set"][0]["pos"]["config"]
    assert pos_config == {"auth": {"username": REDACTED, "password": REDACTED}}
    assert clean["transaction_set"][0]["raw_request"] == REDACTED
    assert clean["transaction_set"][0]["auth_code"] == "P31790"
    assert clean["extra_field"]["note"] == "ok"


def test_timestamps_become_canonical_utc() -> None:
    assert dates.canonical("2024-05-01T13:00:00+03:00") == "2024-05-01T10:00:00.000000Z"
    assert dates.canonical("2019-06-17T13:35:47.026886Z") == "2019-06-17T13:35:47.026886Z"
    assert dates.canonical("2019-06-17T13:35:47") == "2019-06-17T13:35:47.000000Z"
    assert dates.canonical("yesterday") is None
    assert dates.canonical(None) is None
    # What Python 3.10's own parser rejects, pendulum reads:
    assert dates.canonical("2024-01-31T10:00:00.12345+03:00") == "2024-01-31T07:00:00.123450Z"
    assert dates.canonical("2024-01-31") == "2024-01-31T00:00:00.000000Z"
    assert dates.from_http_date("Tue, 24 Nov 2026 20:00:00 GMT") == "2026-11-24T20:00:00.000000Z"
    assert dates.from_http_date("soon") is None


# Property-based: any JSON-like shape, secrets planted under secret-looking keys.

SECRET_KEYS = st.sampled_from(["password", "auth_token", "api_key", "conf", "config", "raw_request", "Client_Secret"])
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=8)
    | st.decimals(allow_nan=False, allow_infinity=False, places=4)
)
keys = st.text(min_size=1, max_size=8) | SECRET_KEYS


@st.composite
def documents(draw: st.DrawFn) -> dict:
    """Random nested objects with a secret planted under a secret-looking key."""
    tree = draw(
        st.recursive(
            st.dictionaries(keys, leaves, max_size=4),
            lambda children: st.dictionaries(keys, children | st.lists(children, max_size=3)),
            max_leaves=20,
        )
    )
    tree[draw(SECRET_KEYS)] = draw(st.sampled_from([SECRET, {"x": SECRET}, [SECRET]]))
    return tree


def plain_leaves(node: object, path: tuple = ()) -> Iterator[tuple[tuple, object]]:
    """(path, value) of every leaf that no secret-looking key leads to."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key not in SECRET_CONTAINERS and key not in SECRET_TEXTS and not SECRET_KEY.search(key):
                yield from plain_leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from plain_leaves(value, (*path, i))
    else:
        yield path, node


def at(node: object, path: tuple) -> object:
    for step in path:
        node = node[step]  # type: ignore[index]
    return node


@settings(max_examples=200, deadline=None)
@given(documents())
def test_no_secret_survives_any_shape_and_nothing_else_changes(document: dict) -> None:
    plain = list(plain_leaves(copy.deepcopy(document)))
    clean = redact_secrets(document)
    assert SECRET not in json.dumps(clean, default=str)
    assert set(clean) == set(document)
    for path, value in plain:  # what no secret-looking key leads to is left as it was
        assert at(clean, path) == value, path


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["amount", "net_shipping_amount", "orderitem_set", "installment", "x"]),
        leaves
        | st.lists(st.dictionaries(st.just("price"), leaves))
        | st.dictionaries(st.just("interest_rate"), leaves),
    )
)
def test_decimal_fields_end_as_the_same_number_in_text_or_null(record: dict) -> None:
    before = copy.deepcopy(record)
    normalise_decimals(record, decimal_plan(SCHEMA))

    def pairs(original: dict, after: dict) -> Iterator[tuple[object, object]]:
        for name in ("amount", "net_shipping_amount"):
            if name in original:
                yield original[name], after[name]
        if isinstance(original.get("orderitem_set"), list):
            for item, done in zip(original["orderitem_set"], after["orderitem_set"], strict=True):
                if "price" in item:
                    yield item["price"], done["price"]
        if isinstance(original.get("installment"), dict) and "interest_rate" in original["installment"]:
            yield original["installment"]["interest_rate"], after["installment"]["interest_rate"]

    for original, value in pairs(before, record):
        if isinstance(original, (int, Decimal)) and not isinstance(original, bool):
            assert isinstance(value, str), original
            assert Decimal(value) == original  # exact: the same number, as text
        else:  # text, None, a boolean: numeric text is kept as sent, anything else is no number
            assert value == (original.strip() if isinstance(original, str) and _is_number(original) else None)
    assert record.get("x") == before.get("x"), "what the schema does not call a decimal is left alone"


def _is_number(text: str) -> bool:
    try:
        return Decimal(text.strip()).is_finite()
    except ArithmeticError:
        return False


def test_huge_numbers_stay_exact() -> None:
    assert to_decimal_text(10**26) == "100000000000000000000000000"
    assert to_decimal_text(Decimal("123456789012345678901234567890.5")) == ("123456789012345678901234567890.5")
