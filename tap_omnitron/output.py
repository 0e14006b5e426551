"""Singer messages to stdout in blocks: one write for many records, not one per record.

Two more rules live here because here is where every message passes:
- a SCHEMA message identical to the last one of its stream is not repeated (the SDK writes
  one per sync of a stream, and the child streams are synced once per page of orders;
  some targets start a new batch on every SCHEMA);
- SIGTERM and SIGINT wait for the block being written, so no line is cut in two.
"""

from __future__ import annotations

import copy
import signal
import sys
import threading
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import RecordMessage, SchemaMessage

if t.TYPE_CHECKING:
    from types import FrameType

    from singer_sdk.singerlib.encoding.simple import Message

BLOCK = 1 << 16  # bytes of records held before they are written


class BlockWriter(MsgSpecWriter):
    """msgspec's writer (several times faster than the default JSON one), in blocks.

    The SDK flushes stdout after every message: a system call per record, and a wake-up
    of the target reading the pipe. Here records wait until 64 KiB have gathered; any
    other message (SCHEMA, STATE) goes out at once with every record before it, so a
    STATE never reaches a target ahead of the records it covers.
    """

    def __init__(self) -> None:
        self._pending = bytearray()
        self._writing = False
        self._after_write: t.Callable[[], None] | None = None
        self._schemas: dict[str, tuple] = {}  # the last SCHEMA message written, per stream

    def write_message(self, message: Message) -> None:
        if isinstance(message, SchemaMessage):
            # Compared before it is encoded: encoding a detailed order's schema costs more.
            said = (message.schema, message.key_properties, message.bookmark_properties)
            if self._schemas.get(message.stream) == said:
                return
            self._schemas[message.stream] = copy.deepcopy(said)
        self._pending += self.format_message(message)
        if not isinstance(message, RecordMessage) or len(self._pending) >= BLOCK:
            self.flush()

    def flush(self) -> None:
        block, self._pending = self._pending, bytearray()
        self._writing = True
        try:
            _write_all(block)
            sys.stdout.flush()
        finally:
            self._writing = False
        if self._after_write is not None:
            action, self._after_write = self._after_write, None
            action()

    def guard_signals(self) -> None:
        """Let the SIGTERM and SIGINT handlers installed so far (the SDK's: a last STATE,
        then exit) run only once the block being written is complete."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            handler = signal.getsignal(signum)
            if callable(handler):
                signal.signal(signum, self._deferring(handler))

    def _deferring(self, handler: t.Callable[[int, FrameType | None], t.Any]) -> t.Callable:
        def deferred(signum: int, frame: FrameType | None) -> None:
            if self._writing:  # a handler that wrote or exited now would cut a line in two
                self._after_write = lambda: handler(signum, frame)
            else:
                handler(signum, frame)

        return deferred


def _write_all(data: bytearray) -> None:
    """Write every byte: unbuffered stdout (`python -u`, PYTHONUNBUFFERED) is a raw file,
    whose `write` returns early when, say, a signal interrupts it."""
    out, view = sys.stdout.buffer, memoryview(data)
    while view:
        view = view[out.write(view) or 0 :]
