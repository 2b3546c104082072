#!/usr/bin/env bash
# Real binaries through the real Lambda runtime interface (part of `make test`).
#
# `cargo lambda watch` emulates the Lambda control plane and runs the debug builds of auth, events,
# bookings and crm-notifier against a fresh table on moto; every step of the scenario below sends an
# events/*.json fixture (placeholders filled in) with `cargo lambda invoke` and checks the
# statusCode of the API Gateway response. The table of steps is the single list of expectations.
#
# Needs moto: run from scripts/test.sh (which sources scripts/moto.sh), or standalone, in which case
# this script starts moto itself. Env knobs: INVOKE_TIMEOUT (s per invoke, default 300: the first
# invoke of each function may compile it), READY_TIMEOUT (s, default 120), KEEP_LOGS=1.
set -euo pipefail
cd "$(dirname "$0")/.."
export VENV=${VENV:-.venv}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
PY="$VENV/bin/python"
CARGO_LAMBDA="$VENV/bin/cargo-lambda"
INVOKE_TIMEOUT=${INVOKE_TIMEOUT:-300}
READY_TIMEOUT=${READY_TIMEOUT:-120}

for tool in "$PY" "$CARGO_LAMBDA"; do
  [ -x "$tool" ] || { echo "invoke-test: missing $tool (run \`make venv\`)" >&2; exit 1; }
done

WORK=$(mktemp -d -t invoke-test.XXXXXX)
WATCH_PID=""
OWN_MOTO=""
cleanup() {
  local rc=$?
  # On failure, keep the watch log as it was when the step failed: stopping watch makes every
  # function's pending `/invocation/next` fail, and those shutdown panics would bury the cause.
  if [ "$rc" -ne 0 ] && [ -f "$WORK/watch.log" ]; then cp "$WORK/watch.log" "$WORK/watch.at-failure.log"; fi
  if [ -n "$WATCH_PID" ] && kill -0 "$WATCH_PID" 2>/dev/null; then
    # watch runs the functions as its children: stop the whole process group it leads.
    kill -- "-$WATCH_PID" 2>/dev/null || kill "$WATCH_PID" 2>/dev/null || true
    wait "$WATCH_PID" 2>/dev/null || true
  fi
  if [ -n "${CRM_PID:-}" ]; then kill "$CRM_PID" 2>/dev/null || true; fi
  if [ -n "$OWN_MOTO" ]; then kill "$MOTO_PID" 2>/dev/null; wait "$MOTO_PID" 2>/dev/null || true; fi
  if [ "$rc" -ne 0 ] && [ -f "$WORK/watch.at-failure.log" ]; then
    echo "---- last lines of the cargo lambda watch log when the step failed ($WORK/watch.log)" >&2
    tail -n 80 "$WORK/watch.at-failure.log" >&2
    echo "---- end of watch log" >&2
  fi
  # The cause last, where a CI log's tail shows it.
  if [ "$rc" -ne 0 ]; then
    echo "invoke-test: FAILED after ${PASSED:-0} passed invocations: ${FAIL_MSG:-exit status $rc}" >&2
  fi
  if [ "$rc" -eq 0 ] && [ -z "${KEEP_LOGS:-}" ]; then rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${AWS_ENDPOINT_URL_DYNAMODB:-}" ]; then
  # Standalone run: moto.sh installs its own EXIT trap; ours (re-installed below) stops it instead.
  source scripts/moto.sh
  OWN_MOTO=1
  trap cleanup EXIT
fi

FAIL_MSG=""
PASSED=0
fail() { FAIL_MSG="$*"; echo "invoke-test: FAIL: $*" >&2; exit 1; }
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ------------------------------------------------------------------ table, build, watch
TABLE="invoke-test-$(date +%s)-$RANDOM"
echo "invoke-test: building auth events bookings crm-notifier crm-sweeper payments admin (debug)"
cargo build -q -p auth -p events -p bookings -p crm-notifier -p crm-sweeper -p payments -p admin
ADMIN="$CARGO_TARGET_DIR/debug/admin"
"$ADMIN" --table "$TABLE" create-table >/dev/null || fail "admin create-table $TABLE"

# A CRM stand-in for the sweeper's step: answers 200 and appends each webhook's id to a file.
CRM_PORT=$(free_port)
"$PY" - "$CRM_PORT" "$WORK/crm-received" >"$WORK/crm.log" 2>&1 <<'PY' &
import http.server, sys
port, out = int(sys.argv[1]), sys.argv[2]
class Crm(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        with open(out, "a") as f:
            f.write(self.headers.get("webhook-id", "") + "\n")
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
http.server.ThreadingHTTPServer(("127.0.0.1", port), Crm).serve_forever()
PY
CRM_PID=$!

PORT=$(free_port)
STRIPE_WEBHOOK_SECRET="whsec_invoke_$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"
JWT_SECRET=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(48))')
# Both ways a function gets a secret: JWT_SECRET as a plain variable (make run, sam local), the
# webhook's signing secret as deployed, the id of a Secrets Manager secret (here on moto) that the
# payments binary reads at init (shared::secrets); the signed webhook step below needs its value.
STRIPE_WEBHOOK_SECRET_ID=$("$PY" - "$STRIPE_WEBHOOK_SECRET" "invoke-test/$(date +%s)-$RANDOM" <<'PY'
import os, sys, boto3
sm = boto3.client("secretsmanager", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or os.environ["AWS_ENDPOINT_URL_DYNAMODB"],
                  region_name=os.environ.get("AWS_REGION", "us-east-1"))
print(sm.create_secret(Name=sys.argv[2], SecretString=sys.argv[1])["ARN"])
PY
) || fail "CreateSecret on moto"
cat >"$WORK/env" <<EOF
TABLE_NAME=$TABLE
JWT_SECRET=$JWT_SECRET
AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true
AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB
AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL:-$AWS_ENDPOINT_URL_DYNAMODB}
AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-testing}
AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-testing}
AWS_REGION=${AWS_REGION:-us-east-1}
AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
AWS_EC2_METADATA_DISABLED=true
RUST_LOG=${RUST_LOG:-info}
AWS_LAMBDA_LOG_FORMAT=JSON
CRM_SWEEP_MIN_AGE_SECONDS=0
CRM_WEBHOOK_URL=http://127.0.0.1:$CRM_PORT/webhooks/bookings
STRIPE_WEBHOOK_SECRET_ID=$STRIPE_WEBHOOK_SECRET_ID
EOF

echo "invoke-test: cargo lambda watch on 127.0.0.1:$PORT (table $TABLE, log $WORK/watch.log)"
# setsid: its own process group, so cleanup() stops watch and every function it started.
# No `--timeout`: watch applies it to every request it serves, including a function's long poll
# of `/invocation/next`. A function left idle longer than that (on a slow machine, while the
# scenario exercises the others) gets a 408 without a request id, lambda_runtime panics ("missing
# lambda-runtime-aws-request-id header") and its next invoke fails. Each invoke is bounded by
# `timeout $INVOKE_TIMEOUT` below instead.
SETSID=$(command -v setsid || true)
$SETSID "$CARGO_LAMBDA" lambda watch --quiet --ignore-changes \
  --invoke-address 127.0.0.1 --invoke-port "$PORT" --env-file "$WORK/env" \
  >"$WORK/watch.log" 2>&1 &
WATCH_PID=$!

deadline=$((SECONDS + READY_TIMEOUT))
until "$PY" - "$PORT" <<'PY' 2>/dev/null; do
import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
PY
  kill -0 "$WATCH_PID" 2>/dev/null || fail "cargo lambda watch exited before listening"
  [ "$SECONDS" -lt "$deadline" ] || fail "cargo lambda watch not listening on port $PORT after ${READY_TIMEOUT}s"
  sleep 0.5
done

# ------------------------------------------------------------------ helpers
STAMP=$(date +%s)$RANDOM
ATT_EMAIL="asha.$STAMP@example.com"      # attendee: books
OTH_EMAIL="omar.$STAMP@example.com"      # another attendee
FAC_EMAIL="ravi.$STAMP@example.com"      # registered as attendee, promoted to facilitator by the admin CLI
SELF_FAC_EMAIL="mina.$STAMP@example.com" # registers as facilitator herself
ADM_EMAIL="eve.$STAMP@example.com"       # promoted to admin by the admin CLI
FUTURE=$("$PY" -c 'import datetime as d; print((d.datetime.now(d.timezone.utc)+d.timedelta(days=30)).strftime("%Y-%m-%dT10:00:00Z"))')
IDEM_KEY="invoke-$STAMP"
NONE=""

# Prints the value at a dotted path of the JSON body of an API Gateway response file.
body_field() {
  "$PY" - "$1" "$2" <<'PY'
import json, sys
resp = json.load(open(sys.argv[1]))
body = resp.get("body") or ""
if resp.get("isBase64Encoded"):
    import base64; body = base64.b64decode(body).decode()
v = json.loads(body) if body else None
for part in sys.argv[2].split("."):
    v = v[int(part)] if isinstance(v, list) else (v or {}).get(part)
print("" if v is None else v)
PY
}

invoke() { # function payload-file output-file
  local rc=0
  timeout "$INVOKE_TIMEOUT" "$CARGO_LAMBDA" lambda invoke "$1" --invoke-address 127.0.0.1 --invoke-port "$PORT" \
    --data-file "$2" --output-format json >"$3" 2>"$3.err" || rc=$?
  if [ "$rc" -ne 0 ]; then
    cat "$3.err" "$3" >&2
    [ "$rc" -eq 124 ] && fail "cargo lambda invoke $1 --data-file $2: no answer within ${INVOKE_TIMEOUT}s"
    fail "cargo lambda invoke $1 --data-file $2 exited $rc: $(tr '\n' ' ' <"$3.err" | head -c 400)"
  fi
}

# step function fixture expected placeholders captures
run_step() {
  local step=$1 fn=$2 fixture=$3 expected=$4 subs=$5 caps=$6
  if [ "$fn" = "admin" ]; then # fixture = subcommand, expected = its argument list (shell vars)
    local args=()
    IFS=',' read -ra parts <<<"$expected"
    for p in "${parts[@]}"; do args+=("${!p:-$p}"); done
    "$ADMIN" --table "$TABLE" "$fixture" "${args[@]}" >"$WORK/$step.out" 2>&1 || { cat "$WORK/$step.out" >&2; fail "$step: admin $fixture ${args[*]}"; }
    printf '  %-32s admin %s %s\n' "$step" "$fixture" "${args[*]}"
    return
  fi
  local src="events/$fixture.json"
  [ -f "$src" ] || fail "$step: missing fixture $src"
  # Defaults, then this step's overrides (VAR=shellvar).
  local P_TOKEN=$NONE P_EMAIL=$ATT_EMAIL P_EVENT_ID=${EVENT_ID:-} P_BOOKING_ID=${BOOKING_ID:-} \
    P_DATETIME=$FUTURE P_IDEMPOTENCY_KEY=$IDEM_KEY P_REFRESH_TOKEN=$NONE
  if [ "$subs" != "-" ]; then
    IFS=',' read -ra pairs <<<"$subs"
    for kv in "${pairs[@]}"; do
      local k=${kv%%=*} v=${kv#*=}
      printf -v "P_$k" '%s' "${!v}"
    done
  fi
  sed -e "s|\${TOKEN}|$P_TOKEN|g" -e "s|\${EMAIL}|$P_EMAIL|g" -e "s|\${EVENT_ID}|$P_EVENT_ID|g" \
      -e "s|\${BOOKING_ID}|$P_BOOKING_ID|g" -e "s|\${DATETIME}|$P_DATETIME|g" \
      -e "s|\${IDEMPOTENCY_KEY}|$P_IDEMPOTENCY_KEY|g" -e "s|\${REFRESH_TOKEN}|$P_REFRESH_TOKEN|g" \
      "$src" >"$WORK/$step.req.json"
  if grep -q '\${' "$WORK/$step.req.json"; then fail "$step: unfilled placeholder in $src"; fi
  invoke "$fn" "$WORK/$step.req.json" "$WORK/$step.resp.json"
  local status
  status=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("statusCode"))' "$WORK/$step.resp.json") ||
    { cat "$WORK/$step.resp.json" >&2; fail "$step: response is not an API Gateway response"; }
  if [[ "|$expected|" != *"|$status|"* ]]; then
    echo "---- response of $step ($fn, $src):" >&2
    head -c 2000 "$WORK/$step.resp.json" >&2; echo >&2
    fail "$step: $fn $fixture answered $status, expected $expected: $(head -c 400 "$WORK/$step.resp.json" | tr -s "\n " " ")"
  fi
  if [ "$caps" != "-" ]; then
    IFS=',' read -ra pairs <<<"$caps"
    for kv in "${pairs[@]}"; do
      local var=${kv%%=*} path=${kv#*=} value
      value=$(body_field "$WORK/$step.resp.json" "$path")
      [ -n "$value" ] || fail "$step: no $path in the response body"
      printf -v "$var" '%s' "$value"
    done
  fi
  PASSED=$((PASSED + 1))
  printf '  %-32s %-9s %-36s %s\n' "$step" "$fn" "$fixture" "$status"
}

# ------------------------------------------------------------------ the scenario (expectations)
# step                        function  fixture                              expected  placeholders                      captures
# (placeholders: VAR=shell variable; defaults TOKEN and REFRESH_TOKEN empty, EMAIL=ATT_EMAIL, EVENT_ID, BOOKING_ID,
#  DATETIME=30 days ahead. admin rows: fixture = CLI subcommand, expected = its arguments.)
SCENARIO=$(cat <<'TABLE'
health                        auth      health                               200       -                                 -
health-slash                  auth      health-trailing-slash                200       -                                 -
openapi                       auth      auth-openapi                         200       -                                 -
unknown-path                  auth      auth-unknown-path                    404       -                                 -
register                      auth      auth-register                        201       -                                 ATT_ID=id
register-again                auth      auth-register                        409       -                                 -
register-other                auth      auth-register                        201       EMAIL=OTH_EMAIL                   -
register-fac                  auth      auth-register                        201       EMAIL=FAC_EMAIL                   -
register-admin-user           auth      auth-register                        201       EMAIL=ADM_EMAIL                   -
register-self-facilitator     auth      auth-register-facilitator            201       EMAIL=SELF_FAC_EMAIL              -
register-as-admin             auth      auth-register-admin                  403|400   EMAIL=ADM_EMAIL                   -
register-bad-email            auth      auth-register-bad-email              400       -                                 -
register-short-password       auth      auth-register-short-password         400       EMAIL=OTH_EMAIL                   -
register-bad-json             auth      auth-register-bad-json               400       -                                 -
register-unknown-field        auth      auth-register-unknown-field          400       -                                 -
register-too-large            auth      auth-register-too-large              413       -                                 -
promote-facilitator           admin     promote                              FAC_EMAIL,facilitator -                     -
promote-admin                 admin     promote                              ADM_EMAIL,admin -                           -
login                         auth      auth-login                           200       -                                 ATT_TOKEN=access_token,ATT_REFRESH=refresh_token
login-other                   auth      auth-login                           200       EMAIL=OTH_EMAIL                   OTH_TOKEN=access_token
login-fac                     auth      auth-login                           200       EMAIL=FAC_EMAIL                   FAC_TOKEN=access_token
login-admin                   auth      auth-login                           200       EMAIL=ADM_EMAIL                   ADM_TOKEN=access_token
login-wrong-password          auth      auth-login-wrong-password            401       -                                 -
login-unknown-email           auth      auth-login-unknown-email             401       -                                 -
me                            auth      auth-me                              200       TOKEN=ATT_TOKEN                   -
me-no-token                   auth      auth-me-no-token                     401       -                                 -
me-bad-token                  auth      auth-me-bad-token                    401       -                                 -
me-wrong-method               auth      auth-me-method-not-allowed           405       TOKEN=ATT_TOKEN                   -
refresh                       auth      auth-refresh                         200       REFRESH_TOKEN=ATT_REFRESH         ATT_REFRESH2=refresh_token
refresh-spent                 auth      auth-refresh                         401       REFRESH_TOKEN=ATT_REFRESH         -
refresh-malformed             auth      auth-refresh                         401       -                                 -
logout                        auth      auth-logout                          200       REFRESH_TOKEN=ATT_REFRESH2        -
logout-again                  auth      auth-logout                          200       REFRESH_TOKEN=ATT_REFRESH2        -
password-no-token             auth      auth-password                        401       -                                 -
password                      auth      auth-password                        200       TOKEN=OTH_TOKEN                   -
password-again                auth      auth-password                        401       TOKEN=OTH_TOKEN                   -
create-event-as-attendee      events    events-create                        403       TOKEN=ATT_TOKEN                   -
create-event-no-token         events    events-create-no-token               401       -                                 -
create-event                  events    events-create                        201       TOKEN=FAC_TOKEN                   EVENT_ID=id
create-event-original-body    events    events-create-original               201       TOKEN=FAC_TOKEN                   PAST_EVENT_ID=id
create-event-invalid          events    events-create-invalid                400       TOKEN=FAC_TOKEN                   -
create-event-bad-json         events    events-create-bad-json               400       TOKEN=FAC_TOKEN                   -
list-events                   events    events-list                          200       -                                 -
list-events-no-slash          events    events-list-no-slash                 200       -                                 -
list-events-range             events    events-list-range                    200       -                                 -
filter-events                 events    events-filter                        200       -                                 FILTER_FIRST=0.id
filter-bad-rating             events    events-filter-bad-rating             400       -                                 -
filter-rating-out-of-range    events    events-filter-rating-out-of-range    400       -                                 -
filter-unknown-param          events    events-filter-unknown-param          400       -                                 -
get-event                     events    events-get                           200       -                                 -
get-unknown-event             events    events-get-unknown                   404       -                                 -
get-event-stage-prod          events    events-get-stage-prod                200       -                                 -
patch-event                   events    events-update                        200       TOKEN=FAC_TOKEN                   -
put-event                     events    events-put                           200       TOKEN=FAC_TOKEN                   -
patch-read-only-field         events    events-update-read-only              400       TOKEN=FAC_TOKEN                   -
patch-event-not-owner         events    events-update                        403       TOKEN=ATT_TOKEN                   -
events-wrong-method           events    events-method-not-allowed            405       TOKEN=FAC_TOKEN                   -
book                          bookings  bookings-create                      201       TOKEN=ATT_TOKEN                   BOOKING_ID=id
book-again                    bookings  bookings-create                      409       TOKEN=ATT_TOKEN                   -
book-idempotent               bookings  bookings-create-idempotent           201       TOKEN=OTH_TOKEN                   OTH_BOOKING_ID=id
book-idempotent-retry         bookings  bookings-create-idempotent           201       TOKEN=OTH_TOKEN                   RETRY_BOOKING_ID=id
book-unknown-event            bookings  bookings-create-unknown-event        404       TOKEN=ATT_TOKEN                   -
book-no-token                 bookings  bookings-create-no-token             401       -                                 -
book-invalid                  bookings  bookings-create-invalid              400       TOKEN=ATT_TOKEN                   -
book-started-event            bookings  bookings-create                      409       TOKEN=ATT_TOKEN,EVENT_ID=PAST_EVENT_ID -
capacity-below-booked         events    events-update-capacity-below-booked  409       TOKEN=FAC_TOKEN                   -
delete-event-with-bookings    events    events-delete                        409       TOKEN=FAC_TOKEN                   -
event-bookings                bookings  events-bookings                      200       TOKEN=FAC_TOKEN                   -
event-bookings-slash          bookings  events-bookings-trailing-slash       200       TOKEN=ADM_TOKEN                   -
event-bookings-not-owner      bookings  events-bookings                      403       TOKEN=ATT_TOKEN                   -
waitlist-seats-free           events    events-waitlist-join                 409       TOKEN=ADM_TOKEN                   -
waitlist-join-no-token        events    events-waitlist-join                 401       -                                 -
waitlist-leave-not-waiting    events    events-waitlist-leave                404       TOKEN=ATT_TOKEN                   -
waitlist-list                 events    events-waitlist                      200       TOKEN=FAC_TOKEN                   -
waitlist-list-not-owner       events    events-waitlist                      403       TOKEN=ATT_TOKEN                   -
list-bookings                 bookings  bookings-list                        200       TOKEN=ATT_TOKEN                   LISTED_BOOKING_ID=upcoming.0.id
list-cancelled-bookings       bookings  bookings-list-cancelled              200       TOKEN=ATT_TOKEN                   -
get-booking                   bookings  bookings-get                         200       TOKEN=ATT_TOKEN                   -
get-booking-other-user        bookings  bookings-get                         404       TOKEN=OTH_TOKEN                   -
get-booking-as-admin          bookings  bookings-get                         200       TOKEN=ADM_TOKEN                   -
get-unknown-booking           bookings  bookings-get-unknown                 404       TOKEN=ATT_TOKEN                   -
get-calendar                  bookings  bookings-calendar                    200       TOKEN=ATT_TOKEN                   -
get-calendar-other-user       bookings  bookings-calendar                    404       TOKEN=OTH_TOKEN                   -
get-calendar-as-admin         bookings  bookings-calendar                    200       TOKEN=ADM_TOKEN                   -
bookings-wrong-method         bookings  bookings-method-not-allowed          405       TOKEN=ATT_TOKEN                   -
cancel-booking                bookings  bookings-cancel                      200       TOKEN=ATT_TOKEN                   CANCELLED_STATUS=status
cancel-booking-again          bookings  bookings-cancel                      409       TOKEN=ATT_TOKEN                   -
delete-past-event             events    events-delete                        200       TOKEN=FAC_TOKEN,EVENT_ID=PAST_EVENT_ID -
get-deleted-event             events    events-get                           404       EVENT_ID=PAST_EVENT_ID            -
TABLE
)

echo "invoke-test: scenario (step / function / fixture / status)"
while read -r step fn fixture expected subs caps; do
  [ -z "$step" ] || [ "${step:0:1}" = "#" ] && continue
  run_step "$step" "$fn" "$fixture" "$expected" "$subs" "$caps"
done <<<"$SCENARIO"

# Cross-step checks the status codes alone do not show.
[ "$RETRY_BOOKING_ID" = "$OTH_BOOKING_ID" ] || fail "idempotent retry booked again ($RETRY_BOOKING_ID != $OTH_BOOKING_ID)"
[ "$LISTED_BOOKING_ID" = "$BOOKING_ID" ] || fail "GET /bookings/ upcoming[0] is $LISTED_BOOKING_ID, expected $BOOKING_ID"
[ "$CANCELLED_STATUS" = "cancelled" ] || fail "cancelled booking has status $CANCELLED_STATUS"
# The calendar file as the runtime sends it back to API Gateway: plain text (API Gateway decodes
# nothing unless isBase64Encoded), its own Content-Type, CRLF lines, the booking's UID.
"$PY" - "$WORK/get-calendar.resp.json" "$BOOKING_ID" <<'PY' || fail "get-calendar: not the booking's calendar file as plain text"
import json, sys
resp = json.load(open(sys.argv[1]))
headers = {k.lower(): v for k, v in (resp.get("headers") or {}).items()}
body = resp.get("body") or ""
assert resp.get("isBase64Encoded") is False, resp.get("isBase64Encoded")
assert headers.get("content-type") == "text/calendar; charset=utf-8", headers
assert body.startswith("BEGIN:VCALENDAR\r\n") and body.endswith("END:VCALENDAR\r\n"), body[:80]
assert f"\r\nUID:{sys.argv[2]}@ahoum\r\n" in body, body
PY
[ "$FILTER_FIRST" = "$PAST_EVENT_ID" ] || fail "filter type=yoga&rating=4.5: first is $FILTER_FIRST, expected the earliest ($PAST_EVENT_ID)"

# ------------------------------------------------------------------ stream consumer
if [ -f events/stream-other-entity.json ]; then
  invoke crm-notifier events/stream-other-entity.json "$WORK/stream-other-entity.resp.json"
  "$PY" - "$WORK/stream-other-entity.resp.json" <<'PY' || fail "crm-notifier reported failures for a non-booking record"
import json, sys
resp = json.load(open(sys.argv[1]))
failures = resp.get("batchItemFailures")
assert failures == [], f"batchItemFailures = {failures!r}"
PY
  PASSED=$((PASSED + 1))
  printf '  %-32s %-9s %-36s %s\n' "stream-other-entity" "crm-notifier" "stream-other-entity" "batchItemFailures=[]"
else
  echo "  (events/stream-other-entity.json not found: crm-notifier not invoked)"
fi

# ------------------------------------------------------------------ sweeper
# The schedule's event, through the real crm-sweeper binary. No stream runs under `cargo lambda
# watch`, so every booking of the scenario still has its delivery record pending: with
# CRM_SWEEP_MIN_AGE_SECONDS=0 the sweep must find them through the index (one Query per day
# bucket) and deliver each to the CRM stand-in once; a second sweep finds nothing left to send.
invoke crm-sweeper events/scheduled-sweep.json "$WORK/scheduled-sweep.resp.json"
invoke crm-sweeper events/scheduled-sweep.json "$WORK/scheduled-sweep-again.resp.json"
"$PY" - "$WORK/scheduled-sweep.resp.json" "$WORK/scheduled-sweep-again.resp.json" "$WORK/crm-received" \
  "$BOOKING_ID" "$OTH_BOOKING_ID" <<'PY' || fail "crm-sweeper did not deliver what the scenario left, once"
import json, sys
first, again = (json.load(open(p)) for p in sys.argv[1:3])
received = open(sys.argv[3]).read().split()
assert first["buckets"] >= 14 and first["queries"] >= first["buckets"], first
assert first["delivered"] >= 2 and first["delivered"] == len(received), (first, received)
assert set(sys.argv[4:6]) <= set(received), (sys.argv[4:6], received)
assert len(set(received)) == len(received), f"a booking was delivered twice: {received}"
assert again["found"] == 0 and again["delivered"] == 0, again
PY
PASSED=$((PASSED + 2))
printf '  %-32s %-9s %-36s %s\n' "scheduled-sweep (twice)" "crm-sweeper" "scheduled-sweep" "each booking delivered once"

# ------------------------------------------------------------------ Stripe webhook
# events/payments-webhook.json (a paid checkout.session.completed) signed now, as Stripe signs:
# `t=<unix>,v1=<hex HMAC-SHA256 of "{t}.{body}">` keyed with the webhook secret, valid for 300 s,
# so the fixture cannot carry a signature. For a booking this table does not have → 200 (logged,
# nothing changed); the same body signed with another secret → 400 invalid_signature.
for wh in "unknown-booking $STRIPE_WEBHOOK_SECRET 200 none" "bad-signature whsec_not_this_one 400 invalid_signature"; do
  read -r name secret expected want <<<"$wh"
  "$PY" - events/payments-webhook.json "$secret" >"$WORK/payments-$name.req.json" <<'PY'
import hashlib, hmac, json, sys, time
text = open(sys.argv[1]).read().replace("${BOOKING_ID}", "01UNKNOWNBOOKING0000000000")
req = json.loads(text)
t = int(time.time())
v1 = hmac.new(sys.argv[2].encode(), f"{t}.{req['body']}".encode(), hashlib.sha256).hexdigest()
req["headers"]["stripe-signature"] = f"t={t},v1={v1}"
json.dump(req, sys.stdout)
PY
  invoke payments "$WORK/payments-$name.req.json" "$WORK/payments-$name.resp.json"
  status=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("statusCode"))' "$WORK/payments-$name.resp.json")
  got=$(body_field "$WORK/payments-$name.resp.json" effect)
  [ "$expected" = 200 ] || got=$(body_field "$WORK/payments-$name.resp.json" error.code)
  if [ "$status" != "$expected" ] || [ "$got" != "$want" ]; then
    head -c 2000 "$WORK/payments-$name.resp.json" >&2; echo >&2
    fail "payments-webhook ($name): $status $got, expected $expected $want"
  fi
  PASSED=$((PASSED + 1))
  printf '  %-32s %-9s %-36s %s\n' "payments-webhook-$name" "payments" "payments-webhook (signed now)" "$status"
done

echo "invoke-test: $PASSED invocations passed"
