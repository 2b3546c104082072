#!/usr/bin/env bash
# API fuzzing (part of `make test`): schemathesis generates requests from the served
# /openapi.json and sends them to the local server (embedded store) with a facilitator's token.
# Fails on any 5xx, and on any status, Content-Type, header or body the document does not allow.
#
# One worker: with several, hypothesis can hit a CPython 3.11 thread-safety bug in `ast.parse`
# ("AST constructor recursion depth mismatch") and report it as a runtime error.
#
# Bounded: FUZZ_MAX_EXAMPLES cases per operation and phase (default 10), FUZZ_TIMEOUT seconds for
# the whole schemathesis run (default 120). Other knobs: FUZZ_SEED (default: a fixed seed so
# runs are reproducible; `random` for a new one each run), KEEP_LOGS=1 (keep server log and
# reports in the work directory).
set -euo pipefail
cd "$(dirname "$0")/.."
export VENV=${VENV:-.venv}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
PY="$VENV/bin/python"
ST="$VENV/bin/schemathesis"
MAX_EXAMPLES=${FUZZ_MAX_EXAMPLES:-10}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-120}
SEED=${FUZZ_SEED:-20251130}

for tool in "$PY" "$ST"; do
  [ -x "$tool" ] || { echo "fuzz-api: missing $tool (run \`make venv\`)" >&2; exit 1; }
done
ST="$(cd "$(dirname "$ST")" && pwd)/schemathesis"

source scripts/local-server.sh
WORK=$(mktemp -d -t fuzz-api.XXXXXX)
cleanup() {
  local rc=$?
  local_server_stop
  if [ "$rc" -ne 0 ] && [ -f "$WORK/server.log" ]; then
    echo "---- 5xx and errors in the local-server log ($WORK/server.log)" >&2
    plain_log | grep -E 'status=5|ERROR|panicked' | tail -n 40 >&2 || true
  fi
  if [ "$rc" -eq 0 ] && [ -z "${KEEP_LOGS:-}" ]; then rm -rf "$WORK"; fi
  exit "$rc"
}
plain_log() { sed 's/\x1b\[[0-9;]*m//g' "$WORK/server.log"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Embedded store, no CRM webhook, sample events seeded for GETs to find.
local_server_start "$WORK/server.log" \
  JWT_SECRET="fuzz-secret-0123456789abcdef0123456789abcdef0123" \
  BOOTSTRAP_ADMIN_EMAIL="admin@fuzz.example.com" \
  BOOTSTRAP_ADMIN_PASSWORD="fuzz-admin-password" \
  SEED_SAMPLE_EVENTS=1
local_server_wait
BASE=$LOCAL_SERVER_URL

# Registers a facilitator (the role that reaches the most operations: events are its own,
# bookings are open to every role) and prints its access token.
TOKEN=$("$PY" - "$BASE" <<'PY'
import json, sys, urllib.error, urllib.request

base = sys.argv[1]

def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")

user = {"name": "Fuzz Facilitator", "email": "fuzz-facilitator@example.com",
        "password": "fuzz-facilitator-password", "role": "facilitator"}
status, body = call("POST", "/auth/register", user)
if status != 201:
    sys.exit(f"fuzz-api: POST /auth/register -> {status}: {body}")
status, body = call("POST", "/auth/login", {"email": user["email"], "password": user["password"]})
if status != 200:
    sys.exit(f"fuzz-api: POST /auth/login -> {status}: {body}")
print(body["access_token"])
PY
) || { echo "---- local-server log" >&2; cat "$WORK/server.log" >&2; exit 1; }

seed_args=(--seed "$SEED")
[ "$SEED" = random ] && seed_args=()
# Every check that holds the server to the document: no 5xx; status, Content-Type, headers and body
# as documented; 405 with a matching `Allow` for undocumented methods; 401 without a token; a
# created resource can be fetched. Not gated: positive_data_acceptance (the schema cannot say that a
# cursor must come from a `Link` header, nor that `from` <= `to`), negative_data_rejection (blank
# query values are accepted as absent) and use_after_free (DELETE /bookings/{id} cancels: the
# booking stays readable with status `cancelled`). FUZZ_CHECKS=all runs them all to explore.
CHECKS=${FUZZ_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,unsupported_method,allow_header_conformance,ignored_auth,missing_required_header,ensure_resource_availability}
PHASES=${FUZZ_PHASES:-examples,coverage,fuzzing,stateful}
echo "fuzz-api: schemathesis $("$ST" --version | awk '{print $NF}') on $BASE/openapi.json" \
  "(phases $PHASES, max $MAX_EXAMPLES examples per operation and phase, ${FUZZ_TIMEOUT}s budget)"
echo "fuzz-api: checks $CHECKS"
set +e
# From the work directory: hypothesis and schemathesis keep caches (.hypothesis, .schemathesis) in
# the current directory, and `st replay <id>` reads them from there.
(cd "$WORK" && exec timeout --kill-after=10 "$FUZZ_TIMEOUT" "$ST" run "$BASE/openapi.json" \
  --url "$BASE" \
  --header "Authorization: Bearer $TOKEN" \
  --checks "$CHECKS" \
  --phases "$PHASES" \
  --max-examples "$MAX_EXAMPLES" \
  "${seed_args[@]}" \
  --workers 1 \
  --request-timeout 10 \
  --generation-database none \
  --no-color \
  --report junit,ndjson --report-junit-path "$WORK/junit.xml" --report-ndjson-path "$WORK/events.ndjson" \
  --report-dir "$WORK/reports") \
  2>&1 | tee "$WORK/schemathesis.log"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
  echo "fuzz-api: FAIL: schemathesis did not finish within ${FUZZ_TIMEOUT}s" >&2
  exit 1
fi
cases=$(grep -Eo '[0-9]+ generated' "$WORK/schemathesis.log" | tail -n1 | grep -Eo '[0-9]+' || true)
server_errors=$(plain_log | grep -c 'status=5' || true)
panics=$(plain_log | grep -c 'panicked' || true)
echo "fuzz-api: ${cases:-?} test cases generated; server log: ${server_errors} 5xx responses, ${panics} panics;" \
  "schemathesis exit $rc"
if [ "$rc" -eq 0 ] && { [ "$server_errors" -ne 0 ] || [ "$panics" -ne 0 ]; }; then rc=1; fi
if [ "$rc" -ne 0 ]; then
  echo "fuzz-api: FAIL; the curl lines above reproduce each failure (add the bearer token); the run" \
    "again: FUZZ_SEED=$SEED KEEP_LOGS=1 scripts/fuzz-api.sh" >&2
  exit "$rc"
fi
echo "fuzz-api: passed"
