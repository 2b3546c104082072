#!/usr/bin/env bash
# `make package`: release arm64 (Graviton) builds of the six Lambda functions as deployable zips,
# <lambda dir>/<function>/bootstrap.zip, then their sizes. cargo-lambda cross-compiles with zig
# (the `ziglang` wheel that `pip install cargo-lambda` brings into the venv); no Docker.
# Slow on a small machine (several minutes per SDK-sized binary on 2 cores).
# CARGO_TARGET_DIR: keep the default shared ./target. The arm64 release objects live under
# target/aarch64-unknown-linux-gnu/release, apart from the debug builds, and `make sam-build`
# reuses them. If you do move it, give an absolute path and the same value to `sam build`, which
# copies <target dir>/lambda/<bin>/bootstrap: the pinned aws-lambda-builders asks `cargo metadata`
# for the target dir, but older ones always read <CodeUri>/target/lambda and fail ("unable to find
# function binary") with any other CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
# cargo-lambda finds zig through `python3 -m ziglang`: the venv's python must come first.
export PATH="$PWD/$VENV/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
LAMBDA_DIR=${LAMBDA_DIR:-$CARGO_TARGET_DIR/lambda}
FUNCTIONS=(auth events bookings crm-notifier crm-sweeper payments)
TARGET=aarch64-unknown-linux-gnu

command -v cargo-lambda >/dev/null || { echo "cargo-lambda missing: run \`make venv\`" >&2; exit 1; }
python3 -c 'import ziglang' 2>/dev/null || { echo "zig missing: \`$VENV/bin/pip install ziglang\`" >&2; exit 1; }
if ! rustup target list --installed | grep -qx "$TARGET"; then
  echo "==> rustup target add $TARGET"
  rustup target add "$TARGET"
fi

packages=()
for f in "${FUNCTIONS[@]}"; do packages+=(-p "$f"); done
echo "==> cargo lambda build --release --arm64 --output-format zip ${packages[*]} (target dir $CARGO_TARGET_DIR)"
start=$SECONDS
cargo-lambda lambda build --release --arm64 --output-format zip --lambda-dir "$LAMBDA_DIR" "${packages[@]}"
echo "==> built in $((SECONDS - start)) s"

printf '%-14s %12s %14s  %s\n' function "zip bytes" "bootstrap bytes" path
for f in "${FUNCTIONS[@]}"; do
  zip="$LAMBDA_DIR/$f/bootstrap.zip"
  [ -f "$zip" ] || { echo "missing $zip" >&2; exit 1; }
  unzipped=$(python3 -c 'import sys, zipfile; print(sum(i.file_size for i in zipfile.ZipFile(sys.argv[1]).infolist()))' "$zip")
  printf '%-14s %12s %14s  %s\n' "$f" "$(stat -c %s "$zip")" "$unzipped" "$zip"
done
