"""Token authentication, with login by username and password.

Omnitron wants `Authorization: Token <key>`. The key is either the configured `api_token` or
the `key` that `POST /api/i1/auth/login/` returns. Akinon's own SDK logs in again once when a
request answers 401 (keys can expire); `renew` does the same, once per key.

A login answer is hostile until checked: its key becomes a header of every later request,
so only a plain token (letters, digits and `-._~+/=`) is accepted; anything else (a line
break would add headers of the server's choosing) ends the run with one line.
"""

from __future__ import annotations

import re
import threading
import typing as t

import msgspec
import requests

from tap_omnitron.errors import SECRETS, AuthenticationError, OmnitronError, first_message
from tap_omnitron.retry import AWAY_STATUSES, Away, Broken, retry_after

if t.TYPE_CHECKING:
    from tap_omnitron.retry import RetryPolicy

LOGIN_PATH = "/api/i1/auth/login/"
PLAIN_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{1,1024}")


class TokenAuth(requests.auth.AuthBase):
    """Adds the current key to a request; logs in at first use when there is no api_token."""

    def __init__(  # noqa: PLR0913  (three of them keyword-only, the ways to authenticate)
        self,
        session: requests.Session,
        base_url: str,
        retry: RetryPolicy,
        *,
        api_token: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self._session = session
        self._login_url = base_url + LOGIN_PATH
        self._retry = retry
        self._username = username
        self._password = password
        self._key = api_token
        self._fresh = False  # the key is a new login's, and no request has been accepted with it
        self._refused: OmnitronError | None = None  # a failed login: not tried again by other threads
        self._lock = threading.Lock()
        SECRETS.add(api_token)
        SECRETS.add(password)

    @property
    def can_login(self) -> bool:
        return bool(self._username and self._password)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Token {self.key()}"
        return request

    def key(self) -> str:
        with self._lock:
            if not self._key:
                self._key = self._login()
                self._fresh = True
            return self._key

    def _login(self) -> str:
        """A login, once: a refusal is the run's, whichever thread asks next."""
        if self._refused is not None:
            raise self._refused
        try:
            return self._log_in()
        except OmnitronError as exc:
            self._refused = exc
            raise

    def accepted(self) -> None:
        """A request with the current key was answered: the key works."""
        self._fresh = False

    def renew(self, request: requests.PreparedRequest) -> bool:
        """After a 401 to `request`: True if a request sent again has a new key to try."""
        rejected = request.headers.get("Authorization", "").removeprefix("Token ")
        with self._lock:
            if rejected != self._key:
                return True  # another thread has logged in again already
            if not self.can_login or self._fresh:
                return False  # the configured token, or a key the server refused from the start
            self._key = self._login()
            self._fresh = True
            return True

    def _log_in(self) -> str:
        response = self._retry.decorate(self._post, lambda: f"POST {LOGIN_PATH}")()
        try:
            decoded = msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            decoded = None
        if response.status_code in {400, 401, 403}:
            detail = first_message(decoded) or f"HTTP {response.status_code}"
            msg = f"login refused for username {self._username!r}: {detail}"
            raise AuthenticationError(msg)
        key = decoded.get("key") if isinstance(decoded, dict) else None
        if response.status_code != 200 or not isinstance(key, str) or not key:  # noqa: PLR2004  (HTTP 200)
            msg = f"login failed: POST {LOGIN_PATH} answered HTTP {response.status_code} without a token key"
            raise OmnitronError(msg)
        SECRETS.add(key)
        if not PLAIN_TOKEN.fullmatch(key):
            msg = (
                f"login failed: POST {LOGIN_PATH} answered a key that is not a plain token "
                "(it has characters a header must not carry); it is not sent"
            )
            raise OmnitronError(msg)
        return key

    def _post(self) -> requests.Response:
        """The login request, never with a token; a 429 or 5xx is worth retrying."""
        body = {"username": self._username, "password": self._password}
        response = self._session.post(self._login_url, json=body, auth=_anonymous)
        status = response.status_code
        if status in AWAY_STATUSES:
            raise Away(f"HTTP {status}", retry_after=retry_after(response.headers.get("Retry-After")))
        if status >= 500:  # noqa: PLR2004  (HTTP status codes read better as numbers)
            raise Broken(f"HTTP {status}")
        return response


def _anonymous(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """No token on the login itself (the session's own auth would ask for one)."""
    return request
