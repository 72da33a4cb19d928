# kb-autosync. `make demo` runs the service end to end on the local stack; `make test` runs
# everything CI runs. Both install what they need (pinned in tools/) into .local/.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV       := .local/venv
LINT_VENV  := .local/lint-venv
PYTHON     ?= python3
FUNCTIONS  := event-processor sync-processor check-quota start-sync monitor-sync canary drift-check
# cargo-lambda and its zig come from the venv.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# cargo-fuzz, built on the stable toolchain into a project-local root.
CARGO_FUZZ_VERSION := 0.13.1
CARGO_LOCAL        := .local/cargo
FUZZ_SMOKE_SECONDS ?= 20
FUZZ_SECONDS       ?= 600

.PHONY: help demo up test lint unit e2e package build tools fmt clean-local fuzz fuzz-smoke scenario-build scenarios soak bench

help:
	@echo "make demo     run the service end to end on the local stack (no AWS account needed)"
	@echo "make up       start the local stack and keep it up for aws --endpoint-url (CONFIG=file.json: routes, knowledge bases, timings)"
	@echo "make test     lint + unit tests + end-to-end tests + Lambda packages (what CI runs)"
	@echo "make package  build the Lambda functions for arm64 (cargo lambda)"
	@echo "make fuzz     fuzz every parser of outside input for FUZZ_SECONDS (600) per target"
	@echo "make scenarios  seeded fault scenarios (the fixed list; SEEDS=7 or SEEDS=1..20 replays others)"
	@echo "make soak     500 fault scenarios and their summary table"
	@echo "make bench    benchmark on the local stack: jobs, freshness, cost per 1,000 changes, cold start"
	@echo "              (BENCH_ARGS=--quick for a shorter run; not part of make test)"

$(VENV)/.installed: tools/requirements-stack.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found: install Python 3.9+ (the local stack runs moto)"; exit 1; }
	@echo "==> installing the local stack's tools into $(VENV) (moto, cargo-lambda; pinned in $<)"
	@$(PYTHON) -m venv $(VENV) || { echo "error: '$(PYTHON) -m venv' failed: install the venv module (Debian: apt-get install python3-venv)"; exit 1; }
	@$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $< || { echo "error: installing $< failed (see pip's message above)"; exit 1; }
	@touch $@

$(LINT_VENV)/.installed: tools/requirements-lint.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found: install Python 3.9+"; exit 1; }
	@echo "==> installing linters into $(LINT_VENV) (cfn-lint, checkov; pinned in $<)"
	@$(PYTHON) -m venv $(LINT_VENV)
	@$(LINT_VENV)/bin/pip install --quiet --disable-pip-version-check -r $< || { echo "error: installing $< failed (see pip's message above)"; exit 1; }
	@touch $@

tools: $(VENV)/.installed $(LINT_VENV)/.installed

build:
	@echo "==> building the functions, the Bedrock emulator and the tools"
	cargo build --workspace --bins

fmt:
	cargo fmt --all

lint: $(LINT_VENV)/.installed
	@echo "==> rustfmt, clippy"
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	@echo "==> cfn-lint, checkov on template.yaml"
	$(LINT_VENV)/bin/cfn-lint template.yaml
	$(LINT_VENV)/bin/checkov -f template.yaml --framework cloudformation --quiet --compact 2>/dev/null
	@echo "==> state machine definition"
	cargo run --quiet -p asl-lint -- statemachine/workflow.asl.json

unit: $(VENV)/.installed
	@echo "==> unit and integration tests"
	cargo test --workspace --exclude kb-autosync-e2e
	@echo "==> local stack launcher tests"
	$(VENV)/bin/python -m pytest local/tests -q -p no:cacheprovider

e2e: build $(VENV)/.installed
	@echo "==> end-to-end tests on the local stack"
	cargo test -p kb-autosync-e2e --no-fail-fast -- --test-threads=1

package: $(VENV)/.installed
	@echo "==> Lambda packages (arm64, release)"
	rustup target add aarch64-unknown-linux-gnu
	cargo lambda build --release --arm64 $(addprefix -p ,$(FUNCTIONS))
	@for f in $(FUNCTIONS); do ls -l target/lambda/$$f/bootstrap | awk -v f=$$f '{printf "    %-16s %8.1f KiB\n", f, $$5/1024}'; done
	@echo "==> Lambda packages carry no crash points (test-only feature of kb-autosync-aws)"
	tools/check-no-crash-points.sh $(foreach f,$(FUNCTIONS),target/lambda/$(f)/bootstrap)

test: lint unit e2e fuzz-smoke scenarios package

# Fuzz targets (fuzz/): every parser of outside input. libFuzzer needs a C++ compiler and
# RUSTC_BOOTSTRAP on the stable toolchain; without them the smoke run is skipped, saying why.
$(CARGO_LOCAL)/bin/cargo-fuzz:
	cargo install --locked --version $(CARGO_FUZZ_VERSION) cargo-fuzz --root $(CARGO_LOCAL)

fuzz-smoke:
	@if ! command -v c++ >/dev/null; then echo "==> fuzz smoke run SKIPPED: no C++ compiler (libFuzzer needs one)"; exit 0; fi; \
	if ! $(MAKE) --no-print-directory $(CARGO_LOCAL)/bin/cargo-fuzz; then echo "==> fuzz smoke run SKIPPED: cargo-fuzz $(CARGO_FUZZ_VERSION) could not be installed"; exit 0; fi; \
	echo "==> fuzz smoke run ($(FUZZ_SMOKE_SECONDS) s per target)"; \
	PATH="$(CURDIR)/$(CARGO_LOCAL)/bin:$$PATH" fuzz/run.sh $(FUZZ_SMOKE_SECONDS)

# Fault scenarios (tests/scenarios). The functions are built with crash points (a feature of
# kb-autosync-aws that release packages never enable) into their own bin directory, so the
# plain debug build of the e2e suite and the demo stays as it is.
SCENARIO_BINS := $(FUNCTIONS) bedrock-emulator
SEEDS         ?=
SOAK_SEEDS    ?= 1000..1500
# Scenarios at once, each on its own local stack; 4 keeps two cores busy without starving one.
SOAK_PARALLEL ?= 4

scenario-build: $(VENV)/.installed
	@echo "==> building the functions with crash points for the fault scenarios"
	cargo build $(addprefix -p ,$(SCENARIO_BINS)) -p kb-autosync-scenarios --features kb-autosync-aws/crash-points
	@mkdir -p .local/scenarios/bin
	@for b in $(SCENARIO_BINS); do cp -f target/debug/$$b .local/scenarios/bin/$$b; done

scenarios: scenario-build
	@echo "==> fault scenarios ($(if $(SEEDS),seeds $(SEEDS),the fixed list))"
	target/debug/scenarios $(if $(SEEDS),--seeds $(SEEDS),--list fixed)

soak: scenario-build
	@echo "==> soak: fault scenarios $(SOAK_SEEDS), $(SOAK_PARALLEL) at once"
	target/debug/scenarios --seeds $(SOAK_SEEDS) --parallel $(SOAK_PARALLEL)

fuzz: $(CARGO_LOCAL)/bin/cargo-fuzz
	@echo "==> fuzzing every target for $(FUZZ_SECONDS) s"
	PATH="$(CURDIR)/$(CARGO_LOCAL)/bin:$$PATH" fuzz/run.sh $(FUZZ_SECONDS)

# The benchmark: release builds (the code that ships), the local stack's venv, matplotlib for
# the chart, GNU time for peak RSS (bench/cold_start.py). Results in bench/results/.
BENCH_VENV := .local/bench-venv
BENCH_ARGS ?=

$(BENCH_VENV)/.installed: tools/requirements-bench.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found: install Python 3.9+"; exit 1; }
	@echo "==> installing the chart's tools into $(BENCH_VENV) (matplotlib; pinned in $<)"
	@$(PYTHON) -m venv $(BENCH_VENV)
	@$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r $< || { echo "error: installing $< failed (see pip's message above)"; exit 1; }
	@touch $@

bench: $(VENV)/.installed $(BENCH_VENV)/.installed
	@test -x /usr/bin/time || { echo "error: /usr/bin/time (GNU time) is missing; it measures peak RSS: apt-get install -y time"; exit 1; }
	@echo "==> release builds of the functions, the emulator and the benchmark"
	cargo build --release -p kb-autosync-bench -p bedrock-emulator $(addprefix -p ,$(FUNCTIONS))
	target/release/kb-autosync-bench $(BENCH_ARGS)
	@echo "==> fair share of the job slots: 20 data sources, 5 slots, a trickle on all"
	target/release/fair-share-bench --sources 20 --slots 5

demo: build $(VENV)/.installed
	cargo run --quiet -p kb-autosync-local -- demo

up: build $(VENV)/.installed
	cargo run --quiet -p kb-autosync-local -- up $(if $(CONFIG),--config $(CONFIG))

clean-local:
	rm -rf .local
