"""The Singer SDK's own standard tap tests, against a sandbox that lives for this module."""

from __future__ import annotations

import atexit

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from omnitron_sandbox import Sandbox
from tap_omnitron.tap import TapOmnitron

# The SDK builds the test class at import time, so the server must exist by then.
_SANDBOX = Sandbox(orders=12, seed=3).start()
atexit.register(_SANDBOX.stop)

TestTapOmnitron = get_tap_test_class(
    tap_class=TapOmnitron,
    config={"base_url": _SANDBOX.url, "api_token": _SANDBOX.api_token, "page_size": 5},
    suite_config=SuiteConfig(max_records_limit=None),
)


def teardown_module() -> None:
    _SANDBOX.stop()
