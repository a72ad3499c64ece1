# Two entry points on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= dev,local
STAMP := $(VENV)/.installed-$(EXTRAS)

.PHONY: demo test lint typecheck pytest bench clean venv system-deps

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
		$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

demo:
	$(MAKE) venv EXTRAS=dev
	$(BIN)/governd demo

# Servers and tools the tests start for real (Redis, PostgreSQL, Alertmanager, promtool, nginx);
# installed from Debian's packages when missing (policy-rc.d keeps apt from starting their
# system services: the tests start their own, on ports of their own).
system-deps:
	@missing=""; command -v redis-server >/dev/null || missing="redis-server"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v prometheus-alertmanager >/dev/null || missing="$$missing prometheus-alertmanager"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	[ -z "$$missing" ] || { \
		command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
		&& { [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; \
			chmod +x /usr/sbin/policy-rc.d; touch .policy-rc-added; }; } \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
		&& { [ ! -e .policy-rc-added ] || rm -f /usr/sbin/policy-rc.d .policy-rc-added; }; } \
		|| { echo "install:$$missing (e.g. apt-get install$$missing)"; exit 1; }

test: system-deps venv lint typecheck pytest

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: venv
	$(BIN)/mypy

pytest: venv
	$(BIN)/pytest -q

bench: venv
	$(BIN)/python bench/gateway_overhead.py
	$(BIN)/python bench/decision.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
