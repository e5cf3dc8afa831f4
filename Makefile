# safety-ledger: the two front-door commands are `make demo` and `make test`.
# Only python3 is needed: uv is bootstrapped into .tools/ when it is not on PATH.
SHELL := /bin/bash
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
export SAFETY_LEDGER_HOME ?= $(CURDIR)/var
export UV_FROZEN := 1
export UV_COMPILE_BYTECODE := 1

.PHONY: demo test bench screenshots report sync suites clean

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	touch $@

sync: .venv/.synced

demo: sync  ## pipeline on the bundled sample, then the dashboard on http://localhost:8501
	$(UV) run safety-ledger demo

test: sync  ## the whole test suite (Airflow DAGs, GX suites, DuckDB, Streamlit AppTest)
	$(UV) run pytest -q -n 2 --dist loadfile

suites: sync  ## regenerate expectations/ from the contract
	$(UV) run safety-ledger suites

screenshots: sync  ## headless-Chromium screenshots of every dashboard page (installs chromium)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(UV) run python scripts/screenshots.py

ifndef AS_OF
AS_OF := $(shell date -u +%Y-%m-%dT%H:%M:%S+00:00)
endif
REPORT_OUT ?= $(SAFETY_LEDGER_HOME)/reports/$(AS_OF)
report: sync  ## board pack (HTML + PDF) of $$SAFETY_LEDGER_HOME as of AS_OF (default now) into REPORT_OUT
	$(UV) run safety-ledger report --as-of $(AS_OF) --out "$(REPORT_OUT)"

SIZES ?= 100k,1m,10m
bench: sync  ## generate, then measure ingest, build, dashboard queries against the limit and the peer at SIZES events (bench/results.md)
	$(UV) run python bench/run.py --sizes $(SIZES)

clean:
	rm -rf var .venv .tools
