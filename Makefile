# archlab — every entry point a user needs. `make help` lists them.
SHELL := /bin/bash
CARGO ?= cargo
RELEASE_BIN := target/release
BINS := -p archlab-harness -p archlab-extsim -p archlab-monolith
PG_ADMIN := $(or $(DATABASE_URL),postgres://postgres@127.0.0.1:5432)/postgres

.PHONY: help services tools build run-monolith run-micro run-hybrid evolution compare compare-repro bench test lint fmt clean-dbs

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

services: ## Make sure PostgreSQL, Redis and RabbitMQ are up (starts them if installed)
	@deploy/local/ensure-services.sh

tools: ## Install the pinned test tools Cargo does not bring (schemathesis, from PyPI)
	@deploy/local/ensure-tools.sh

build: ## Release build of every binary
	$(CARGO) build --release --workspace --bins

run-monolith: services ## Run the monolith (:8080) with extsim (:8090); Ctrl-C stops both
	$(CARGO) build --release $(BINS)
	$(RELEASE_BIN)/archlab up monolith

run-micro: services ## Run gateway (:8000), four services and extsim; Ctrl-C stops all
	$(CARGO) build --release --workspace --bins
	$(RELEASE_BIN)/archlab up micro

run-hybrid: services ## Run the monolith with notifications extracted (gateway :8000); EXTRACT=payments for payments
	$(CARGO) build --release --workspace --bins
	$(RELEASE_BIN)/archlab up hybrid --extract $(or $(EXTRACT),notifications)

evolution: services ## The moves measured: notifications out of the running monolith and back under load, and what one more process costs (docs/evolution.md)
	$(CARGO) build --release --workspace --bins
	bench/evolution.sh

compare: services ## Quick side-by-side of monolith, micro-grpc, micro-http (< 10 min on 2 cores); report in target/compare
	$(CARGO) build --release --workspace --bins
	$(RELEASE_BIN)/archlab compare --out target/compare

compare-repro: services ## The quick comparison three times, and how far its headline ratios moved (target/compare-repro)
	$(CARGO) build --release --workspace --bins
	$(RELEASE_BIN)/archlab compare --repeat 3 --out target/compare-repro

test: services tools clean-dbs ## Every test against the real services (schemathesis included)
	@# The binaries and the tests in one build: built apart, the tests' dev-dependencies turn
	@# on features the binaries' build did not (sqlx, tracing-subscriber, rand, ...), and half
	@# the workspace was compiled twice.
	$(CARGO) build --workspace --bins --tests
	@# Each test creates fresh databases (~8 MB each; a whole run creates about 1,600). The
	@# ones a run leaves are dropped when the next one starts (clean-dbs above) or by
	@# `make clean-dbs` (about 2 minutes); dropping them here as well made every run longer.
	@# Test binaries run in parallel under cargo-nextest when it is installed (each test in a
	@# process of its own), else one after another under cargo test; doctests either way
	@# (over the whole workspace: with `-p` for only the crates that have any, the features
	@# resolved for those few differed and 64 crates were compiled again).
	@# The chaos experiments (archlab-harness's chaos:: tests) run after the rest, alone: they
	@# measure error shares and latencies, and with another test binary on the second core
	@# single requests failed or timed out in three experiments over two clean-clone runs.
	@# Both runs over --workspace: with -p the harness's features resolved differently and it
	@# was compiled again (about a minute).
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --workspace --no-fail-fast -E 'not (package(archlab-harness) & test(/^chaos::/))' && \
	  $(CARGO) nextest run --workspace --no-fail-fast -E 'package(archlab-harness) & test(/^chaos::/)' && \
	  $(CARGO) test --workspace --doc; \
	else $(CARGO) test --workspace --no-fail-fast; fi

lint: ## rustfmt, clippy, unused dependencies (cargo-machete), and the testcontainers path compiled
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@$(CARGO) machete --version >/dev/null 2>&1 || { \
	  echo "make lint: cargo-machete is not installed; install it with: cargo install cargo-machete" >&2; exit 1; }
	$(CARGO) machete
	$(CARGO) check -p archlab-testkit --features containers

fmt: ## Format the code
	$(CARGO) fmt --all

clean-dbs: ## Drop the databases earlier test runs left behind (archlab_test_*)
	@bash deploy/local/drop-test-dbs.sh "$(PG_ADMIN)"

.PHONY: calibrate
calibrate: ## Check archlab load against wrk (release; writes docs/results/calibration.md)
	$(CARGO) build --release -p archlab-harness
	@mkdir -p docs/results
	$(RELEASE_BIN)/archlab calibrate --out docs/results/calibration.md

bench: services ## Criterion benchmarks (hop, codec, purchase; release profile), HTML under target/criterion
	@# The purchase bench creates fresh databases and drops them itself; after an interrupted
	@# run, `make clean-dbs` drops what it left behind.
	$(CARGO) bench -p archlab-benches

.PHONY: traces trace-screenshot trace-overhead

traces: ## Receive spans on :4317 and list traces on http://127.0.0.1:16687; Ctrl-C stops
	$(CARGO) build --release -p archlab-harness
	$(RELEASE_BIN)/archlab traces serve $(TRACES_ARGS)

trace-screenshot: ## Redo docs/images/trace-waterfall.png from a real purchase through the microservices (headless chromium)
	deploy/local/screenshot-trace.sh

trace-overhead: services ## Tracing on vs off: throughput cost and spans delivered, every build (release; docs/results/trace-overhead.md)
	$(CARGO) build --release --workspace --bins
	$(RELEASE_BIN)/archlab trace-overhead --rounds 2 --out docs/results

.PHONY: chaos
chaos: services ## Every chaos experiment, full length, against every build (release); reports in target/chaos
	$(CARGO) build --release --workspace --bins
	$(RELEASE_BIN)/archlab chaos all --out target/chaos $(CHAOS_ARGS)
