#!/usr/bin/env bash
# `make bench`: the figures of docs/benchmarks.md. Loopback only, bounded in time (about 3 minutes
# of measuring after the builds); nothing here is a pass/fail test.
#
#   scripts/bench.sh [SECTION...] [bench_lambda.py options]
#
# Sections (default: all four, in this order):
#   lambda  release Lambda binaries: init instructions against a hello-world floor (bench/floor,
#           scripts/init_instructions.py, needs valgrind), then behind a fake Runtime API with
#           DynamoDB on moto: init time, warm latency, peak RSS (scripts/bench_lambda.py), with
#           and without the endpoint override
#   http    the local server built with the `local` profile (what `make run` serves), embedded
#           store: req/s and p99 of the issue's cases, by tests/examples/loadgen/
#   scale   the embedded store at 1k, 10k and 100k events: p50/p99 of list, filter, history
#           (tests/examples/store_scale.rs, in-process)
#   dynamo  DynamoDB calls and capacity units per route on moto (tests/examples/dynamo_capacity.rs)
#
# Environment: BENCH_DURATION (s per HTTP case, default 10), BENCH_CONNECTIONS (32), BENCH_THREADS
# (2) — the issue's `wrk -t2 -c32 -d10s`; BENCH_WRK=1 also runs wrk itself on the two read cases
# of the baseline when `wrk` is installed (a cross-check of the load generator; wrk is optional).
# A copy of the output goes to target/bench/bench-<UTC time>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
export VENV=${VENV:-.venv}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
TARGET=$CARGO_TARGET_DIR

sections=()
lambda_args=()
for a in "$@"; do
  case $a in
    lambda | http | scale | dynamo) sections+=("$a") ;;
    *) lambda_args+=("$a") ;;
  esac
done
[ ${#sections[@]} -gt 0 ] || sections=(lambda http scale dynamo)
want() { [[ " ${sections[*]} " == *" $1 "* ]]; }

DURATION=${BENCH_DURATION:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}

mkdir -p "$TARGET/bench"
OUT="$TARGET/bench/bench-$(date -u +%Y%m%dT%H%M%SZ).txt"
exec > >(tee "$OUT") 2>&1

section() { printf '\n==> %s\n' "$*"; }

section "machine"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')   commit: ${BENCH_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')}"
echo "cpu: $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "memory: $(awk '/MemTotal/ {printf "%.1f GB", $2 / 1048576}' /proc/meminfo)   kernel: $(uname -r)   $(rustc --version)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------------- builds
section "builds"
FUNCTIONS=(auth events bookings crm-notifier crm-sweeper payments)
if want lambda; then
  cargo build --release -p floor -p admin $(printf -- '-p %s ' "${FUNCTIONS[@]}")
fi
if want http || want scale || want dynamo; then
  # One profile for every bench binary: `local`, the one `make run` uses. One build for the server
  # and the bench examples (the tests crate), so the shared dependencies are compiled once.
  cargo build --profile local -p local-server -p tests --bins --examples
fi
EXAMPLES=$TARGET/local/examples

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}

if want lambda || want dynamo; then
  source scripts/moto.sh # its EXIT trap stops moto; ours below does that and stops the server
fi
trap 'rc=$?; stop_server; if [ -n "${MOTO_PID:-}" ]; then kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; fi; exit $rc' EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------- lambda
if want lambda; then
  BIN=$TARGET/release
  section "Lambda init in instructions, exec to the first /invocation/next (valgrind callgrind; x86_64 release)"
  if command -v valgrind >/dev/null; then
    # As deployed: no endpoint override (the SDK client with the bundled AWS roots), the
    # execution role's credentials in the environment, the functions' required settings; the
    # secrets as plain variables (no Secrets Manager call; the next run adds it).
    python3 scripts/init_instructions.py "$BIN/floor" \
      $(printf -- "$BIN/%s " "${FUNCTIONS[@]}") \
      --env TABLE_NAME=bench --env JWT_SECRET=bench-secret-0123456789abcdef0123456789abcdef \
      --env CRM_WEBHOOK_URL=https://crm.example.com/webhooks/bookings --env CRM_WEBHOOK_SECRET=whsec_YmVuY2gtY3JtLXNlY3JldC0wMTIzNDU2Nzg5 \
      --env STRIPE_SECRET_KEY=sk_test_bench --env STRIPE_WEBHOOK_SECRET=whsec_bench
    # The same values as deployed: only the secrets' ids in the environment, each function reading
    # its own with GetSecretValue at init (shared::secrets), here from moto over plain HTTP (the
    # deployed call adds a TLS handshake to Secrets Manager).
    read -r JWT_ARN CRM_ARN KEY_ARN HOOK_ARN < <("$VENV/bin/python" - <<'PY'
import os, uuid, boto3
sm = boto3.client("secretsmanager", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
values = ["bench-secret-0123456789abcdef0123456789abcdef", "whsec_YmVuY2gtY3JtLXNlY3JldC0wMTIzNDU2Nzg5", "sk_test_bench", "whsec_bench"]
print(" ".join(sm.create_secret(Name=f"bench/{uuid.uuid4()}", SecretString=v)["ARN"] for v in values))
PY
    )
    section "Lambda init in instructions with the secrets read from Secrets Manager at init (moto, HTTP)"
    python3 scripts/init_instructions.py "$BIN/floor" \
      $(printf -- "$BIN/%s " "${FUNCTIONS[@]}") \
      --env TABLE_NAME=bench --env JWT_SECRET_ID="$JWT_ARN" \
      --env CRM_WEBHOOK_URL=https://crm.example.com/webhooks/bookings --env CRM_WEBHOOK_SECRET_ID="$CRM_ARN" \
      --env STRIPE_SECRET_KEY_ID="$KEY_ARN" --env STRIPE_WEBHOOK_SECRET_ID="$HOOK_ARN" \
      --env AWS_ENDPOINT_URL_SECRETS_MANAGER="$AWS_ENDPOINT_URL"
  else
    echo "valgrind is not installed (apt-get install valgrind): instruction counts skipped"
  fi
  section "Lambda binaries: init, warm latency, peak RSS (DynamoDB on moto)"
  TABLE=bench-$(date +%s)
  "$BIN/admin" --table "$TABLE" create-table
  "$BIN/admin" --table "$TABLE" seed
  "$VENV/bin/python" scripts/bench_lambda.py "$BIN" "$TABLE" "${lambda_args[@]}"
  echo
  echo "cold starts as deployed (no endpoint override: the SDK client trusts the bundled AWS roots)"
  "$VENV/bin/python" scripts/bench_lambda.py "$BIN" "$TABLE" --no-endpoint "${lambda_args[@]}"
fi

# ---------------------------------------------------------------------------------- http
# The local server as `make run` starts it (`local` profile, embedded store, sample events, info
# log per request, here to a file), plus a bootstrap admin that creates the benchmark's events.
start_server() {
  local log=$1
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  URL="http://127.0.0.1:$port"
  export BENCH_ADMIN_EMAIL=bench-admin@example.com
  BENCH_ADMIN_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
  export BENCH_ADMIN_PASSWORD
  env -u TABLE_NAME -u CRM_WEBHOOK_URL -u CRM_WEBHOOK_SECRET -u SEED_SAMPLE_EVENTS \
    PORT="$port" JWT_SECRET="$(python3 -c 'import secrets; print(secrets.token_hex(24))')" \
    BOOTSTRAP_ADMIN_EMAIL="$BENCH_ADMIN_EMAIL" BOOTSTRAP_ADMIN_PASSWORD="$BENCH_ADMIN_PASSWORD" \
    RUST_LOG="${RUST_LOG:-info}" \
    "$TARGET/local/local-server" >"$log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null --max-time 2 "$URL/health" 2>/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "local-server did not answer /health; its log:" >&2
  tail -n 30 "$log" >&2
  return 1
}

if want http; then
  section "local server (profile local, embedded store): ${DURATION}s per case, $CONNECTIONS connections, $THREADS threads"
  work=$(mktemp -d -t bench-http.XXXXXX)
  start_server "$work/server.log"
  "$EXAMPLES/loadgen" "$URL" --duration "$DURATION" --connections "$CONNECTIONS" --threads "$THREADS"
  echo "server peak RSS: $(awk '/VmHWM/ {printf "%.1f MB", $2 / 1024}' "/proc/$SERVER_PID/status")"
  stop_server
  if [ -n "${BENCH_WRK:-}" ]; then
    if command -v wrk >/dev/null; then
      section "cross-check with wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s (fresh server, 20 events)"
      start_server "$work/server-wrk.log"
      "$EXAMPLES/loadgen" "$URL" --reads-only --duration 2 | tee "$work/reads.txt" | tail -n 1
      id=$(sed -n 's/^event id for GET \/events\/{id}: //p' "$work/reads.txt")
      for path in /events/ "/events/$id"; do
        echo "--- GET $path"
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$URL$path" | grep -E 'Requests/sec|Latency|99%|50%'
      done
      stop_server
    else
      echo "BENCH_WRK is set but wrk is not installed: skipped the cross-check"
    fi
  fi
  rm -rf "$work"
fi

# ---------------------------------------------------------------------------------- scale
if want scale; then
  section "embedded store at 1k / 10k / 100k events (in-process, profile local)"
  "$EXAMPLES/store_scale"
fi

# ---------------------------------------------------------------------------------- dynamo
if want dynamo; then
  section "DynamoDB calls and capacity units per route (moto; units computed from item sizes)"
  "$EXAMPLES/dynamo_capacity"
fi

section "load average after: $(cut -d' ' -f1-3 /proc/loadavg)   (output saved to $OUT)"
