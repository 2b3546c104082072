#!/usr/bin/env bash
# `make bench`: release builds of the HTTP functions, moto with a seeded table, then
# scripts/bench_lambda.py (init time, warm latency, peak RSS behind a fake Runtime API).
# Figures for the README and issue notes; nothing here is a pass/fail test.
set -euo pipefail
cd "$(dirname "$0")/.."
export VENV=${VENV:-.venv}
cargo build --release -p auth -p events -p bookings -p admin
BIN=${CARGO_TARGET_DIR:-target}/release
source scripts/moto.sh
TABLE=bench-$(date +%s)
"$BIN/admin" --table "$TABLE" create-table
"$BIN/admin" --table "$TABLE" seed
"$VENV/bin/python" scripts/bench_lambda.py "$BIN" "$TABLE" "$@"
echo
echo "cold starts as deployed (no endpoint override: the SDK client trusts the bundled AWS roots)"
"$VENV/bin/python" scripts/bench_lambda.py "$BIN" "$TABLE" --no-endpoint "$@"
