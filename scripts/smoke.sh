#!/usr/bin/env bash
# scripts/smoke.sh API_URL — the contract end to end against a running API: every route in both
# slash forms, then register → login → create an event (as a facilitator) → book → history → the
# booking's calendar file → the event's bookings → cancel → refresh, reuse, logout, password
# change, and removal of what it created. One PASS/FAIL line per step; exits 1 if any step failed.
#
#   scripts/smoke.sh https://abc123.execute-api.eu-west-1.amazonaws.com    # deployed (ApiUrl output)
#   scripts/smoke.sh http://127.0.0.1:3000                                 # make run
#   make smoke-local                                # its own local server (part of make test)
#
# Needs only bash, curl and python3 (standard library). Against a deployed stack it leaves two
# user accounts behind (smoke-<time>-<n>@example.com; the API cannot delete users), and the two
# events it creates are deleted at the end. SMOKE_TIMEOUT (s per request, default 30) covers cold
# starts.
set -uo pipefail

API=${1:-}
[ -n "$API" ] || { echo "usage: scripts/smoke.sh API_URL" >&2; exit 2; }
API=${API%/}
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "smoke: $tool is required" >&2; exit 2; }
done
TIMEOUT=${SMOKE_TIMEOUT:-30}
WORK=$(mktemp -d -t smoke.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

PASSED=0
FAILED=0
STATUS=""
BODY="$WORK/body"

# req METHOD PATH [TOKEN] [JSON]: sets STATUS, leaves the response body in $BODY.
req() {
  local method=$1 path=$2 token=${3:-} data=${4:-}
  : >"$BODY"
  local args=(-sS -o "$BODY" -w '%{http_code}' --max-time "$TIMEOUT" -X "$method" -H 'accept: application/json')
  [ -n "$token" ] && args+=(-H "authorization: Bearer $token")
  [ -n "$data" ] && args+=(-H 'content-type: application/json' --data-binary "$data")
  STATUS=$(curl "${args[@]}" "$API$path" 2>"$WORK/curl.err") || STATUS="000 ($(tr -d '\n' <"$WORK/curl.err"))"
}

# json EXPR: evaluates a Python expression over the last body (`d`); prints "" when it fails.
json() {
  python3 - "$BODY" "$1" <<'PY' 2>/dev/null || true
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except ValueError:
    d = None
v = eval(sys.argv[2], {"d": d})
print("" if v is None else (str(v).lower() if isinstance(v, bool) else v))
PY
}

pass() { PASSED=$((PASSED + 1)); printf 'PASS  %s\n' "$1"; }
fail() {
  FAILED=$((FAILED + 1))
  printf 'FAIL  %s: %s; body: %s\n' "$1" "$2" "$(head -c 300 "$BODY" 2>/dev/null | tr '\n' ' ')"
}

# step NAME WANT_STATUS [PY_CONDITION [WHAT]]: one line for the last request.
step() {
  local name=$1 want=$2 cond=${3:-} what=${4:-}
  if [ "$STATUS" != "$want" ]; then
    fail "$name" "status $STATUS, want $want"
  elif [ -n "$cond" ] && [ "$(json "$cond")" != "true" ]; then
    fail "$name" "status $STATUS but ${what:-$cond} does not hold"
  else
    pass "$name"
  fi
}

# Our JSON error shape, not API Gateway's {"message":"Not Found"}: proves a function answered.
is_error() { echo "isinstance(d, dict) and d.get('error', {}).get('code') == '$1'"; }

echo "smoke: $API"

# ---------------------------------------------------------------- every route, both slash forms
for p in /health /health/; do
  req GET "$p"; step "GET $p" 200 "d == {'status': 'ok'}" 'body {"status":"ok"}'
done
for p in /openapi.json /openapi.json/; do
  req GET "$p"; step "GET $p" 200 "str(d.get('openapi', '')).startswith('3.')" "an OpenAPI 3 document"
done
for p in /events /events/ '/events/filter?type=yoga' '/events/filter/?type=yoga&rating=0'; do
  req GET "$p"; step "GET $p" 200 "isinstance(d, list)" "a JSON array"
done
for p in /auth/me /auth/me/ /bookings /bookings/; do
  req GET "$p"; step "GET $p without a token" 401 "$(is_error unauthorized)" "error code unauthorized"
done
for p in /auth/refresh /auth/refresh/ /auth/logout /auth/logout/; do
  req POST "$p" '' '{"refresh_token":"not-a-token"}'; step "POST $p (malformed token)" 401 "$(is_error unauthorized)" "error code unauthorized"
done
for p in /auth/password /auth/password/; do
  req POST "$p" '' '{}'; step "POST $p without a token" 401 "$(is_error unauthorized)" "error code unauthorized"
done
req GET /no/such/path; step "GET /no/such/path (\$default route)" 404 "$(is_error not_found)" "error code not_found"

# ---------------------------------------------------------------- accounts
STAMP="$(date +%s)-$RANDOM"
ATT_EMAIL="smoke-$STAMP-attendee@example.com"
FAC_EMAIL="smoke-$STAMP-facilitator@example.com"
PASSWORD="smoke-password-$RANDOM$RANDOM"

req POST /auth/register '' "{\"name\":\"Smoke Attendee\",\"email\":\"$ATT_EMAIL\",\"password\":\"$PASSWORD\"}"
step "POST /auth/register (attendee)" 201 "d['role'] == 'attendee'" "role attendee"
req POST /auth/register/ '' "{\"name\":\"Smoke Facilitator\",\"email\":\"$FAC_EMAIL\",\"password\":\"$PASSWORD\",\"role\":\"facilitator\"}"
step "POST /auth/register/ (facilitator)" 201 "d['role'] == 'facilitator'" "role facilitator"

req POST /auth/login '' "{\"email\":\"$ATT_EMAIL\",\"password\":\"$PASSWORD\"}"
step "POST /auth/login (attendee)" 200 "d['token_type'] == 'Bearer' and len(d['access_token']) > 20 and len(d['refresh_token']) > 43" "a bearer token and a refresh token"
ATT=$(json "d['access_token']")
ATT_REFRESH=$(json "d['refresh_token']")
req POST /auth/login/ '' "{\"email\":\"$FAC_EMAIL\",\"password\":\"$PASSWORD\"}"
step "POST /auth/login/ (facilitator)" 200 "d['token_type'] == 'Bearer' and len(d['access_token']) > 20" "a bearer token"
FAC=$(json "d['access_token']")

req GET /auth/me "$ATT"; step "GET /auth/me" 200 "d['email'] == '$ATT_EMAIL'" "the attendee's account"
req GET /auth/me/ "$FAC"; step "GET /auth/me/" 200 "d['email'] == '$FAC_EMAIL'" "the facilitator's account"

# ---------------------------------------------------------------- events
WHEN=$(python3 -c 'import datetime as d; print((d.datetime.now(d.timezone.utc) + d.timedelta(days=30)).strftime("%Y-%m-%dT10:00:00Z"))')
EVENT_BODY="{\"title\":\"Smoke Yoga $STAMP\",\"type\":\"Yoga\",\"datetime\":\"$WHEN\",\"capacity\":5,\"rating\":4.5}"
req POST /events "$ATT" "$EVENT_BODY"
step "POST /events as an attendee" 403 "$(is_error forbidden)" "error code forbidden"
req POST /events/ "$FAC" "$EVENT_BODY"
step "POST /events/ (facilitator)" 201 "d['seats_left'] == 5" "an event with 5 seats left"
EVENT=$(json "d['id']")
req POST /events "$FAC" "{\"title\":\"Smoke spare $STAMP\",\"type\":\"Yoga\",\"datetime\":\"$WHEN\"}"
step "POST /events (facilitator)" 201 "bool(d['id'])" "an event id"
SPARE=$(json "d['id']")

req GET "/events/$EVENT"; step "GET /events/{id}" 200 "d['id'] == '$EVENT'" "the event"
req GET "/events/$EVENT/"; step "GET /events/{id}/" 200 "d['id'] == '$EVENT'" "the event"
req PATCH "/events/$EVENT/" "$FAC" '{"rating": 4.8}'
step "PATCH /events/{id}/ (owner)" 200 "d['rating'] == 4.8" "rating 4.8"

# ---------------------------------------------------------------- bookings
req POST /bookings/ "$ATT" "{\"event_id\":\"$EVENT\"}"
step "POST /bookings/ (book)" 201 "d['status'] == 'confirmed' and d['event_id'] == '$EVENT'" "a confirmed booking"
BOOKING=$(json "d['id']")
req POST /bookings "$ATT" "{\"event_id\":\"$EVENT\"}"
step "POST /bookings again" 409 "$(is_error already_booked)" "error code already_booked"

req GET "/bookings/$BOOKING" "$ATT"; step "GET /bookings/{id}" 200 "d['id'] == '$BOOKING'" "the booking"
req GET "/bookings/$BOOKING/" "$ATT"; step "GET /bookings/{id}/" 200 "d['id'] == '$BOOKING'" "the booking"
# calendar_step NAME WANT: the last body is the booking's calendar file (CRLF lines) and holds WANT.
calendar_step() {
  if [ "$STATUS" = 200 ] && grep -q "^UID:$BOOKING@ahoum"$'\r$' "$BODY" && grep -q "^$2"$'\r$' "$BODY"; then
    pass "$1"
  else
    fail "$1" "status $STATUS, want 200 with UID:$BOOKING@ahoum and $2 on CRLF lines"
  fi
}
for slash in '' /; do
  req GET "/bookings/$BOOKING/calendar.ics$slash" "$ATT"
  calendar_step "GET /bookings/{id}/calendar.ics$slash" "STATUS:CONFIRMED"
done
for p in /bookings /bookings/; do
  req GET "$p" "$ATT"
  step "GET $p (history)" 200 "[b['id'] for b in d['upcoming']] == ['$BOOKING']" "upcoming holds the booking"
done
for slash in '' /; do
  req GET "/events/$EVENT/bookings$slash" "$FAC"
  step "GET /events/{id}/bookings$slash (owner)" 200 "[b['id'] for b in d] == ['$BOOKING']" "the event's one booking"
done
req GET "/events/$EVENT/bookings" "$ATT"
step "GET /events/{id}/bookings as the attendee" 403 "$(is_error forbidden)" "error code forbidden"
req GET "/events/$EVENT" ; step "GET /events/{id} (a seat taken)" 200 "d['seats_left'] == 4" "4 seats left"

req DELETE "/bookings/$BOOKING" "$ATT"; step "DELETE /bookings/{id} (cancel)" 200 "d['status'] == 'cancelled'" "status cancelled"
req DELETE "/bookings/$BOOKING/" "$ATT"; step "DELETE /bookings/{id}/ again" 409 "$(is_error already_cancelled)" "error code already_cancelled"
req GET "/bookings/$BOOKING/calendar.ics" "$ATT"
calendar_step "GET /bookings/{id}/calendar.ics (cancelled)" "STATUS:CANCELLED"
req GET '/bookings/?status=cancelled' "$ATT"
step "GET /bookings/?status=cancelled" 200 "'$BOOKING' in [b['id'] for b in d['upcoming'] + d['past']]" "the cancelled booking listed"
req GET "/events/$EVENT/" ; step "GET /events/{id}/ (seat freed)" 200 "d['seats_left'] == 5" "5 seats left"

# ---------------------------------------------------------------- sessions
req POST /auth/refresh '' "{\"refresh_token\":\"$ATT_REFRESH\"}"
step "POST /auth/refresh" 200 "len(d['access_token']) > 20 and d['refresh_token'] != '$ATT_REFRESH'" "new access and refresh tokens"
NEXT_REFRESH=$(json "d['refresh_token']")
req POST /auth/refresh/ '' "{\"refresh_token\":\"$ATT_REFRESH\"}"
step "POST /auth/refresh/ (spent token)" 401 "$(is_error unauthorized)" "error code unauthorized"
req POST /auth/refresh '' "{\"refresh_token\":\"$NEXT_REFRESH\"}"
step "POST /auth/refresh (its session revoked by the reuse)" 401 "$(is_error unauthorized)" "error code unauthorized"
req POST /auth/logout '' "{\"refresh_token\":\"$NEXT_REFRESH\"}"
step "POST /auth/logout" 200 "d == {'msg': 'Logged out'}" 'body {"msg":"Logged out"}'
req POST /auth/password "$ATT" "{\"current_password\":\"wrong-$PASSWORD\",\"new_password\":\"new-$PASSWORD\"}"
step "POST /auth/password (wrong current)" 401 "$(is_error invalid_credentials)" "error code invalid_credentials"
req POST /auth/password/ "$ATT" "{\"current_password\":\"$PASSWORD\",\"new_password\":\"new-$PASSWORD\"}"
step "POST /auth/password/" 200 "d == {'msg': 'Password changed'}" 'body {"msg":"Password changed"}'
req POST /auth/login '' "{\"email\":\"$ATT_EMAIL\",\"password\":\"$PASSWORD\"}"
step "POST /auth/login (old password)" 401 "$(is_error invalid_credentials)" "error code invalid_credentials"
req POST /auth/login '' "{\"email\":\"$ATT_EMAIL\",\"password\":\"new-$PASSWORD\"}"
step "POST /auth/login (new password)" 200 "len(d['refresh_token']) > 43" "a refresh token"

# ---------------------------------------------------------------- clean up
req DELETE "/events/$SPARE/" "$FAC"; step "DELETE /events/{id}/" 200 "'deleted' in d['msg']" "the deletion message"
req DELETE "/events/$EVENT" "$FAC"; step "DELETE /events/{id}" 200 "'deleted' in d['msg']" "the deletion message"
req GET "/events/$EVENT"; step "GET /events/{id} (deleted)" 404 "$(is_error not_found)" "error code not_found"

echo "smoke: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
