# The few commands a newcomer needs. Everything installs from nothing: uv is bootstrapped with
# pip when missing, then `uv sync` builds .venv from uv.lock, compiled to bytecode once: where
# Python may not write .pyc files (PYTHONDONTWRITEBYTECODE, read-only images) every process
# otherwise compiles Dagster, plotly and polars from source (imports 2.0 s -> 0.7 s). The `spark`
# extra (PySpark, for OBSERVANCE_ENGINE=spark and its parity tests) needs Java 17 at run time.
SHELL := /bin/bash
UV_BIN := $(shell command -v uv 2>/dev/null)
ifeq ($(UV_BIN),)
UV := python3 -m uv
else
UV := $(UV_BIN)
endif
RUN := $(UV) run --frozen
DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: install chromium java demo test dev lint format bench notebooks clean

install: .venv/.installed

.venv/.installed: pyproject.toml uv.lock Makefile
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --compile-bytecode --extra spark
	touch $@

demo: install  ## synthetic landing data (if none), full run, report
	$(RUN) observance demo

test: install chromium java  ## the whole test suite (reports opened in headless Chromium, Spark parity)
	$(RUN) pytest

# Java for the Spark engine's parity tests (tests/test_spark.py), installed with apt-get where
# `java` is missing and JAVA_HOME is not set: 17, else the release's default (Spark 4 runs on 17
# and 21).
java:
	@command -v java >/dev/null 2>&1 || [ -n "$$JAVA_HOME" ] || \
		{ $(SUDO) apt-get update -q && { DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends openjdk-17-jre-headless || \
		  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends default-jre-headless; }; }

# Debian's chromium, for the browser test of the reports (tests/test_report.py); installed with
# apt-get where missing (as root, or through sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends chromium; }

dev: install  ## the Dagster UI on http://127.0.0.1:3000 (with the daemon: schedule and sensor)
	mkdir -p $(DAGSTER_HOME)
	test -f $(DAGSTER_HOME)/dagster.yaml || cp deploy/dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	DAGSTER_HOME=$(DAGSTER_HOME) $(RUN) dagster dev -m dagster_project.definitions -h 127.0.0.1 -p 3000

lint: install
	$(RUN) ruff check .
	$(RUN) lint-imports
	$(RUN) ruff format --check .

format: install
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

bench: install  ## benchmark B1 at national scale (long: see docs/performance.md)
	$(RUN) observance bench

notebooks: install  ## Jupyter Lab on the analyst notebooks (read-only on the warehouse)
	$(UV) run --frozen --group notebooks jupyter lab notebooks/

clean:
	rm -rf data .dagster_home .pytest_cache .ruff_cache
