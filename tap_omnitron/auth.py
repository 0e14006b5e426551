"""Token authentication, with login by username and password.

Omnitron wants `Authorization: Token <key>`. The key is either the configured
`api_token` or the `key` that `POST /api/i1/auth/login/` returns. Akinon's own SDK logs in
again once when a request answers 401 (keys can expire); this does the same, as a
`requests` response hook, so that every stream and every worker thread shares one key.
"""

from __future__ import annotations

import threading
import typing as t

import requests
from requests.auth import AuthBase

from tap_omnitron.errors import SECRETS, AuthenticationError, OmnitronError, server_detail

LOGIN_PATH = "/api/i1/auth/login/"
_RETRIED = "X-Omnitron-Relogin"  # marks the one repeat of a request after a re-login


class OmnitronAuth(AuthBase):
    """Adds the token; with credentials, logs in lazily and once more after a 401."""

    def __init__(
        self,
        *,
        base_url: str,
        session: requests.Session,
        api_token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 60,
    ) -> None:
        self._login_url = base_url + LOGIN_PATH
        self._session = session
        self._username = username
        self._password = password
        self._timeout = timeout
        self._token = api_token
        self._lock = threading.Lock()
        SECRETS.add(api_token)
        SECRETS.add(password)

    @property
    def can_login(self) -> bool:
        return bool(self._username and self._password)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Token {self.token()}"
        hooks = request.hooks["response"]
        if self.can_login and self._after_response not in hooks:
            hooks.append(self._after_response)
        return request

    def token(self) -> str:
        with self._lock:
            if not self._token:
                self._token = self._login()
            return self._token

    def _relogin(self, rejected: str) -> str:
        """Log in again unless another thread already replaced the rejected key."""
        with self._lock:
            if self._token == rejected:
                self._token = self._login()
            return self._token

    def _login(self) -> str:
        try:
            response = self._session.post(
                self._login_url,
                json={"username": self._username, "password": self._password},
                auth=_no_auth,
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            msg = f"login failed: could not reach {self._login_url} ({type(exc).__name__})"
            raise OmnitronError(msg) from None
        if response.status_code in {400, 401, 403}:
            detail = server_detail(response) or f"HTTP {response.status_code}"
            msg = f"login refused for username {self._username!r}: {detail}"
            raise AuthenticationError(msg)
        try:
            body = response.json()
        except ValueError:
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

    def _after_response(
        self, response: requests.Response, **send_kwargs: t.Any
    ) -> requests.Response:
        request = response.request
        if response.status_code != 401 or request.headers.get(_RETRIED):  # noqa: PLR2004
            return response
        rejected = request.headers["Authorization"].removeprefix("Token ")
        token = self._relogin(rejected)
        retry = request.copy()
        retry.headers["Authorization"] = f"Token {token}"
        retry.headers[_RETRIED] = "1"
        response.close()
        repeated = response.connection.send(retry, **send_kwargs)
        repeated.history.append(response)
        repeated.request = retry
        return repeated


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """Keeps the session's own auth (this class) off the login request."""
    return request
