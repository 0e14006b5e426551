"""The private singer-sdk members the tap relies on (tap_omnitron/sdk.py): these tests fail
when the SDK renames one, stops calling it, or no longer needs it overridden."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
from singer_sdk import RESTStream, Stream, Tap
from singer_sdk.helpers._state import increment_state
from singer_sdk.plugin_base import PluginBase
from singer_sdk.singerlib import Schema

from tap_omnitron import sdk
from tap_omnitron.errors import SDK_FAILURE_LINE

PACKAGE = Path(sdk.__file__).parent


def parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)


@pytest.mark.parametrize(
    ("member", "owner", "signature", "caller"),
    [
        ("_generate_record_messages", Stream, ["self", "record"], Stream._write_record_message),
        ("_generate_schema_messages", Stream, ["self"], Stream._write_schema_message),
        ("_increment_stream_state", Stream, ["self", "latest_record", "context"], Stream._sync_records),
        ("_sync_records", Stream, ["self", "context", "write_messages"], Stream.get_batches),
        ("_validate_config", PluginBase, ["self", "raise_errors"], PluginBase.__init__),
    ],
)
def test_each_private_member_still_exists_and_is_still_called(member, owner, signature, caller) -> None:
    assert parameters(getattr(owner, member)) == signature
    assert f"self.{member}(" in inspect.getsource(caller), f"the SDK no longer calls {member}"


def test_the_sdk_still_times_requests_only_when_its_flag_says_so() -> None:
    """`_LOG_REQUEST_METRICS = False` keeps one `http_request_duration` per request (the tap's)."""
    assert "if not self._LOG_REQUEST_METRICS" in inspect.getsource(RESTStream._write_request_duration_log)
    assert "self._write_request_duration_log(" in inspect.getsource(RESTStream._request)


def test_the_sdk_still_logs_the_failure_line_the_tap_filters() -> None:
    """The stream loggers drop this one line (`errors.not_the_sdks_failure_line`): when the SDK
    rewords it, the filter must follow, or a failed run shows two ERROR lines again."""
    assert SDK_FAILURE_LINE in inspect.getsource(Stream.sync)


def test_the_final_sync_all_the_tap_wraps_is_still_what_the_cli_calls() -> None:
    assert parameters(Tap.sync_all) == ["self"]
    assert "tap.sync_all()" in inspect.getsource(Tap.invoke)


def test_the_sdk_still_drops_decimal_precision_and_scale() -> None:
    """The reason for overriding `_generate_schema_messages`: when this fails, drop it."""
    money = {"type": ["string", "null"], "format": "x-singer.decimal", "precision": 28, "scale": 8}
    assert "precision" not in Schema.from_dict(money).to_dict()


def test_the_sdk_still_needs_the_key_in_every_record() -> None:
    """The reason for overriding `_increment_stream_state`: orders without `modified_date`."""
    with pytest.raises(KeyError):
        increment_state(
            {},
            latest_record={"id": 1},
            replication_key="modified_date",
            is_sorted=False,
            check_sorted=False,
        )


def private_sdk_names() -> set[str]:
    """Every private member of the SDK classes the tap builds on."""
    names: set[str] = set()
    for cls in (Tap, RESTStream):
        for klass in inspect.getmro(cls):
            if klass.__module__.startswith("singer_sdk"):
                names |= {n for n in vars(klass) if n.startswith("_") and not n.startswith("__")}
    return names


def test_private_members_are_used_in_sdk_py_only_and_all_listed() -> None:
    private = private_sdk_names()
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if "sandbox" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            name = getattr(node, "name", None) if isinstance(node, ast.FunctionDef) else None
            name = name or (node.attr if isinstance(node, ast.Attribute) else None)
            name = name or (node.id if isinstance(node, ast.Name) else None)
            if name in private:
                found.setdefault(name, set()).add(path.name)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("singer_sdk"):
                assert not any(p.startswith("_") for p in node.module.split(".")), path.name
    assert found == {name: {"sdk.py"} for name in sdk.PRIVATE_MEMBERS}
    assert len(sdk.PRIVATE_MEMBERS) <= 7
