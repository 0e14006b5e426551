"""What the tap does to a record before it leaves: exact decimals and no secrets.

Omnitron sends money as decimal text, but some fields (`net_shipping_amount`) arrive as
JSON numbers in some responses. Answers are parsed with numbers as `Decimal`
(see `client.decode_json`), so here every field the schema declares as
`x-singer.decimal` becomes decimal text without ever passing through a float.

The detailed order embeds credentials (channel `conf`, payment POS `config`, raw bank
XML). They are replaced by a fixed marker, keeping the keys so that the schema and the
loaded tables keep their shape.
"""

from __future__ import annotations

import contextlib
import re
import typing as t
from decimal import Decimal, InvalidOperation

REDACTED = "**REDACTED**"

#: Objects whose every value is configuration of an integration, i.e. credentials.
SECRET_CONTAINERS = frozenset({"conf", "config"})
#: Text fields that quote whole requests to banks and carriers, passwords included.
SECRET_TEXTS = frozenset({"raw_request", "raw_response", "send_request"})
#: Any key whose name says it holds a secret, wherever it appears.
SECRET_KEY = re.compile(
    r"passw|passwd|passphrase|^pass$|^pwd$|secret|token|api[_-]?key|apikey"
    r"|private[_-]?key|access[_-]?key|credential|^auth$|authorization|signature",
    re.IGNORECASE,
)

_CENT = Decimal("0.01")
DecimalPlan = dict[str, "DecimalPlan | None"]


def decimal_plan(schema: dict) -> DecimalPlan:
    """Map each path that leads to an `x-singer.decimal` field (None marks the field).

    Built once per stream, so preparing a record only visits the few paths that matter.
    """
    plan: DecimalPlan = {}
    for name, prop in (schema.get("properties") or {}).items():
        node = prop.get("items", prop) if "array" in _types(prop) else prop
        if node.get("format") == "x-singer.decimal":
            plan[name] = None
        elif sub := decimal_plan(node):
            plan[name] = sub
    return plan


def _types(prop: dict) -> list[str]:
    kind = prop.get("type", [])
    return [kind] if isinstance(kind, str) else list(kind)


def to_decimal_text(value: t.Any) -> str | None:
    """Return exact decimal text for a number or numeric text; None if it is not one.

    Numbers that came in as JSON numbers get at least two places ("7" -> "7.00"), the
    form the API uses for the same fields elsewhere; text is kept as the API sent it.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            number = Decimal(text)
        except InvalidOperation:
            return None
        return text if number.is_finite() else None
    if isinstance(value, float):  # only if a caller parsed JSON without Decimal
        value = Decimal(repr(value))
    if isinstance(value, (int, Decimal)):
        number = Decimal(value)
        if not number.is_finite():
            return None
        exponent = number.as_tuple().exponent
        if isinstance(exponent, int) and exponent > -2:  # noqa: PLR2004  (fewer than two places: made cents)
            with contextlib.suppress(InvalidOperation):  # beyond 28 digits: keep as is
                number = number.quantize(_CENT)
        return f"{number:f}"
    return None


def normalise_decimals(record: t.Any, plan: DecimalPlan) -> None:
    """Rewrite the planned decimal fields of `record` in place."""
    if isinstance(record, list):
        for item in record:
            normalise_decimals(item, plan)
        return
    if not isinstance(record, dict):
        return
    for name, sub in plan.items():
        if name not in record:
            continue
        value = record[name]
        if sub is None:
            record[name] = to_decimal_text(value)
        else:
            normalise_decimals(value, sub)


def redact_secrets(value: t.Any) -> t.Any:
    """Replace every secret in `value` by `REDACTED`, in place, keeping the keys.

    This runs over every key of every detailed order, the largest records of a sync, so an
    object's keys are first checked at once against the names known to be plain; only the
    others (secrets, or names not seen yet) are looked at one by one. Below the top, values
    are told apart by their exact type (a fifth less CPU than `isinstance`): `value` is
    decoded JSON, whose objects and arrays are `dict` and `list`, never subclasses.
    """
    if isinstance(value, dict):
        _redact_object(value)
    elif isinstance(value, list):
        _redact_array(value)
    return value


def _redact_object(value: dict) -> None:
    if not value.keys() <= _plain:
        for key in value.keys() - _plain:
            item = value[key]
            kind = _kinds.get(key)
            if kind is None:
                kind = _classify(key)
            if kind == _PLAIN or item is None:
                continue
            value[key] = _mask_leaves(item) if kind == _CONTAINER or isinstance(item, (dict, list)) else REDACTED
    for item in value.values():
        cls = type(item)
        if cls is dict:
            _redact_object(item)
        elif cls is list:
            _redact_array(item)


def _redact_array(value: list) -> None:
    for item in value:
        cls = type(item)
        if cls is dict:
            _redact_object(item)
        elif cls is list:
            _redact_array(item)


_PLAIN, _CONTAINER, _SECRET = 0, 1, 2
_kinds: dict[str, int] = {}  # key names repeat in every record: classify each once
_plain: set[str] = set()  # the keys of `_kinds` that are plain, for checking an object's keys at once
_MAX_KINDS = 100_000  # bounded, whatever keys a server sends


def _classify(key: str) -> int:
    if key in SECRET_CONTAINERS:
        kind = _CONTAINER
    elif key in SECRET_TEXTS or SECRET_KEY.search(key):
        kind = _SECRET
    else:
        kind = _PLAIN
    if len(_kinds) < _MAX_KINDS:
        _kinds[key] = kind
        if kind == _PLAIN:
            _plain.add(key)
    return kind


def _mask_leaves(value: t.Any) -> t.Any:
    """Mask every leaf but keep the structure: the loaded tables keep their shape."""
    if isinstance(value, dict):
        return {key: _mask_leaves(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask_leaves(item) for item in value]
    return None if value is None else REDACTED


class Preparer:
    """What every record goes through before it leaves: exact decimals and, unless
    `redact_secrets` is off, no secrets. Built once per stream from its schema."""

    def __init__(self, schema: dict, *, redact: bool) -> None:
        self._plan = decimal_plan(schema)
        self._redact = redact

    def __call__(self, record: dict) -> dict:
        normalise_decimals(record, self._plan)
        return redact_secrets(record) if self._redact else record


def restore_decimal_bounds(schema: dict, source: dict) -> None:
    """Copy `precision`/`scale` from `source` into the decimals of `schema`, in place.

    Properties are matched by path; a decimal the source does not have (a stream map's or
    flattening's new name) gets the widest bounds the source declares.
    """
    widest = _widest_bounds(source)

    def walk(node: t.Any, origin: t.Any) -> None:
        if not isinstance(node, dict):
            return
        origin = origin if isinstance(origin, dict) else {}
        if node.get("format") == "x-singer.decimal":
            for key in ("precision", "scale"):
                node.setdefault(key, origin.get(key, widest.get(key)))
        for name, prop in (node.get("properties") or {}).items():
            walk(prop, (origin.get("properties") or {}).get(name))
        if "items" in node:
            walk(node["items"], origin.get("items"))

    walk(schema, source)


def _widest_bounds(schema: t.Any) -> dict[str, int]:
    found: dict[str, int] = {}
    if isinstance(schema, dict):
        if schema.get("format") == "x-singer.decimal":
            for key in ("precision", "scale"):
                if isinstance(schema.get(key), int):
                    found[key] = max(found.get(key, 0), schema[key])
        children = [*(schema.get("properties") or {}).values(), schema.get("items")]
        for child in children:
            for key, value in _widest_bounds(child).items():
                found[key] = max(found.get(key, 0), value)
    return found
