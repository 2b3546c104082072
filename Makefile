# Two commands matter: `make run` and `make test`. Everything else is a step of those or of a deploy.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        ?= .venv
PY          := $(VENV)/bin/python
CARGO       ?= cargo
export CARGO_TARGET_DIR ?= $(CURDIR)/target

# Pinned tool versions (installed into $(VENV) by `make venv`).
MOTO_VERSION         := 5.2.5
CFN_LINT_VERSION     := 1.58.0
SAM_CLI_VERSION      := 1.170.0
CARGO_LAMBDA_VERSION := 1.9.2
SCHEMATHESIS_VERSION := 4.32.5
# Drives Debian's chromium + chromium-driver in the local checkout's browser test (4.52 and later
# need a certifi newer than this machine's package index has).
SELENIUM_VERSION     := 4.51.0

# `make run PAYMENTS=local`: paid bookings through an in-process Stripe stand-in and a local
# checkout page, no Stripe account needed. Empty: real Stripe if STRIPE_SECRET_KEY is set, else
# priced events are refused.
PAYMENTS ?=

.PHONY: help run test venv fmt clippy lint openapi package sam-build smoke smoke-local bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

run: ## Local API on http://127.0.0.1:3000 (PORT=4000 for another port), embedded store, sample events; PAYMENTS=local: offline paid bookings
	PAYMENTS='$(PAYMENTS)' $(CARGO) run --profile local -p local-server

venv: $(VENV)/.installed ## Python tools for the tests: moto, cfn-lint, SAM CLI, cargo-lambda, schemathesis, selenium

$(VENV)/.installed: Makefile
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check \
		'moto[server]==$(MOTO_VERSION)' 'cfn-lint==$(CFN_LINT_VERSION)' \
		'aws-sam-cli==$(SAM_CLI_VERSION)' 'cargo-lambda==$(CARGO_LAMBDA_VERSION)' \
		'schemathesis==$(SCHEMATHESIS_VERSION)' 'selenium==$(SELENIUM_VERSION)'
	touch $@

test: venv ## Everything: fmt, clippy, all tests (DynamoDB ones on moto), template lint, real-binary invokes, API fuzzing, the local checkout in headless Chromium
	scripts/test.sh

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

lint: venv ## sam validate --lint and cfn-lint on template.yaml
	scripts/lint-template.sh

openapi: ## Regenerate functions/auth/openapi.json from the types (a test fails while it is stale)
	$(CARGO) run --quiet -p openapi --bin gen-openapi > functions/auth/openapi.json.tmp
	mv functions/auth/openapi.json.tmp functions/auth/openapi.json

package: venv ## arm64 Lambda zips via cargo lambda (target/lambda/<fn>/bootstrap.zip) and their sizes
	scripts/package.sh

# SAM's build cache (`cached = true`) hashes every file under CodeUri `.` (the workspace, with
# target/ and .venv/) and fails when a concurrent cargo build deletes one: no cache, cargo's own
# incremental build is the cache. Artifacts: .aws-sam/build/<LogicalId>/bootstrap.
sam-build: venv ## sam build: release arm64 builds of the six functions with cargo-lambda (no Docker)
	@rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam build --no-cached

smoke: ## Every route, register → book → cancel against API_URL (e.g. the stack's ApiUrl output)
	@test -n "$(API_URL)" || { echo 'usage: make smoke API_URL=https://<api-id>.execute-api.<region>.amazonaws.com' >&2; exit 2; }
	scripts/smoke.sh "$(API_URL)"

smoke-local: ## scripts/smoke.sh against a fresh local server (part of make test)
	scripts/local-server.sh scripts/smoke.sh

bench: venv ## docs/benchmarks.md: Lambda init/RSS, local server req/s + p99, store at 1k-100k events, DynamoDB units per route
	scripts/bench.sh $(BENCH_ARGS)

clean:
	$(CARGO) clean
	rm -rf $(VENV)
