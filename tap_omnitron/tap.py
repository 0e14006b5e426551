"""tap-omnitron: Akinon Omnitron orders, order items and order details as Singer streams."""

from __future__ import annotations

import contextlib
import gc
import sys
import typing as t
from functools import cached_property

import click
from singer_sdk import singerlib as singer
from singer_sdk import typing as th
from singer_sdk.helpers.capabilities import PluginCapabilities, TapCapabilities
from singer_sdk.tap_base import CliTestOptionValue

from tap_omnitron import progress, settings, streams
from tap_omnitron.api import Omnitron
from tap_omnitron.errors import SECRETS, OmnitronError, install_scrubber
from tap_omnitron.feed import OrderFeed
from tap_omnitron.listing import probe_params
from tap_omnitron.output import BlockWriter
from tap_omnitron.pagination import not_a_list
from tap_omnitron.progress import Progress
from tap_omnitron.records import restore_decimal_bounds
from tap_omnitron.sdk import TapHooks

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from singer_sdk.streams import Stream

TEST_RETRY_SECONDS = 30  # `--test` gives up on an unreachable server after this long
YOUNG_COLLECTION = 50_000  # allocations between two collections of new objects during a sync (Python's: 700)


class TapOmnitron(TapHooks):
    """Reads orders from Omnitron's integration API (`/api/i1/`)."""

    name = "tap-omnitron"
    message_writer_class = BlockWriter
    message_writer: BlockWriter  # the SDK makes it from message_writer_class

    # No ACTIVATE_VERSION: a child sync covers one page of orders, never a whole table.
    # BATCH: one file per page of orders and per page's children, each followed by its STATE.
    capabilities: t.ClassVar[list] = [
        PluginCapabilities.BATCH,
        TapCapabilities.CATALOG,
        TapCapabilities.STATE,
        TapCapabilities.DISCOVER,
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
    ]

    # The one definition of the settings: meltano.yml and the README's table follow it
    # (tests/test_settings.py checks both).
    config_jsonschema = th.PropertiesList(
        th.Property(
            "base_url",
            th.StringType,
            required=True,
            title="Base URL",
            description=(
                "Root of the Omnitron host, e.g. https://omnitron.example.com. The tap adds "
                "the API paths; a trailing slash or a pasted /api/i1/ is tolerated."
            ),
        ),
        th.Property(
            "api_token",
            th.StringType,
            secret=True,
            title="API token",
            description="Sent as 'Authorization: Token <api_token>'. Or use username/password.",
        ),
        th.Property(
            "username",
            th.StringType,
            title="Username",
            description="With password, instead of api_token: the tap logs in for a token.",
        ),
        th.Property(
            "password",
            th.StringType,
            secret=True,
            title="Password",
            description="Password for username.",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            title="Start date",
            description=(
                "ISO 8601 date or date-time: on the first run, only orders modified on or after "
                "it. Absent: every order. Later runs start from their bookmark."
            ),
        ),
        th.Property(
            "lookback_seconds",
            th.NumberType(minimum=0),
            default=settings.DEFAULT_LOOKBACK_SECONDS,
            title="Lookback seconds",
            description=(
                "Each run also reads the orders changed this many seconds before its bookmark "
                "(the server's clock when the last run began): changes committed late, or "
                "stamped by a server whose clock runs behind. Targets upsert, so they cost a re-read."
            ),
        ),
        th.Property(
            "page_size",
            th.IntegerType(minimum=1),
            default=settings.DEFAULT_PAGE_SIZE,
            title="Page size",
            description="Orders per list request (the 'limit' parameter).",
        ),
        th.Property(
            "max_concurrency",
            th.IntegerType(minimum=1),
            default=settings.DEFAULT_MAX_CONCURRENCY,
            title="Max concurrency",
            description=(
                "Order detail requests in flight at once, over pooled keep-alive connections; list "
                "pages are read ahead beside them (one while details are in flight, up to as many "
                "when a pass only reads the list). 1 sends one request at a time."
            ),
        ),
        th.Property(
            "max_retries",
            th.IntegerType(minimum=0),
            default=settings.DEFAULT_MAX_RETRIES,
            title="Max retries",
            description=(
                "Retries of a request whose answer is broken (a 500, a body that is not the "
                "expected JSON), or that keeps failing while the server answers others; then "
                "an order's detail is skipped and a list page ends the run."
            ),
        ),
        th.Property(
            "max_retry_seconds",
            th.NumberType(minimum=0),
            default=settings.DEFAULT_MAX_RETRY_SECONDS,
            title="Max retry seconds",
            description=(
                "How long one request is retried while the server is away (refused or dropped "
                "connections, timeouts, 429, 502, 503, 504), honouring Retry-After; an outage "
                "longer than this ends the run with a resumable state."
            ),
        ),
        th.Property(
            "connect_timeout",
            th.NumberType(minimum=0.001),  # type: ignore[arg-type]  # the SDK types `minimum` int, JSON Schema any number
            default=settings.DEFAULT_CONNECT_TIMEOUT,
            title="Connect timeout",
            description="Seconds to wait for a connection (and a TLS handshake) to the server or proxy.",
        ),
        th.Property(
            "read_timeout",
            th.NumberType(minimum=0.001),  # type: ignore[arg-type]  # the SDK types `minimum` int, JSON Schema any number
            default=settings.DEFAULT_READ_TIMEOUT,
            title="Read timeout",
            description="Seconds to wait for the server to send anything, between any two reads.",
        ),
        th.Property(
            "request_timeout",
            th.NumberType(minimum=0.001),  # type: ignore[arg-type]  # the SDK types `minimum` int, JSON Schema any number
            default=settings.DEFAULT_REQUEST_TIMEOUT,
            title="Request timeout",
            description=(
                "Seconds one request may take in all, its answer read in full; a server that "
                "drips its answer is abandoned after this and the request retried."
            ),
        ),
        th.Property(
            "max_response_mb",
            th.IntegerType(minimum=1),
            default=settings.DEFAULT_MAX_RESPONSE_MB,
            title="Max response MB",
            description=(
                "Largest answer accepted, in MiB once decompressed (counted while it is read); "
                "a larger order detail is skipped and remembered, a larger list page ends the run."
            ),
        ),
        th.Property(
            "ca_bundle",
            th.StringType,
            title="CA bundle",
            description=(
                "A PEM file (or a hashed folder) of the CAs to trust for https, for a private CA. "
                "Absent: REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE, else certifi's bundle."
            ),
        ),
        th.Property(
            "max_skipped_details",
            th.IntegerType(minimum=0),
            default=settings.DEFAULT_MAX_SKIPPED_DETAILS,
            title="Max skipped details",
            description=(
                "Order details that still fail after their retries (5xx, a broken body) are "
                "skipped, kept in the state and asked for again next run; more than this many "
                "at once ends the run, because something systematic is wrong."
            ),
        ),
        th.Property(
            "fail_on_skipped_details",
            th.BooleanType,
            default=False,
            title="Fail on skipped details",
            description=(
                "Exit non-zero after a run that skipped order details. Off: the run loads "
                "everything else, says so in its summary and an error line per order, and exits 0."
            ),
        ),
        th.Property(
            "progress_interval",
            th.NumberType(minimum=0),
            default=progress.EVERY,
            title="Progress interval",
            description=(
                "Seconds between progress lines (orders done of the total, rate, time left); "
                "at most one per page of orders."
            ),
        ),
        th.Property(
            "redact_secrets",
            th.BooleanType,
            default=True,
            title="Redact secrets",
            description=(
                "Replace the credentials Omnitron embeds in order data (channel conf, "
                "payment POS config, raw bank requests/responses, any key named like a "
                "password or token) with '**REDACTED**'. Turn off only if you need them."
            ),
        ),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        install_scrubber()
        self.message_writer.guard_signals()

    def check_settings(self, *, validate: bool) -> None:
        """Register the secrets for scrubbing, then (for a sync) the rules JSON Schema cannot say."""
        for name in ("api_token", "password"):
            if self.config.get(name) is not None:
                SECRETS.add(str(self.config[name]))
        if validate:
            settings.check(self.config)

    @cached_property
    def api(self) -> Omnitron:
        return Omnitron(self.config)

    @cached_property
    def progress(self) -> Progress:
        return Progress(every=float(self.config.get("progress_interval", progress.EVERY)))

    @cached_property
    def feed(self) -> OrderFeed:
        max_skipped = self.config.get("max_skipped_details", settings.DEFAULT_MAX_SKIPPED_DETAILS)
        return OrderFeed(max_skipped=int(max_skipped))

    def discover_streams(self) -> list[Stream]:
        shared: dict[str, t.Any] = {
            "api": self.api,
            "feed": self.feed,
            "progress": self.progress,
            "checkpoint": self.checkpoint,
        }
        return [
            streams.OrdersStream(self, **shared),
            streams.OrderItemsStream(self, **shared),
            streams.OrderDetailsStream(self, **shared),
        ]

    @classmethod
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        """`--test`: what a sync asks of each selected stream's endpoint, in two or three
        requests (`check_connection`); `--test=schema` is the SDK's."""
        if value != CliTestOptionValue.All.value:
            super().cb_test(ctx, param, value)
            return
        given = ctx.params.get("config")
        tap = cls(
            config=getattr(given, "config", None),
            parse_env_config=getattr(given, "parse_env", False),
            validate_config=True,
        )
        tap.check_connection()
        ctx.exit()

    def check_connection(self) -> None:
        """One list page and the detail of an order on it, read as a sync reads them, and a
        record of each stream written; a refusal ends the run with one line naming the
        endpoint and its answer. Retries are kept short: this is a test, not a sync."""
        self.api.retry.max_seconds = min(self.api.retry.max_seconds, TEST_RETRY_SECONDS)
        orders = t.cast("streams.OrdersStream", self.streams["orders"])
        page = orders.fetch({"params": probe_params(sort="-id", since=None)})
        if not page.found:
            raise not_a_list(page)
        checked = [page.what]
        self.write_schemas()
        first = page.body["results"][0] if page.body["results"] else None
        if first is not None:
            order = orders.prepare(first)
            self.write_message(singer.RecordMessage(stream="orders", record=orders.emittable(order)))
            for item in order.get("orderitem_set") or []:
                self.write_message(
                    singer.RecordMessage(stream="order_items", record={**item, "order": first.get("id")})
                )
                break
            details = t.cast("streams.OrderDetailsStream", self.streams["order_details"])
            detail = details.request_detail(first.get("id")).result()
            if not detail.found:
                msg = (
                    f"{detail.what} answered 404 for an order the list shows: check that the API "
                    "user may read orders_integration"
                )
                raise OmnitronError(msg)
            self.write_message(
                singer.RecordMessage(stream="order_details", record=details.emittable(details.prepare(detail.body)))
            )
            checked.append(detail.what)
        self.message_writer.flush()
        self.api.close()
        self.logger.info(
            "Connection test passed: %s answered%s.",
            " and ".join(checked),
            "" if first else " (no order yet, so no detail to ask for)",
        )

    def checkpoint(self) -> None:
        """A STATE message now, unless it would repeat the last one (the SDK's state writer)."""
        self.state_writer.write_state(self.state)

    @property
    def catalog_dict(self) -> dict:
        """The discovered catalog, with each decimal's precision and scale (see `sdk`)."""
        catalog = super().catalog_dict
        for entry in catalog.get("streams", []):
            stream = self.streams.get(entry["tap_stream_id"])
            if stream is not None:
                restore_decimal_bounds(entry["schema"], stream.schema)
        return catalog

    def sync_all(self) -> None:  # type: ignore[misc]  # final in the SDK; wrapped here, super() does the sync
        reason = "failed"
        try:
            with collecting_for_a_sync():
                super().sync_all()
            reason = "finished"
        except OmnitronError as exc:
            reason = f"failed: {exc}"
            raise
        except (KeyboardInterrupt, SystemExit):
            reason = "interrupted"
            raise
        finally:
            self.message_writer.flush()  # records of a failed sync too: no STATE covers them
            self.api.close()
            bookmark = self.state.get("bookmarks", {}).get("orders", {}).get("replication_key_value")
            retry = self.api.retry
            self.progress.summary(
                reason=reason,
                requests=self.api.session.sent,
                retries=retry.retries,
                paused=retry.pause.total,
                skipped=len(self.feed.skipped),
                bookmark=bookmark,
            )
        if self.feed.skipped and self.config.get("fail_on_skipped_details", False):
            ids = ", ".join(map(str, sorted(self.feed.skipped)))
            msg = (
                f"{len(self.feed.skipped)} order details could not be fetched (orders {ids}); "
                "everything else is loaded, and the next run asks for them first"
            )
            raise OmnitronError(msg)


@contextlib.contextmanager
def collecting_for_a_sync() -> Iterator[None]:
    """Python's cycle collector, tuned for a sync, and put back as it was after it.

    A sync allocates dozens of objects per order (decoded JSON, requests' objects) and frees
    them by reference counting. By default the collector runs every 700 allocations and now
    and then walks every object the imports made: 7 to 10 % of the tap's CPU at zero latency
    (`gc.callbacks`, 2,000 orders). The objects alive when the sync starts are frozen
    (`gc.freeze`, made for long-lived objects), and new ones are collected less often; a
    cycle is still collected, a little later.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def cli() -> None:
    """Run the tap; a user's mistake or a refusing server ends in one line, not a traceback."""
    try:
        code = TapOmnitron.cli.main(standalone_mode=False)
    except OmnitronError as exc:
        _fail(str(exc))
    except click.ClickException as exc:
        _fail(exc.format_message(), code=exc.exit_code)
    except click.exceptions.Abort:
        _fail("aborted")
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int = 1) -> t.NoReturn:
    print(f"tap-omnitron: error: {SECRETS.scrub(message)}", file=sys.stderr)  # noqa: T201  (the CLI's one error line, on stderr)
    sys.exit(code)


if __name__ == "__main__":
    cli()
