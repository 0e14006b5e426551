"""Settings checks that run before the first request, each naming the setting at fault."""

from __future__ import annotations

import datetime
import typing as t
from urllib.parse import urlsplit

from tap_omnitron.errors import SettingsError

DEFAULT_PAGE_SIZE = 100
DEFAULT_MAX_CONCURRENCY = 8
DEFAULT_MAX_RETRIES = 5
_API_SUFFIXES = ("/api/i1", "/api/v1", "/api")


def check(config: t.Mapping[str, t.Any]) -> None:
    """Raise `SettingsError` for the first problem found."""
    if not config.get("base_url"):
        msg = "base_url is required (the Omnitron host, e.g. https://omnitron.example.com)"
        raise SettingsError(msg)
    normalise_base_url(config["base_url"])
    has_login = config.get("username") and config.get("password")
    if not config.get("api_token") and not has_login:
        if config.get("username") or config.get("password"):
            msg = "username and password must both be set (or set api_token instead)"
        else:
            msg = "no credentials: set api_token, or username and password"
        raise SettingsError(msg)
    if config.get("start_date") is not None:
        parse_start_date(config["start_date"])
    for name in ("page_size", "max_concurrency"):
        _positive_integer(config, name, minimum=1)
    _positive_integer(config, "max_retries", minimum=0)
    if not isinstance(config.get("redact_secrets", True), bool):
        msg = f"redact_secrets must be true or false, got {config['redact_secrets']!r}"
        raise SettingsError(msg)


def normalise_base_url(value: t.Any) -> str:  # noqa: ANN401
    """`https://host[/prefix]` without a trailing slash or a pasted API suffix."""
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        msg = f"base_url must be an http(s) URL such as https://omnitron.example.com, got {text!r}"
        raise SettingsError(msg)
    if parts.username or parts.password:
        msg = "base_url must not contain credentials; use api_token or username/password"
        raise SettingsError(msg)
    path = parts.path.rstrip("/")
    for suffix in _API_SUFFIXES:
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    return f"{parts.scheme}://{parts.netloc}{path}"


def parse_start_date(value: t.Any) -> datetime.datetime:  # noqa: ANN401
    try:
        moment = datetime.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        msg = f"start_date must be an ISO 8601 date or date-time (e.g. 2024-01-31), got {value!r}"
        raise SettingsError(msg) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def _positive_integer(config: t.Mapping[str, t.Any], name: str, *, minimum: int) -> None:
    value = config.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        msg = f"{name} must be an integer >= {minimum}, got {value!r}"
        raise SettingsError(msg)
