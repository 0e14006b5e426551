# tap-omnitron developer tasks. Needs only Python 3.10+ and make; everything else is installed here.
#
#   make venv     .venv: the tap in editable mode with its test extras
#   make meltano  .venv-meltano (pinned Meltano) + `meltano install` of every plugin in meltano.yml
#   make demo     sandbox API -> meltano run tap-omnitron target-duckdb dbt-duckdb:build -> report from the marts
#   make lint     ruff (lint and format check) and mypy, the versions pinned in the test extra
#   make test     the whole pytest suite (unit + tests/e2e: PostgreSQL, DuckDB, dbt models, Snowflake types/SQL)
#   make test-snowflake the two-run scenario against a real Snowflake account (TARGET_SNOWFLAKE_*)
#   make test-sdk-next  the fast suite but its long sync scenarios, on the newest singer-sdk pre-release
#   make test-python PY=3.10  the same on that Python (.venv-py3.10; MATRIX= for all); CI runs 3.10 and 3.13
#   make mutation mutmut on the modules that carry the data guarantees, with the fast in-process tests (slow; not in CI)
#   make bench    scripts/bench.py
#   make clean    remove venvs, Meltano's plugin installs and state, outputs and caches

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
MELTANO_VERSION ?= 4.4.1
DEMO_ORDERS ?= 200
DEMO_OUT ?= output
DEMO_SANDBOX_ARGS ?=
PYTEST_ARGS ?=
BENCH_ARGS ?=
SDK_NEXT ?= 0.55.0b7
PY ?=
# What test-python and test-sdk-next run: the fast suite without the long sync scenarios (pyproject.toml's
# markers say why); MATRIX= runs all of it.
MATRIX ?= not scenario

VENV := .venv
MVENV := .venv-meltano
MELTANO := $(MVENV)/bin/meltano
VENV_STAMP := $(VENV)/.installed
MVENV_STAMP := $(MVENV)/.installed
PLUGINS_STAMP := .meltano/.plugins-installed
DUCKDB_PY := .meltano/loaders/target-duckdb/venv/bin/python
DEMO_DB = $(DEMO_OUT)/omnitron.duckdb

export MELTANO_SEND_ANONYMOUS_USAGE_STATS := false
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: settings help venv meltano demo lint test test-snowflake snowflake-account test-sdk-next test-python venv-python bench clean clean-data check-python mutation

help:
	@sed -n '/^$$/q;p' Makefile | sed 's/^# \{0,1\}//'; echo '  make clean-data  remove only output/ and the Meltano state'

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python 3.10+ is required (PYTHON=$(PYTHON))")'

venv: $(VENV_STAMP)
$(VENV_STAMP): pyproject.toml sandbox/pyproject.toml | check-python
	$(PYTHON) -m venv $(VENV) || { echo "python -m venv failed (Debian/Ubuntu: apt-get install python3-venv)"; exit 1; }
	$(VENV)/bin/python -m pip install -q -e '.[test]' -e ./sandbox
	touch $@

# Meltano lives in its own venv: it pins SQLAlchemy<2.1, the tap's SDK does not.
$(MVENV_STAMP): | check-python
	$(PYTHON) -m venv $(MVENV) || { echo "python -m venv failed (Debian/Ubuntu: apt-get install python3-venv)"; exit 1; }
	$(MVENV)/bin/python -m pip install -q 'meltano==$(MELTANO_VERSION)'
	touch $@

# One venv per plugin under .meltano/ (Meltano uses uv for these). The tap is installed
# editable (`pip_url: -e .`), so only dependency changes (pyproject.toml) need a reinstall.
meltano: $(PLUGINS_STAMP)
$(PLUGINS_STAMP): meltano.yml pyproject.toml $(MVENV_STAMP)
	$(MELTANO) install
	touch $@

demo: $(VENV_STAMP) $(PLUGINS_STAMP)
	@mkdir -p $(DEMO_OUT); tmp=$$(mktemp -d); sb_pid=""; \
	cleanup() { if [ -n "$$sb_pid" ]; then kill "$$sb_pid" 2>/dev/null || true; wait "$$sb_pid" 2>/dev/null || true; fi; rm -rf "$$tmp"; }; \
	trap cleanup EXIT; trap 'exit 130' INT TERM; \
	second_run=""; [ -f $(DEMO_DB) ] && second_run=1; \
	$(VENV)/bin/python -m omnitron_sandbox --orders $(DEMO_ORDERS) --port 0 --port-file "$$tmp/port" \
		$(DEMO_SANDBOX_ARGS) >"$$tmp/sandbox.json" 2>$(DEMO_OUT)/demo-sandbox.log & sb_pid=$$!; \
	for _ in $$(seq 100); do [ -s "$$tmp/sandbox.json" ] && break; kill -0 $$sb_pid 2>/dev/null || break; sleep 0.1; done; \
	[ -s "$$tmp/sandbox.json" ] || { echo "sandbox did not start:"; cat $(DEMO_OUT)/demo-sandbox.log; exit 1; }; \
	export TAP_OMNITRON_BASE_URL=$$($(VENV)/bin/python -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["url"])' "$$tmp/sandbox.json"); \
	export TAP_OMNITRON_API_TOKEN=$$($(VENV)/bin/python -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["api_token"])' "$$tmp/sandbox.json"); \
	echo "sandbox: $(DEMO_ORDERS) orders at $$TAP_OMNITRON_BASE_URL"; \
	if [ -n "$$second_run" ]; then \
		$(VENV)/bin/python scripts/demo_report.py --mutate "$$TAP_OMNITRON_BASE_URL" --modify 5 --create 2; \
	fi; \
	started=$$(date +%Y-%m-%dT%H:%M:%S); t0=$$SECONDS; \
	export TARGET_DUCKDB_FILEPATH=$(abspath $(DEMO_DB)); \
	echo "meltano run tap-omnitron target-duckdb dbt-duckdb:build  (log: $(DEMO_OUT)/demo-meltano.log)"; \
	if ! $(MELTANO) run tap-omnitron target-duckdb dbt-duckdb:build >$(DEMO_OUT)/demo-meltano.log 2>&1; then \
		echo "meltano run failed; last lines of $(DEMO_OUT)/demo-meltano.log:"; tail -n 40 $(DEMO_OUT)/demo-meltano.log; exit 1; \
	fi; \
	echo "  done in $$((SECONDS - t0))s"; \
	$(DUCKDB_PY) scripts/demo_report.py --db $(DEMO_DB) --since "$$started" \
		--state "$$($(MELTANO) state get dev:tap-omnitron-to-target-duckdb 2>/dev/null || true)"

# ruff over the whole tree (tap, sandbox, tests, scripts), mypy over tap_omnitron (pyproject.toml says which
# rules and why). `ruff check --fix .` and `ruff format .` fix most of what this reports.
lint: $(VENV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# One worker more than there are cores (the tests wait on sockets and subprocesses part of the time); a
# module's tests on one worker (they share its fixtures). tests/conftest.py starts the long modules first.
PARALLEL ?= -n $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 ))) --dist loadscope

test: $(VENV_STAMP) $(PLUGINS_STAMP)
	$(VENV)/bin/python -m pytest $(PARALLEL) $(PYTEST_ARGS)

# meltano.yml and the README's settings table, from the tap's own definition.
settings: $(VENV_STAMP)
	$(VENV)/bin/python scripts/sync_settings.py

# Outside `make test`: it needs a real account, and says so in one line without one.
test-snowflake: snowflake-account $(VENV_STAMP) $(PLUGINS_STAMP)
	$(VENV)/bin/python -m pytest tests/e2e/test_snowflake_live.py --snowflake $(PYTEST_ARGS)

snowflake-account:
	@missing=""; for v in ACCOUNT USER DATABASE WAREHOUSE; do \
		[ -n "$$(printenv TARGET_SNOWFLAKE_$$v)" ] || missing="$$missing TARGET_SNOWFLAKE_$$v"; done; \
	[ -n "$${TARGET_SNOWFLAKE_PASSWORD:-}$${TARGET_SNOWFLAKE_PRIVATE_KEY_PATH:-}" ] || \
		missing="$$missing TARGET_SNOWFLAKE_PASSWORD(or _PRIVATE_KEY_PATH)"; \
	if [ -n "$$missing" ]; then echo "make test-snowflake: a real Snowflake account is needed; not set:$$missing"; exit 2; fi

# The next SDK, in its own venv: the tap's pin (<0.55) is bypassed with --no-deps on purpose.
SDK_NEXT_STAMP := .venv-sdk-next/.installed-$(SDK_NEXT)
$(SDK_NEXT_STAMP): pyproject.toml | check-python
	rm -rf .venv-sdk-next
	$(PYTHON) -m venv .venv-sdk-next
	.venv-sdk-next/bin/python -m pip install -q 'singer-sdk==$(SDK_NEXT)' requests pendulum msgspec \
		pytest pytest-xdist hypothesis jsonschema pyyaml
	.venv-sdk-next/bin/python -m pip install -q --no-deps -e . -e ./sandbox
	touch $@

test-sdk-next: $(SDK_NEXT_STAMP)
	.venv-sdk-next/bin/python -c 'import singer_sdk, importlib.metadata as m; print("singer-sdk", m.version("singer-sdk"))'
	.venv-sdk-next/bin/python -m pytest tests --ignore=tests/e2e -q $(if $(MATRIX),-m "$(MATRIX)") $(PARALLEL) $(PYTEST_ARGS)

# The fast suite on another Python, in .venv-py$(PY): make test-python PY=3.10. CI runs the oldest and the
# newest Python the tap supports. The interpreter is python$(PY) on PATH if it runs (a pyenv shim may not),
# else the newest $PYENV_ROOT/versions/$(PY).*; without one, one line says so and make fails. venv-python makes
# the venv alone (CI makes both while the main suite runs).
test-python: venv-python
	.venv-py$(PY)/bin/python --version
	.venv-py$(PY)/bin/python -m pytest tests --ignore=tests/e2e -q $(if $(MATRIX),-m "$(MATRIX)") $(PARALLEL) $(PYTEST_ARGS)

venv-python:
	@[ -n "$(PY)" ] || { echo "make $@: say which Python, e.g. make $@ PY=3.10"; exit 2; }
	@py=""; for p in "$$(command -v python$(PY) || true)" \
		$$(ls -d "$${PYENV_ROOT:-$$HOME/.pyenv}"/versions/$(PY).*/bin/python$(PY) 2>/dev/null | sort -rV || true); do \
		[ -n "$$p" ] || continue; \
		py=$$("$$p" -c 'import sys; print(sys.executable if "%d.%d" % sys.version_info[:2] == "$(PY)" else "")' 2>/dev/null) || py=""; \
		[ -z "$$py" ] || break; \
	done; \
	[ -n "$$py" ] || { echo "make $@: Python $(PY) is missing (no working python$(PY) on PATH or in $${PYENV_ROOT:-$$HOME/.pyenv}/versions/)"; exit 1; }; \
	stamp=.venv-py$(PY)/.installed; \
	if [ "$$(cat $$stamp 2>/dev/null)" != "$$py" ] || [ pyproject.toml -nt $$stamp ] || [ sandbox/pyproject.toml -nt $$stamp ]; then \
		echo "creating .venv-py$(PY) with $$py"; \
		rm -rf .venv-py$(PY); \
		"$$py" -m venv .venv-py$(PY); \
		.venv-py$(PY)/bin/python -m pip install -q -e '.[test]' -e ./sandbox; \
		echo "$$py" > $$stamp; \
	fi

bench: $(VENV_STAMP)
	$(VENV)/bin/python scripts/bench.py $(BENCH_ARGS)

# Mutation testing (docs/mutation.md): mutmut, pinned in the test extra, mutates the modules pyproject.toml's
# [tool.mutmut] names and runs the fast in-process tests it names against each mutant. Every run starts afresh
# in mutants/, then prints the score per module: killed (a timeout counts as killed) over the mutants that
# docs/mutation.md does not list as equivalent. Below MUTATION_MIN percent, make fails (MUTATION_MIN=0: report only).
MUTATION_MIN ?= 90
define MUTATION_SUMMARY
import collections, re, sys
results, doc, floor = sys.argv[1], sys.argv[2], float(sys.argv[3])
listed = open(doc, encoding="utf-8").read().partition("## Equivalent mutants")[2].partition("\n## ")[0]
equivalent = set(re.findall(r"`(tap_omnitron[.][^`\s]+__mutmut_[0-9]+)`", listed))
status_of = {}
for line in open(results, encoding="utf-8"):
    name, _, status = line.strip().rpartition(": ")
    if name.startswith("tap_omnitron."):
        status_of[name] = "equivalent" if status == "survived" and name in equivalent else status
columns = ["killed", "timeout", "survived", "equivalent", "no tests"]
counts = collections.defaultdict(collections.Counter)
for name, status in status_of.items():
    counts[name.split(".")[1]][status if status in columns else "other"] += 1
    counts["total"][status if status in columns else "other"] += 1
print(f"\n{'module':<12}{'mutants':>8}" + "".join(f"{c:>12}" for c in [*columns, "other"]) + f"{'score':>9}")
for module in [*sorted(m for m in counts if m != "total"), "total"]:
    c = counts[module]
    judged = sum(c.values()) - c["equivalent"]
    score = 100 * (c["killed"] + c["timeout"]) / judged if judged else 100.0
    row = "".join(f"{c[k]:>12}" for k in [*columns, "other"])
    print(f"{module:<12}{sum(c.values()):>8}{row}{score:>8.1f}%")
for name in sorted(n for n, s in status_of.items() if s not in ("killed", "timeout", "equivalent")):
    print(f"  not killed: {name} ({status_of[name]}): .venv/bin/mutmut show {name}")
for name in sorted(equivalent - {n for n, s in status_of.items() if s == "equivalent"}):
    print(f"  docs/mutation.md lists {name} as equivalent, but it is {status_of.get(name, 'no mutant')}: update the list")
print(f"\n{score:.1f}% of the non-equivalent mutants killed (the floor is {floor:g}%)")
sys.exit(0 if score >= floor else 1)
endef
export MUTATION_SUMMARY

mutation: $(VENV_STAMP)
	rm -rf mutants
	$(VENV)/bin/mutmut run
	$(VENV)/bin/mutmut results --all true > mutants/results.txt
	$(VENV)/bin/python -c "$$MUTATION_SUMMARY" mutants/results.txt docs/mutation.md $(MUTATION_MIN)

# Loaded data and Meltano state only (the demo starts from scratch again).
clean-data:
	rm -rf output .meltano/meltano.db

clean:
	rm -rf $(VENV) $(MVENV) .venv-sdk-next .venv-py* .venv-bench-base-* .meltano output .pytest_cache .hypothesis .ruff_cache .mypy_cache transform/target transform/logs mutants
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# The benchmark of this checkout against BASE (a commit), both taps in one interleaved run. BASE's tap is
# a git worktree with its own venv in .venv-bench-base-<commit> (ignored like every .venv-*), made once.
BASE ?=
.PHONY: bench-compare
bench-compare: $(VENV_STAMP)
	@[ -n "$(BASE)" ] || { echo "usage: make bench-compare BASE=<commit> [BENCH_ARGS=...]"; exit 2; }
	@commit=$$(git rev-parse --verify --quiet '$(BASE)^{commit}') || { echo "BASE=$(BASE) is not a commit"; exit 2; }; \
	dir=.venv-bench-base-$$(git rev-parse --short $$commit); \
	if [ -e "$$dir/.git" ]; then \
		[ "$$(git -C "$$dir" rev-parse HEAD)" = "$$commit" ] || { echo "$$dir is not at $$commit: git worktree remove --force $$dir"; exit 1; }; \
	elif [ -e "$$dir" ]; then \
		echo "$$dir exists but is no git worktree: remove it"; exit 1; \
	else \
		git worktree add --force --detach "$$dir" "$$commit"; \
	fi; \
	if [ ! -f "$$dir/.venv/.installed" ]; then \
		$(PYTHON) -m venv "$$dir/.venv"; \
		"$$dir/.venv/bin/python" -m pip install -q -e "$$dir"; \
		touch "$$dir/.venv/.installed"; \
	fi; \
	echo "baseline: $(BASE) = $$commit in $$dir"; \
	$(VENV)/bin/python scripts/bench.py --baseline-python "$$dir/.venv/bin/python" $(BENCH_ARGS)
