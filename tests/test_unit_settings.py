"""settings in-process: each rule `check` adds to the JSON Schema, in both directions and with the line it
says; the base URL, the CA bundle and the proxy as requests would take them from the environment (`make
mutation` runs these)."""

from __future__ import annotations

import re

import pytest

from tap_omnitron import settings
from tap_omnitron.errors import SCRUBBED, SecretRegistry, SettingsError
from tap_omnitron.settings import ca_bundle, check, environment_proxy, normalise_base_url

BASE = "https://omnitron.example.com"
TOKEN = {"base_url": BASE, "api_token": "a-valid-token"}
ENVIRONMENT = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No proxy or CA bundle from the machine; a registry of secrets of this test's own."""
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setattr(settings, "SECRETS", SecretRegistry())


def refused(message: str):
    """The one line a setting is refused with, exactly."""
    return pytest.raises(SettingsError, match=f"^{re.escape(message)}$")


# --------------------------------------------------------------------------- check: base_url and credentials


@pytest.mark.parametrize(
    "config",
    [
        TOKEN,
        {"base_url": BASE, "username": "user", "password": "pass"},
        {"base_url": BASE, "api_token": "t0ken", "username": "user"},  # a token makes a half login harmless
        {**TOKEN, "start_date": "2024-01-31"},
        {**TOKEN, "start_date": "2024-01-31T10:00:00+03:00"},
    ],
)
def test_check_accepts_a_base_url_with_a_token_or_a_whole_login(config: dict) -> None:
    check(config)


@pytest.mark.parametrize("config", [{}, {"base_url": "", "api_token": "t0ken"}, {"base_url": None}])
def test_check_requires_a_base_url(config: dict) -> None:
    with refused("base_url is required (the Omnitron host, e.g. https://omnitron.example.com)"):
        check(config)


def test_check_refuses_a_base_url_that_is_no_url_before_looking_at_credentials() -> None:
    with refused("base_url must be an http(s) URL such as https://omnitron.example.com, got 'omnitron.example.com'"):
        check({"base_url": "omnitron.example.com"})


@pytest.mark.parametrize(
    "config",
    [
        {"base_url": BASE, "username": "user"},
        {"base_url": BASE, "password": "pass"},
        {"base_url": BASE, "username": "user", "password": ""},
    ],
)
def test_half_a_login_is_named_as_such(config: dict) -> None:
    with refused("username and password must both be set (or set api_token instead)"):
        check(config)


@pytest.mark.parametrize(
    "config", [{"base_url": BASE}, {"base_url": BASE, "api_token": ""}, {"base_url": BASE, "api_token": None}]
)
def test_no_credentials_at_all_is_named_as_such(config: dict) -> None:
    with refused("no credentials: set api_token, or username and password"):
        check(config)


@pytest.mark.parametrize("token", ["abc\r\nX-Injected: 1", "tab\tinside", "key’with-a-curly-quote"])  # noqa: RUF001
def test_a_token_that_cannot_be_a_header_value_is_refused(token: str) -> None:
    message = "api_token must be one line of printable text, as Omnitron's keys are (check for a pasted line break)"
    with refused(message):
        check({"base_url": BASE, "api_token": token})


@pytest.mark.parametrize("token", ["plain-KEY_0123456789", "Türkçe-é-ü"])  # Latin-1 letters are sendable
def test_a_printable_latin_1_token_is_accepted(token: str) -> None:
    check({"base_url": BASE, "api_token": token})


def test_a_token_that_is_no_text_is_left_to_the_schema() -> None:
    """JSON Schema names a token of the wrong type (its line keeps the value hidden); `check`, which runs
    first, must not fail on it in its own way."""
    check({"base_url": BASE, "api_token": 1234567890})


@pytest.mark.parametrize("start_date", ["last tuesday", "2024-13-45", ""])
def test_a_start_date_that_does_not_parse_is_refused_and_quoted(start_date: str) -> None:
    message = f"start_date must be an ISO 8601 date or date-time (e.g. 2024-01-31), got {start_date!r}"
    with refused(message):
        check({**TOKEN, "start_date": start_date})


def test_check_reads_the_ca_bundle_and_the_proxy_of_the_normalised_url(monkeypatch, tmp_path) -> None:
    with refused(f"cannot read the CA certificates in {tmp_path / 'none.pem'} (ca_bundle): no such file or folder"):
        check({**TOKEN, "ca_bundle": str(tmp_path / "none.pem")})
    monkeypatch.setenv("HTTPS_PROXY", "socks5://proxy.example:1080")
    with refused("only http:// and https:// proxies are supported (the environment names socks5://proxy.example)"):
        check({**TOKEN, "base_url": BASE + "/api/i1/"})
    monkeypatch.setenv("NO_PROXY", "omnitron.example.com")
    check({**TOKEN, "base_url": BASE + "/api/i1/"})


# --------------------------------------------------------------------------- base_url


@pytest.mark.parametrize(
    ("pasted", "url"),
    [
        ("http://omnitron.example.com", "http://omnitron.example.com"),
        ("https://omnitron.example.com:8443/", "https://omnitron.example.com:8443"),
        ("http://127.0.0.1:1/api", "http://127.0.0.1:1"),
        ("https://host.example/shop/api/v1//", "https://host.example/shop"),
        ("https://host.example/INBOX/", "https://host.example/INBOX"),
        ("https://host.example/my%20shop/api/i1", "https://host.example/my%20shop"),
        ("https://host.example/a b", "https://host.example/a%20b"),
        ("https://host.example/api/i1/api", "https://host.example/api/i1"),
    ],
)
def test_base_url_is_normalised_to_scheme_host_and_prefix(pasted: str, url: str) -> None:
    assert normalise_base_url(pasted) == url


@pytest.mark.parametrize(
    "pasted",
    ["ftp://omnitron.example.com", "omnitron.example.com", "https://", "https://host.example:0", "/api/i1/", "", 42],
)
def test_base_url_must_be_an_http_url_with_a_host(pasted: object) -> None:
    with refused(f"base_url must be an http(s) URL such as https://omnitron.example.com, got {str(pasted).strip()!r}"):
        normalise_base_url(pasted)


def test_a_port_that_is_no_number_is_no_url() -> None:
    with refused("base_url must be an http(s) URL such as https://omnitron.example.com, got 'https://host.example:x'"):
        normalise_base_url("https://host.example:x")


def test_a_refused_base_url_with_an_at_sign_is_not_quoted() -> None:
    """What comes before an '@' may be a password."""
    shown = "a value with '@' in it (not shown)"
    with refused(f"base_url must be an http(s) URL such as https://omnitron.example.com, got {shown}"):
        normalise_base_url("admin:hunter2@omnitron.example.com")


@pytest.mark.parametrize(
    "pasted", ["https://user@host.example", "https://:pw@host.example", "https://u:pw@host.example"]
)
def test_base_url_must_not_carry_credentials(pasted: str) -> None:
    with refused("base_url must not contain credentials; use api_token or username/password"):
        normalise_base_url(pasted)


def test_a_host_name_requests_cannot_send_to_is_named() -> None:
    with refused("base_url's host name '.example.com' is not a valid (internationalised) domain name"):
        normalise_base_url("https://.example.com/")


# --------------------------------------------------------------------------- CA bundle


def test_without_a_bundle_certificates_are_verified_with_the_default_one() -> None:
    assert ca_bundle({}) is True
    assert ca_bundle({"ca_bundle": ""}) is True


def test_the_setting_comes_first_then_requests_then_curl(monkeypatch, tmp_path) -> None:
    setting, requests_bundle, curl_bundle = (tmp_path / name for name in ("setting.pem", "requests.pem", "curl.pem"))
    for path in (setting, requests_bundle, curl_bundle):
        path.write_text("not read here")
    monkeypatch.setenv("CURL_CA_BUNDLE", str(curl_bundle))
    assert ca_bundle({}) == str(curl_bundle)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(requests_bundle))
    assert ca_bundle({}) == str(requests_bundle)
    assert ca_bundle({"ca_bundle": str(setting)}) == str(setting)


def test_a_missing_bundle_is_named_with_where_it_was_set(monkeypatch, tmp_path) -> None:
    missing = tmp_path / "missing.pem"
    with refused(f"cannot read the CA certificates in {missing} (ca_bundle): no such file or folder"):
        ca_bundle({"ca_bundle": str(missing)})
    monkeypatch.setenv("CURL_CA_BUNDLE", str(missing))
    with refused(f"cannot read the CA certificates in {missing} (CURL_CA_BUNDLE): no such file or folder"):
        ca_bundle({})
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(missing))
    with refused(f"cannot read the CA certificates in {missing} (REQUESTS_CA_BUNDLE): no such file or folder"):
        ca_bundle({})


# --------------------------------------------------------------------------- proxy from the environment


def test_no_proxy_in_the_environment_is_none() -> None:
    assert environment_proxy(BASE) is None


def test_the_proxy_for_the_scheme_of_the_base_url_is_taken_and_its_password_kept_secret(monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://user:s3cret%40pw@proxy.example:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://plain.example:8080")
    assert environment_proxy(BASE) == "http://user:s3cret%40pw@proxy.example:3128"
    assert settings.SECRETS.scrub("password s3cret@pw") == f"password {SCRUBBED}"
    assert environment_proxy("http://omnitron.example.com") == "http://plain.example:8080"


@pytest.mark.parametrize("proxy", ["proxy.example:3128", "https://proxy.example", "HTTP://proxy.example:3128"])
def test_a_proxy_with_or_without_a_scheme_is_accepted_as_requests_reads_it(monkeypatch, proxy: str) -> None:
    monkeypatch.setenv("ALL_PROXY", proxy)
    assert environment_proxy(BASE) == proxy


def test_no_proxy_lets_the_host_go_direct(monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "elsewhere.example,omnitron.example.com")
    assert environment_proxy(BASE) is None
    assert environment_proxy("https://other.example") == "http://proxy.example:3128"


@pytest.mark.parametrize("proxy", ["socks5://proxy.example:1080", "socks5h://u:p@proxy.example"])
def test_a_proxy_requests_cannot_use_is_named_without_its_credentials(monkeypatch, proxy: str) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy)
    scheme = proxy.split("://", maxsplit=1)[0]
    with refused(f"only http:// and https:// proxies are supported (the environment names {scheme}://proxy.example)"):
        environment_proxy(BASE)


@pytest.mark.parametrize("proxy", ["http://user:pa#ss@proxy.example:3128", "http://:3128"])
def test_a_proxy_url_that_does_not_parse_says_how_to_fix_it(monkeypatch, proxy: str) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy)
    with refused(
        "the proxy URL in the environment cannot be parsed (characters such as # / ? in its password must be %-encoded)"
    ):
        environment_proxy(BASE)
