#!/usr/bin/env bash
# `make test`: moto up, then every check; moto is stopped by the trap in moto.sh on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export VENV=${VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"
source scripts/moto.sh

step() { printf '\n==> %s\n' "$*"; }
step "cargo fmt --check";   cargo fmt --all -- --check
step "cargo clippy";        cargo clippy --workspace --all-targets -- -D warnings
step "cargo test (embedded + DynamoDB on moto at $AWS_ENDPOINT_URL_DYNAMODB)"
cargo test --workspace --all-targets
for extra in scripts/lint-template.sh scripts/invoke-test.sh scripts/fuzz-api.sh; do
  if [ -x "$extra" ]; then step "$extra"; "$extra"; fi
done
# Every route in both slash forms and register → book → cancel over HTTP, against a local server
# (embedded store) that scripts/local-server.sh starts on a free port and stops afterwards.
step "scripts/smoke.sh against a local server"
scripts/local-server.sh scripts/smoke.sh
# `make run PAYMENTS=local`'s checkout page in headless Chromium: Pay confirms the booking through
# the signed webhook, Cancel leaves it pending (Debian's chromium + chromium-driver, selenium).
step "scripts/checkout-browser-test.py: the local checkout in headless Chromium"
PAYMENTS=local scripts/local-server.sh "$VENV/bin/python" scripts/checkout-browser-test.py
step "all checks passed"
