# Engram — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
VENV ?= .venv
DATA_DIR ?= ./data

.PHONY: run build test test-rust test-compat bench lint clean

## run: build the release binary and serve on the embedded store (127.0.0.1:7700)
run: build
	./target/release/engram serve --data-dir $(DATA_DIR)

build:
	$(CARGO) build --release -p engram-server

## test: every test — Rust unit and integration tests, then the real langgraph-sdk client
test: test-rust test-compat

test-rust:
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast; \
	else \
		echo "cargo-nextest not found; using cargo test"; \
		$(CARGO) test --workspace --no-fail-fast; \
	fi

test-compat:
	$(CARGO) build -p engram-server
	./scripts/compat-venv.sh $(VENV)
	ENGRAM_BIN=$(CURDIR)/target/debug/engram $(VENV)/bin/pytest -q tests/compat

## bench: HTTP load benchmarks beside redis-benchmark; writes results to .bench/
bench:
	./scripts/bench.sh

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf $(VENV) .bench
