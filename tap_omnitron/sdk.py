"""The private singer-sdk members this tap relies on, in one place, each with its reason.

Everything else the tap does goes through the SDK's public hooks. These have no public
route; `tests/test_sdk.py` fails when the SDK renames one, stops calling it, or changes what
made it necessary, and `make test-sdk-next` runs the suite against the next SDK release.

| member | why no public route exists |
|---|---|
| `Stream._generate_record_messages` | Before a stream map sees a record, the SDK walks every nested value: once to prune deselected properties, and (unless `TYPE_CONFORMANCE_LEVEL` is `NONE`) once more to conform types and drop unknown properties. On detailed orders (~470 keys) those walks cost about a third of the tap's CPU at zero latency; the tap walks only when the catalog deselects something, and drops unknown top-level properties itself. |
| `Stream._generate_schema_messages` | The SDK rebuilds each SCHEMA through its `Schema` model, which drops `precision` and `scale`: SQL targets then make `NUMBER(38,0)` of money (Snowflake stored "107.55" as 108). |
| `Stream._increment_stream_state` | The SDK reads the bookmark from each record's replication key, which Omnitron's documented orders do not carry (it raises `KeyError`); the orders' bookmark is the server's clock instead (see `listing`). |
| `RESTStream._LOG_REQUEST_METRICS` | The SDK times a request in `_request` only when it succeeds at the socket level, and never the login; the tap times every request where it is sent (`session.OmnitronSession`), so the SDK's own timing is turned off to keep one `http_request_duration` line per request. |
| `Stream._sync_records` | The only source of a stream's records with its children synced and its state kept, which the SDK's own `get_batches` reads too; `get_batches` is the documented hook for BATCH, and the tap's cuts the files at page boundaries, so that no STATE ever covers records not yet in a file. |
| `Tap.sync_all` (public, but marked final) | Wrapped, not replaced: `super().sync_all()` syncs; around it the tap stops the requests still in flight, writes the summary of a run that failed too, and fails a run that skipped details when `fail_on_skipped_details` says so. |
| `PluginBase._validate_config` | The only hook that runs before the SDK validates the settings and quotes them in its messages: the secrets are registered for scrubbing first, and the tap's own checks give one line each. |
"""  # noqa: E501  (a Markdown table, one row per line)

from __future__ import annotations

import typing as t

from singer_sdk import RESTStream, Tap
from singer_sdk.exceptions import ConfigValidationError

from tap_omnitron.errors import SettingsError

if t.TYPE_CHECKING:
    from collections.abc import Generator, Iterator

    from singer_sdk import singerlib as singer
    from singer_sdk.helpers.types import Context

PRIVATE_MEMBERS = (
    "_generate_record_messages",
    "_generate_schema_messages",
    "_increment_stream_state",
    "_LOG_REQUEST_METRICS",
    "_sync_records",
    "_validate_config",
)


class StreamHooks(RESTStream):
    """The private stream members, each handing over to a public method of the tap's streams."""

    _LOG_REQUEST_METRICS = False

    def _generate_record_messages(self, record: dict) -> Generator[singer.RecordMessage, None, None]:
        return self.record_messages(record)

    def _generate_schema_messages(self) -> Generator[singer.SchemaMessage, None, None]:
        for message in super()._generate_schema_messages():
            yield self.schema_message(message)

    def _increment_stream_state(self, latest_record: dict, *, context: Context | None = None) -> None:
        """Never from records: see `OrdersStream.get_records` for where the bookmark comes from."""

    def synced_records(self, context: Context | None) -> Iterator[dict]:
        """The records `get_batches` writes to files, as the SDK's own `get_batches` reads them."""
        return self._sync_records(context, write_messages=False)

    def record_messages(self, record: dict) -> Generator[singer.RecordMessage, None, None]:
        raise NotImplementedError

    def schema_message(self, message: singer.SchemaMessage) -> singer.SchemaMessage:
        raise NotImplementedError


class TapHooks(Tap):
    """The private tap member, handing over to `check_settings`."""

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        self.check_settings(validate=raise_errors)
        if not raise_errors:  # discovery and --about: nothing to validate yet, nothing to warn
            return []
        try:
            return super()._validate_config(raise_errors=True)
        except ConfigValidationError as exc:  # the SDK's CLI would log it over several lines
            raise SettingsError("; ".join(map(_one_setting, exc.errors or [str(exc)]))) from None

    def check_settings(self, *, validate: bool) -> None:
        raise NotImplementedError


def _one_setting(error: str) -> str:
    """One setting's error, led by its name: "0 is less ... in config['page_size']" -> "page_size: 0 is less ..."."""
    message, found, where = error.rpartition(" in config[")
    if found and where.endswith("]"):
        return f"{where[:-1].strip(chr(39))}: {message}"
    return error
