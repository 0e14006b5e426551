"""Errors a user can act on, and the guard that keeps credentials out of every message."""

from __future__ import annotations

import logging
import threading
import typing as t

import msgspec

from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

SCRUBBED = "***"


class OmnitronError(FatalAPIError):
    """A failure the tap explains in one line: what was wrong, never a secret.

    Subclasses `FatalAPIError` so that the SDK never retries it. The message is scrubbed
    when the error is made, since it may quote a server's answer.
    """

    def __init__(self, message: str, *args: t.Any) -> None:
        super().__init__(SECRETS.scrub(str(message)), *args)


class SettingsError(OmnitronError):
    """A setting is missing or malformed; raised before the first request."""


class AuthenticationError(OmnitronError):
    """The server refused the credentials."""


class GaveUp(OmnitronError):
    """A request that still failed after its retries, for a reason that is not the client's."""


class TransientError(RetriableAPIError):
    """A failure worth retrying: 429, 5xx, a dropped connection, a timeout, a malformed body.

    `retry_after` is the pause the server asked for, if any; `age` how long ago the failed
    request was sent (its answer may have waited unread while others were read).
    """

    def __init__(self, description: str, *, retry_after: float | None = None, age: float = 0.0) -> None:
        super().__init__(SECRETS.scrub(description))
        self.retry_after = retry_after
        self.age = age

    def __str__(self) -> str:
        return str(self.args[0])


class SecretRegistry:
    """The credentials of this run, so that every log line and error can be scrubbed.

    Logging filters cannot know the secrets in advance: the login key only exists after
    the first request, so the authenticator registers it here as soon as it has it.
    """

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 4:  # noqa: PLR2004  (a one-letter "secret" would mangle logs)
            with self._lock:
                self._secrets = {*self._secrets, secret}

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, SCRUBBED)
        return text


SECRETS = SecretRegistry()


class ScrubFilter(logging.Filter):
    """Rewrites a log record so that no registered credential reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = SECRETS.scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text = str(exc)
            if SECRETS.scrub(text) != text:
                record.exc_info = None
                record.exc_text = None
                record.msg = f"{clean} ({type(exc).__name__}: {SECRETS.scrub(text)})"
        return True


def install_scrubber() -> None:
    """Attach the scrubber to every handler that exists, once."""
    for logger in (logging.getLogger(), *_named_loggers()):
        for handler in logger.handlers:
            if not any(isinstance(f, ScrubFilter) for f in handler.filters):
                handler.addFilter(ScrubFilter())


def _named_loggers() -> list[logging.Logger]:
    return [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and logger.handlers
    ]


def server_detail(body: bytes) -> str | None:
    """The first human message of an error answer's body, if it is DRF-style JSON."""
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    return first_message(decoded)


def first_message(body: t.Any) -> str | None:  # noqa: ANN401
    """The first human message of a Django REST framework error body."""
    if isinstance(body, dict):
        for key in ("detail", "non_field_errors", *body.keys()):
            if key in body:
                value = body[key]
                text = value[0] if isinstance(value, list) and value else value
                if isinstance(text, str):
                    return text if key in {"detail", "non_field_errors"} else f"{key}: {text}"
    return None
