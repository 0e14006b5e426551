"""Token authentication, with login by username and password.

Omnitron wants `Authorization: Token <key>`. The key is either the configured `api_token` or
the `key` that `POST /api/i1/auth/login/` returns. Akinon's own SDK logs in again once when a
request answers 401 (keys can expire); the client does the same through `renew`.
"""

from __future__ import annotations

import typing as t

import msgspec

from tap_omnitron.errors import SECRETS, AuthenticationError, OmnitronError, first_message

if t.TYPE_CHECKING:
    from tap_omnitron.transport import HttpResponse

LOGIN_PATH = "/api/i1/auth/login/"


class Token:
    """The key to send: the configured one, or one from a login that happens at first use."""

    def __init__(
        self,
        *,
        post: t.Callable[[str, bytes], HttpResponse],
        api_token: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self._post = post
        self._username = username
        self._password = password
        self._key = api_token
        SECRETS.add(api_token)
        SECRETS.add(password)

    @property
    def can_login(self) -> bool:
        return bool(self._username and self._password)

    def key(self) -> str:
        if not self._key:
            self._key = self._login()
        return self._key

    def renew(self, rejected: str) -> str:
        """Log in again, unless the rejected key was already replaced."""
        if self._key == rejected:
            self._key = self._login()
        return self._key

    def _login(self) -> str:
        body = msgspec.json.encode({"username": self._username, "password": self._password})
        answer = self._post(LOGIN_PATH, body)
        try:
            decoded = msgspec.json.decode(answer.body)
        except msgspec.DecodeError:
            decoded = None
        if answer.status in {400, 401, 403}:
            detail = first_message(decoded) or f"HTTP {answer.status}"
            msg = f"login refused for username {self._username!r}: {detail}"
            raise AuthenticationError(msg)
        key = decoded.get("key") if isinstance(decoded, dict) else None
        if answer.status != 200 or not isinstance(key, str) or not key:  # noqa: PLR2004
            msg = f"login failed: POST {LOGIN_PATH} answered HTTP {answer.status} without a token key"
            raise OmnitronError(msg)
        SECRETS.add(key)
        return key
