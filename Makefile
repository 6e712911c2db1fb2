# dockyard: `make demo` and `make test` do all set-up on a fresh Debian machine (as root).

PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
# Debian packages the daemon, the tests and the demo use (installed when missing).
APT_PACKAGES := runc busybox-static iproute2 containernetworking-plugins docker-registry apache2-utils \
                openssl util-linux procps
# Optional: containerd is only the yardstick of the benchmarks (and of a few interop tests).
BENCH_PACKAGES := containerd debootstrap hyperfine

.PHONY: all deps venv test demo bench bench-deps clean

all: test

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

bench-deps: deps
	@missing=""; for p in $(BENCH_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]' --config-settings editable_mode=compat
	$(BIN)/python -m compileall -q actors cli oci shim wire >/dev/null  # as an installed copy has it
	touch $@

venv: $(VENV)/.installed

test: deps venv
	$(BIN)/pytest -q

demo: deps venv
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

bench: bench-deps venv
	$(BIN)/pip install -q -e '.[test,bench]' --config-settings editable_mode=compat
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench $(BENCH)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
