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

.PHONY: help run test venv fmt clippy lint package bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

run: ## Local API on http://127.0.0.1:$${PORT:-3000} (embedded store, sample events seeded)
	$(CARGO) run --profile local -p local-server

venv: $(VENV)/.installed ## Python tools for the tests: moto, cfn-lint, SAM CLI, cargo-lambda, schemathesis

$(VENV)/.installed: Makefile
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check \
		'moto[server]==$(MOTO_VERSION)' 'cfn-lint==$(CFN_LINT_VERSION)' \
		'aws-sam-cli==$(SAM_CLI_VERSION)' 'cargo-lambda==$(CARGO_LAMBDA_VERSION)' \
		'schemathesis==$(SCHEMATHESIS_VERSION)'
	touch $@

test: venv ## Everything: fmt, clippy, all tests (DynamoDB ones on moto), template lint, real-binary invokes, API fuzzing
	scripts/test.sh

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

lint: venv ## sam validate --lint and cfn-lint on template.yaml
	scripts/lint-template.sh

package: venv ## arm64 Lambda zips via cargo lambda (target/lambda/<fn>/bootstrap.zip) and their sizes
	scripts/package.sh

bench: venv ## Cold start, warm latency and peak RSS of the release binaries (fake Runtime API, moto)
	scripts/bench.sh

clean:
	$(CARGO) clean
	rm -rf $(VENV)
