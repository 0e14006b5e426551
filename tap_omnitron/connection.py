"""What every stream shares: the transport, one login, one retry budget and its pauses."""

from __future__ import annotations

import typing as t
from importlib.metadata import PackageNotFoundError, version

import requests
from requests.structures import CaseInsensitiveDict

from tap_omnitron.auth import OmnitronAuth
from tap_omnitron.retry import RetryPolicy
from tap_omnitron.transport import Transport

REQUEST_TIMEOUT = 60  # seconds; a hung server is a transient fault, retried


def user_agent() -> str:
    try:
        return f"tap-omnitron/{version('tap-omnitron')}"
    except PackageNotFoundError:
        return "tap-omnitron"


class Connection:
    """Requests to Omnitron with the current token; up to `max_concurrency` in flight."""

    def __init__(self, config: t.Mapping[str, t.Any], base_url: str) -> None:
        self.max_in_flight = int(config.get("max_concurrency") or 1)
        self.headers = requests.utils.default_headers()
        self.headers.update({"Accept": "application/json", "User-Agent": user_agent()})
        # One connection more than detail requests in flight: the next list page's.
        self.transport = Transport(
            base_url, timeout=REQUEST_TIMEOUT, keep_idle=self.max_in_flight + 1
        )
        self.auth = OmnitronAuth(
            base_url=base_url,
            send=self.transport.send,
            headers=self.headers,
            api_token=config.get("api_token"),
            username=config.get("username"),
            password=config.get("password"),
        )
        self.retry = RetryPolicy(max_retries=int(config.get("max_retries", 5)))

    def get(self, url: str) -> requests.PreparedRequest:
        """A GET with the tap's headers. `url` is one the tap built, already encoded:
        `PreparedRequest.prepare` would check and re-encode it, one request per order."""
        request = requests.PreparedRequest()
        request.method, request.url = "GET", url
        request.headers = CaseInsensitiveDict(self.headers)
        return request

    def start(self, request: requests.PreparedRequest) -> t.Callable[[], requests.Response]:
        """Send `request` now; call the result to read its response.

        A 401 with login credentials logs in again and repeats the request, once.
        """
        token = self.auth.token()
        request.headers["Authorization"] = f"Token {token}"
        exchange = self.transport.start(request)

        def response() -> requests.Response:
            answer = exchange.response()
            if answer.status_code == 401 and self.auth.can_login:  # noqa: PLR2004
                request.headers["Authorization"] = f"Token {self.auth.relogin(rejected=token)}"
                answer = self.transport.start(request).response()
            return answer

        return response

    def send(self, request: requests.PreparedRequest) -> requests.Response:
        return self.start(request)()

    def close(self) -> None:
        self.transport.close()
