"""Bad settings: one clear line naming the setting, a non-zero exit, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from helpers import run_tap
from tap_omnitron.settings import normalise_base_url

TOKEN = "s3cret-token-value"
GOOD = {"base_url": "http://127.0.0.1:9", "api_token": TOKEN}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"base_url": None}, "base_url is required"),
        ({"base_url": "omnitron.example.com"}, "base_url must be an http(s) URL"),
        ({"base_url": "ftp://omnitron.example.com"}, "base_url must be an http(s) URL"),
        ({"base_url": "https://user:pw@omnitron.example.com"}, "base_url must not contain"),
        ({"api_token": None}, "no credentials"),
        ({"api_token": None, "username": "u"}, "username and password must both be set"),
        ({"start_date": "last tuesday"}, "start_date must be an ISO 8601"),
        ({"page_size": 0}, "page_size: 0 is less than the minimum of 1"),
        ({"page_size": -5}, "page_size: -5 is less than the minimum of 1"),
        ({"page_size": "ten"}, "page_size: 'ten' is not of type 'integer'"),
        ({"max_concurrency": 0}, "max_concurrency: 0 is less than the minimum of 1"),
        ({"max_retries": -1}, "max_retries: -1 is less than the minimum of 0"),
        ({"redact_secrets": "no"}, "redact_secrets: 'no' is not of type 'boolean'"),
        ({"api_token": 1234567890}, "api_token: *** is not of type 'string'"),
        ({"start_date": "2024-01-31T10:00:00.12345+03:00", "page_size": 0}, "page_size: 0 is"),
    ],
)
def test_bad_setting_gives_one_line(change: dict, named: str) -> None:
    config = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    run = run_tap(config, timeout=30)
    assert run.returncode != 0
    assert len(run.error_lines) == 1, run.stderr
    assert named in run.error_lines[0]
    assert "Traceback" not in run.stderr
    assert TOKEN not in run.stderr + run.stdout
    assert not run.messages, "nothing may be emitted before settings are valid"


@pytest.mark.parametrize(
    "pasted",
    [
        "https://omnitron.example.com",
        "https://omnitron.example.com/",
        "https://omnitron.example.com/api/i1/",
        "https://omnitron.example.com/api/i1",
        " https://omnitron.example.com/api/v1/ ",
    ],
)
def test_base_url_tolerates_slash_and_api_suffix(pasted: str) -> None:
    assert normalise_base_url(pasted) == "https://omnitron.example.com"


def test_base_url_keeps_a_path_prefix() -> None:
    assert normalise_base_url("https://host.example/shop/api/i1/") == "https://host.example/shop"


def test_about_and_discover_need_no_config() -> None:
    assert run_tap(None, args=("--about", "--format=json")).returncode == 0
    discover = run_tap(None, args=("--discover",))
    assert discover.returncode == 0
    streams = {s["tap_stream_id"] for s in discover.output_json()["streams"]}
    assert streams == {"orders", "order_items", "order_details"}
    assert "WARNING" not in discover.stderr


def settings_table(markdown: str) -> list[str]:
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Setting |"))
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    return lines[start:end]


def test_the_readme_settings_table_is_what_about_prints() -> None:
    about = run_tap(None, args=("--about", "--format=markdown"))
    assert about.returncode == 0, about.stderr
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert settings_table(readme) == settings_table(about.stdout)


def meltano_kind(prop: dict) -> str:
    """Meltano's name for a JSON Schema type (its kinds: string, integer, decimal, boolean, ...)."""
    kind = next(t for t in prop["type"] if t != "null")
    if prop.get("format") == "date-time":
        return "date_iso8601"
    return {"number": "decimal"}.get(kind, kind)


def test_meltano_yml_declares_the_settings_the_tap_defines() -> None:
    """`config_jsonschema` is the one definition; meltano.yml must say the same."""
    about = run_tap(None, args=("--about", "--format=json")).output_json()["settings"]["properties"]
    project = yaml.safe_load((Path(__file__).parent.parent / "meltano.yml").read_text())
    extractor = next(p for p in project["plugins"]["extractors"] if p["name"] == "tap-omnitron")
    declared = {s["name"]: s for s in extractor["settings"]}
    assert list(declared) == list(about)
    for name, prop in about.items():
        setting = declared[name]
        assert setting["kind"] == meltano_kind(prop), name
        assert setting.get("sensitive", False) == prop.get("secret", False), name
        assert setting.get("value") == prop.get("default"), name
        assert setting.get("label") == prop.get("title"), name
        assert setting.get("description") == prop.get("description"), name


@pytest.mark.parametrize("token", ["abc\r\nX-Injected: 1", "key’with-a-curly-quote"])  # noqa: RUF001  (not Latin-1, on purpose)
def test_a_token_that_cannot_be_a_header_is_one_line(token: str) -> None:
    run = run_tap({**GOOD, "api_token": token}, timeout=30)
    assert run.returncode == 1
    assert run.error_lines == [
        (
            "tap-omnitron: error: api_token must be one line of printable text, as Omnitron's keys are "
            "(check for a pasted line break)"
        )
    ]


def test_a_base_url_path_outside_ascii_is_percent_encoded() -> None:
    assert normalise_base_url("https://host.example/şube/api/i1/") == "https://host.example/%C5%9Fube"
