"""Settings rules that JSON Schema cannot say well, checked before the first request.

Types, minimums and `required` live in `TapOmnitron.config_jsonschema`, the one definition
of the settings; these checks add what a schema would say badly or leak: a base URL that
is really one, credentials in one of two forms, a start date that parses, a CA bundle that
exists, and a proxy from the environment that requests can use.
"""

from __future__ import annotations

import os
import typing as t
from urllib.parse import quote, urlsplit

from requests import PreparedRequest
from requests.exceptions import RequestException
from requests.utils import get_auth_from_url, get_environ_proxies, select_proxy

from tap_omnitron import dates
from tap_omnitron.errors import SECRETS, SettingsError

DEFAULT_PAGE_SIZE = 100
DEFAULT_MAX_CONCURRENCY = 8
DEFAULT_MAX_RETRIES = 5
DEFAULT_MAX_RETRY_SECONDS = 900
DEFAULT_MAX_SKIPPED_DETAILS = 1000
DEFAULT_LOOKBACK_SECONDS = 60
DEFAULT_CONNECT_TIMEOUT = 10
DEFAULT_READ_TIMEOUT = 60
DEFAULT_REQUEST_TIMEOUT = 300
DEFAULT_MAX_RESPONSE_MB = 64
_CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")  # as requests reads them, in this order
_API_SUFFIXES = ("/api/i1", "/api/v1", "/api")


def check(config: t.Mapping[str, t.Any]) -> None:
    """Raise `SettingsError` for the first problem found."""
    if not config.get("base_url"):
        msg = "base_url is required (the Omnitron host, e.g. https://omnitron.example.com)"
        raise SettingsError(msg)
    base_url = normalise_base_url(config["base_url"])
    ca_bundle(config)
    environment_proxy(base_url)
    has_login = config.get("username") and config.get("password")
    if not config.get("api_token") and not has_login:
        if config.get("username") or config.get("password"):
            msg = "username and password must both be set (or set api_token instead)"
        else:
            msg = "no credentials: set api_token, or username and password"
        raise SettingsError(msg)
    token = config.get("api_token")
    if isinstance(token, str) and not _header_safe(token):
        msg = "api_token must be one line of printable text, as Omnitron's keys are (check for a pasted line break)"
        raise SettingsError(msg)
    if config.get("start_date") is not None:
        try:
            dates.parse(config["start_date"])
        except ValueError:
            msg = f"start_date must be an ISO 8601 date or date-time (e.g. 2024-01-31), got {config['start_date']!r}"
            raise SettingsError(msg) from None


def _header_safe(text: str) -> bool:
    """Sendable as an HTTP header value: printable, no line break, Latin-1."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return text.isprintable()


def normalise_base_url(value: t.Any) -> str:
    """`https://host[/prefix]` without a trailing slash or a pasted API suffix."""
    text = str(value).strip()
    try:
        parts = urlsplit(text)
        valid = parts.scheme in {"http", "https"} and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number
        valid = False
    if not valid:
        shown = "a value with '@' in it (not shown)" if "@" in text else repr(text)
        msg = f"base_url must be an http(s) URL such as https://omnitron.example.com, got {shown}"
        raise SettingsError(msg)
    if parts.username or parts.password:
        msg = "base_url must not contain credentials; use api_token or username/password"
        raise SettingsError(msg)
    path = parts.path.rstrip("/")
    for suffix in _API_SUFFIXES:
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    url = f"{parts.scheme}://{parts.netloc}{quote(path, safe='/%')}"
    try:  # as requests will prepare it: an internationalised host name becomes IDNA (xn--)
        PreparedRequest().prepare_url(url, None)
    except (RequestException, UnicodeError, ValueError):
        msg = f"base_url's host name {parts.hostname!r} is not a valid (internationalised) domain name"
        raise SettingsError(msg) from None
    return url


def ca_bundle(config: t.Mapping[str, t.Any]) -> str | bool:
    """What requests verifies certificates with: the `ca_bundle` setting, else
    REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE as requests reads them, else certifi's bundle."""
    sources = (("ca_bundle", config.get("ca_bundle")), *((name, os.environ.get(name)) for name in _CA_VARIABLES))
    where, path = next(((name, path) for name, path in sources if path), ("", None))
    if not path:
        return True
    if not os.path.exists(path):  # noqa: PTH110  (False on any OSError; Path.exists raises on some)
        msg = f"cannot read the CA certificates in {path} ({where}): no such file or folder"
        raise SettingsError(msg)
    return str(path)


def environment_proxy(base_url: str) -> str | None:
    """The proxy requests would take from the environment for `base_url` (HTTPS_PROXY,
    HTTP_PROXY, ALL_PROXY, NO_PROXY), checked: its password joins the secrets, and a URL
    requests cannot use is named (without its credentials).

    Every request goes to that one host, so it is worked out once: requests would read the
    whole environment three times per request to find the same answer.
    """
    proxy = select_proxy(base_url, get_environ_proxies(base_url))
    if not proxy:
        return None
    SECRETS.add(get_auth_from_url(proxy)[1])
    try:
        url = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, _ = url.hostname, url.port
    except ValueError:
        host = None
    if not host:
        msg = (
            "the proxy URL in the environment cannot be parsed "
            "(characters such as # / ? in its password must be %-encoded)"
        )
        raise SettingsError(msg)
    if url.scheme not in {"http", "https"}:
        msg = f"only http:// and https:// proxies are supported (the environment names {url.scheme}://{host})"
        raise SettingsError(msg)
    return proxy
