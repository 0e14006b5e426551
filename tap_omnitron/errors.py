"""Errors a user can act on, one line each, and the guard that keeps credentials out of them.

Everything a server, a proxy or the network sends is hostile until checked, error text
included: `describe` names what went wrong from the exception's types and our own words,
never by echoing what the other side sent.
"""

from __future__ import annotations

import logging
import re
import threading
import typing as t

import msgspec
from singer_sdk.exceptions import FatalAPIError

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
    """A request that still failed when its retries ran out, for a reason that is not the client's."""


class SecretRegistry:
    """The credentials of this run, so that every log line and error can be scrubbed.

    Logging filters cannot know the secrets in advance: the login key only exists after
    the first request, so the authenticator registers it here as soon as it has it.
    """

    def __init__(self) -> None:
        self._secrets: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 4:  # noqa: PLR2004  (a one-letter "secret" would mangle logs)
            with self._lock:
                self._secrets = self._secrets | {secret}

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, SCRUBBED)
        return text


SECRETS = SecretRegistry()


class ScrubFilter(logging.Filter):
    """Rewrites a log record so that no registered credential reaches a handler.

    The SDK's loggers and requests' own may quote a URL, a header or an exception; the
    secrets are only known at run time, so no static redaction could do this.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "METRIC: %s":  # the SDK's metric points: names, tags and numbers only
            return True
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


SDK_FAILURE_LINE = "An unhandled error occurred while syncing '%s'"


def not_the_sdks_failure_line(record: logging.LogRecord) -> bool:
    """A logging filter for the stream loggers: the SDK logs this line at ERROR before any
    failure, ours included, leaving it to the tap to say what went wrong; the tap does, in
    the run's one error line."""
    return record.msg != SDK_FAILURE_LINE


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


_PRINTABLE = re.compile(r"[^\x20-\x7e\u00a0-\uffff]")


def first_message(body: t.Any) -> str | None:
    """The first human message of a Django REST framework error body, on one printable line."""
    if isinstance(body, dict):
        for key in ("detail", "non_field_errors", *body.keys()):
            if key in body:
                value = body[key]
                text = value[0] if isinstance(value, list) and value else value
                if isinstance(text, str):
                    text = _PRINTABLE.sub(" ", text)[:200]
                    return text if key in {"detail", "non_field_errors"} else f"{str(key)[:50]}: {text}"
    return None


# What each exception met below requests means, by the names of the exceptions it wraps
# (urllib3's and the standard library's, which the tap does not import): first match wins.
_CAUSES = (
    ("RemoteDisconnected", "the server closed the connection without an answer"),  # a BadStatusLine too
    ("BadStatusLine", "an answer that is not HTTP (a malformed status line)"),
    ("LineTooLong", "an answer that is not HTTP (a header line too long)"),
    ("HeaderParsingError", "an answer that is not HTTP (malformed headers)"),
    ("InvalidChunkLength", "an answer that broke off (a malformed chunk)"),
    ("IncompleteRead", "an answer that broke off before its end"),
    ("ConnectionRefusedError", "connection refused"),
    ("NameResolutionError", "the host name does not resolve"),
    ("gaierror", "the host name does not resolve"),
    ("ConnectTimeout", "no connection within connect_timeout"),
    ("ConnectTimeoutError", "no connection within connect_timeout"),
    ("ReadTimeout", "no answer within read_timeout"),
    ("ReadTimeoutError", "no answer within read_timeout"),
    ("ConnectionResetError", "the connection was reset"),
    ("ContentDecodingError", "an answer whose Content-Encoding does not decode"),
    ("ChunkedEncodingError", "an answer that broke off before its end"),
)


def describe(exc: BaseException) -> str:
    """One line for a failed request: what happened, in our words (see the module docstring)."""
    if isinstance(exc, FatalAPIError) or type(exc).__module__.startswith("tap_omnitron"):
        return str(exc)  # our own words already
    names = _names(exc)
    if "SSLError" in names or "SSLCertVerificationError" in names:
        return _tls_problem(exc)
    if "ProxyError" in names:
        status = re.search(r"Tunnel connection failed: (\d{3})", _texts(exc))
        return f"the proxy refused the tunnel (HTTP {status.group(1)})" if status else "the proxy could not be reached"
    for name, meaning in _CAUSES:
        if name in names:
            return meaning
    return f"the connection failed ({type(exc).__name__})"


_X509_V_ERR_CERT_HAS_EXPIRED = 10  # OpenSSL's verify codes
_X509_V_ERR_HOSTNAME_MISMATCH = 62
_X509_V_ERR_IP_ADDRESS_MISMATCH = 64


def _tls_problem(exc: BaseException) -> str:
    """The certificate problem, with the hint that fits it (a CA bundle fixes only some)."""
    verify = next((e for e in _chain(exc) if hasattr(e, "verify_code")), None)
    code = getattr(verify, "verify_code", None)
    if code in {_X509_V_ERR_HOSTNAME_MISMATCH, _X509_V_ERR_IP_ADDRESS_MISMATCH}:
        return "the TLS certificate is for another host name: check base_url (a CA bundle does not fix this)"
    if code == _X509_V_ERR_CERT_HAS_EXPIRED:
        return "the TLS certificate has expired (the server must renew it)"
    if verify is not None:
        return (
            "the TLS certificate was not accepted (issued by an unknown CA); for a private CA, "
            "point the ca_bundle setting or REQUESTS_CA_BUNDLE to its certificate"
        )
    return "the TLS handshake failed (not TLS, or a broken tunnel)"


_MALFORMED = {"LineTooLong", "HeaderParsingError", "InvalidChunkLength"}


def is_malformed(exc: BaseException) -> bool:
    """An answer that is not HTTP: the server's doing, like a broken body, not a network's."""
    names = _names(exc)
    return bool(names & _MALFORMED) or ("BadStatusLine" in names and "RemoteDisconnected" not in names)


def is_certificate_problem(exc: BaseException) -> bool:
    """A certificate no retry will change."""
    return any(hasattr(e, "verify_code") for e in _chain(exc))


_MAX_CHAIN = 50  # exceptions followed through one chain: more than any real one has


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and every exception it wraps (in args, as cause or context)."""
    seen: list[BaseException] = []
    todo: list[t.Any] = [exc]
    while todo:
        item = todo.pop()
        if isinstance(item, BaseException) and all(item is not s for s in seen) and len(seen) < _MAX_CHAIN:
            seen.append(item)
            todo.extend([*item.args, item.__cause__, item.__context__, getattr(item, "reason", None)])
    return seen


def _names(exc: BaseException) -> set[str]:
    return {klass.__name__ for e in _chain(exc) for klass in type(e).__mro__}


def _texts(exc: BaseException) -> str:
    return " ".join(str(a) for e in _chain(exc) for a in e.args if isinstance(a, str))
