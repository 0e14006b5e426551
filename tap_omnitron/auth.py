"""Token authentication, with login by username and password.

Omnitron wants `Authorization: Token <key>`. The key is either the configured
`api_token` or the `key` that `POST /api/i1/auth/login/` returns. Akinon's own SDK logs in
again once when a request answers 401 (keys can expire); the connection does the same
through `relogin`.
"""

from __future__ import annotations

import typing as t

import msgspec
import requests
from requests.auth import AuthBase

from tap_omnitron.errors import SECRETS, AuthenticationError, OmnitronError, server_detail

LOGIN_PATH = "/api/i1/auth/login/"


class OmnitronAuth(AuthBase):
    """The token: the configured one, or one from a login that happens at first use."""

    def __init__(
        self,
        *,
        base_url: str,
        send: t.Callable[[requests.PreparedRequest], requests.Response],
        headers: t.Mapping[str, str],
        api_token: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self._login_url = base_url + LOGIN_PATH
        self._send = send
        self._headers = headers
        self._username = username
        self._password = password
        self._token = api_token
        SECRETS.add(api_token)
        SECRETS.add(password)

    @property
    def can_login(self) -> bool:
        return bool(self._username and self._password)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Token {self.token()}"
        return request

    def token(self) -> str:
        if not self._token:
            self._token = self._login()
        return self._token

    def relogin(self, rejected: str) -> str:
        """Log in again, unless the rejected key was already replaced."""
        if self._token == rejected:
            self._token = self._login()
        return self._token

    def _login(self) -> str:
        request = requests.PreparedRequest()
        request.prepare(
            method="POST",
            url=self._login_url,
            headers=self._headers,
            json={"username": self._username, "password": self._password},
        )
        try:
            response = self._send(request)
        except requests.RequestException as exc:
            msg = f"login failed: could not reach {self._login_url} ({type(exc).__name__})"
            raise OmnitronError(msg) from None
        if response.status_code in {400, 401, 403}:
            detail = server_detail(response) or f"HTTP {response.status_code}"
            msg = f"login refused for username {self._username!r}: {detail}"
            raise AuthenticationError(msg)
        try:
            body = msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            body = None
        key = body.get("key") if isinstance(body, dict) else None
        if response.status_code != 200 or not isinstance(key, str) or not key:  # noqa: PLR2004
            msg = (
                f"login failed: POST {LOGIN_PATH} answered HTTP {response.status_code} "
                "without a token key"
            )
            raise OmnitronError(msg)
        SECRETS.add(key)
        return key
