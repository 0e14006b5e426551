"""Shared fixtures: a sandbox Omnitron per test, stopped even when the test fails."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from omnitron_sandbox import Sandbox
from omnitron_sandbox.data import SHAPES


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--snowflake",
        action="store_true",
        help="also run tests/e2e/test_snowflake_live.py against the account in TARGET_SNOWFLAKE_*",
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The live Snowflake test runs with --snowflake only (`make test-snowflake`)."""
    if collection_path.name == "test_snowflake_live.py" and not config.getoption("--snowflake"):
        return True
    return None


# The modules that take minutes, in the order they start (`--dist loadscope` runs a module on one
# worker, and hands out the first scopes in turn): the longest on different workers, first, so that
# the short ones fill the gaps instead of waiting at the end. Measured with --durations.
_LONG = (
    "tests/test_outage.py",  # 2.5 min of waiting (an outage ridden out)
    "tests/e2e/test_analytics.py",  # two warehouses loaded twice and built by dbt
    "tests/e2e/test_operations.py",  # Meltano schedules, each a load and a dbt build
    "tests/e2e/test_pipelines.py",
    "tests/e2e/test_demo.py",
    "tests/e2e/test_batch.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the long modules first, in `_LONG`'s order."""

    def rank(item: pytest.Item) -> int:
        module = item.nodeid.split("::")[0]
        return _LONG.index(module) if module in _LONG else len(_LONG)

    items.sort(key=rank)


@pytest.fixture
def sandbox_factory():
    """Start sandboxes with any knobs; all of them stop at the end of the test."""
    started: list[Sandbox] = []

    def start(**knobs) -> Sandbox:
        knobs.setdefault("seed", 7)
        sandbox = Sandbox(**knobs).start()
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()


@pytest.fixture(params=SHAPES)
def shaped_factory(request, sandbox_factory):
    """`sandbox_factory` once per API shape: orders as documented (no `modified_date`), and
    orders that carry `modified_date` and `created_date`."""
    return functools.partial(sandbox_factory, shape=request.param)


@pytest.fixture
def sandbox(sandbox_factory) -> Sandbox:
    return sandbox_factory(orders=23)


def config_for(sandbox: Sandbox, **settings) -> dict:
    """Tap settings for a sandbox; small pages so that every test crosses pages."""
    return {"base_url": sandbox.url, "api_token": sandbox.api_token, "page_size": 5, **settings}


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and its key: a private CA of one."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make a test certificate (apt-get install openssl)")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)
