"""Token and login authentication, and what a refused credential looks like."""

from __future__ import annotations

import time

from conftest import config_for
from helpers import run_tap


def login_config(sandbox, **settings) -> dict:
    config = config_for(sandbox, username=sandbox.username, password=sandbox.password, **settings)
    del config["api_token"]
    return config


def test_login_with_username_and_password(sandbox) -> None:
    run = run_tap(login_config(sandbox))
    assert run.returncode == 0, run.stderr
    assert len(run.records("orders")) == 23
    assert sandbox.requests_by_path.get("/api/i1/auth/login/") == 1
    assert sandbox.password not in run.stdout + run.stderr


def test_expired_login_key_logs_in_again_and_goes_on(sandbox_factory) -> None:
    sandbox = sandbox_factory(orders=23, token_ttl_requests=20)
    run = run_tap(login_config(sandbox, max_concurrency=4))
    assert run.returncode == 0, run.stderr
    assert len(run.by_key("order_details", "pk")) == 23
    assert sandbox.requests_by_path.get("/api/i1/auth/login/", 0) >= 2


def test_bad_token_fails_fast_with_one_clear_line(sandbox) -> None:
    wrong = "wrong-token-abcdef"
    started = time.monotonic()
    run = run_tap({**config_for(sandbox), "api_token": wrong})
    assert time.monotonic() - started < 10  # no retry storm
    assert run.returncode != 0
    assert run.error_lines == [
        "tap-omnitron: error: GET /api/i1/orders/ answered 401 (Invalid token.): check the api_token setting"
    ]
    assert sandbox.request_count <= 3, "the first page and the two probes, each once"
    assert wrong not in run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert not run.records("orders")


def test_refused_login_names_the_problem(sandbox) -> None:
    config = {**login_config(sandbox), "password": "not-the-password"}
    run = run_tap(config)
    assert run.returncode != 0
    assert len(run.error_lines) == 1
    assert "login refused for username 'sandbox'" in run.error_lines[0]
    assert "Unable to log in" in run.error_lines[0]
    assert "not-the-password" not in run.stdout + run.stderr
