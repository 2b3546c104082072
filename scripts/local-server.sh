#!/usr/bin/env bash
# The local server (debug build, embedded store, no CRM webhook) on a free loopback port, for the
# scripts that test against a running API. Two ways to use it:
#
#   scripts/local-server.sh CMD [ARGS...]   start it, wait for /health, run CMD ARGS... URL, stop it;
#                                           exits with CMD's status (`make smoke-local` runs
#                                           `scripts/local-server.sh scripts/smoke.sh`)
#   source scripts/local-server.sh          just define the functions below (scripts/fuzz-api.sh):
#     local_server_start LOG [NAME=VALUE...]  build, start; NAME=VALUE pairs are added to (and
#                                             override) its environment; sets LOCAL_SERVER_PID,
#                                             LOCAL_SERVER_PORT, LOCAL_SERVER_URL, LOCAL_SERVER_LOG
#     local_server_wait [SECONDS]             until GET /health is 200 (default 30 s); fails, with
#                                             the log's tail, if the process exits or time runs out
#     local_server_stop                       stop it and wait for it; safe to call twice (EXIT trap)
#
# Needs cargo, python3 (a free port, a random JWT secret) and curl. CARGO_TARGET_DIR defaults to
# ./target, as for cargo itself.

LOCAL_SERVER_PID=""

local_server_start() {
  local log=${1:?local_server_start LOG [NAME=VALUE...]}
  shift
  local target=${CARGO_TARGET_DIR:-$PWD/target}
  LOCAL_SERVER_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  LOCAL_SERVER_URL="http://127.0.0.1:$LOCAL_SERVER_PORT"
  LOCAL_SERVER_LOG=$log
  echo "local-server: building (debug)"
  cargo build -q -p local-server || return 1
  # Embedded store (no TABLE_NAME), no CRM webhook; a fresh 48-character HS256 key per run.
  env -u TABLE_NAME -u CRM_WEBHOOK_URL -u CRM_WEBHOOK_SECRET \
    PORT="$LOCAL_SERVER_PORT" \
    JWT_SECRET="$(python3 -c 'import secrets; print(secrets.token_hex(24))')" \
    RUST_LOG="${RUST_LOG:-info}" NO_COLOR=1 \
    "$@" \
    "$target/debug/local-server" >"$log" 2>&1 &
  LOCAL_SERVER_PID=$!
  echo "local-server: pid $LOCAL_SERVER_PID on $LOCAL_SERVER_URL (log $log)"
}

local_server_wait() {
  local deadline=$((SECONDS + ${1:-30}))
  until curl -fsS -o /dev/null --max-time 2 "$LOCAL_SERVER_URL/health" 2>/dev/null; do
    if ! kill -0 "$LOCAL_SERVER_PID" 2>/dev/null; then
      echo "local-server: exited before /health answered; its log:" >&2
      tail -n 40 "$LOCAL_SERVER_LOG" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "local-server: /health did not answer within ${1:-30} s; its log:" >&2
      tail -n 40 "$LOCAL_SERVER_LOG" >&2
      return 1
    fi
    sleep 0.1
  done
}

local_server_stop() {
  if [ -n "$LOCAL_SERVER_PID" ] && kill -0 "$LOCAL_SERVER_PID" 2>/dev/null; then
    kill "$LOCAL_SERVER_PID" 2>/dev/null || true
    wait "$LOCAL_SERVER_PID" 2>/dev/null || true
  fi
  LOCAL_SERVER_PID=""
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  cd "$(dirname "$0")/.."
  [ $# -ge 1 ] || { echo "usage: scripts/local-server.sh CMD [ARGS...]  (runs CMD ARGS... URL)" >&2; exit 2; }
  work=$(mktemp -d -t local-server.XXXXXX)
  finish() {
    local rc=$?
    local_server_stop
    if [ "$rc" -ne 0 ]; then
      echo "---- last lines of the local-server log ($work/server.log)" >&2
      tail -n 40 "$work/server.log" >&2 || true
    elif [ -z "${KEEP_LOGS:-}" ]; then
      rm -rf "$work"
    fi
    exit "$rc"
  }
  trap finish EXIT
  trap 'exit 130' INT TERM
  local_server_start "$work/server.log"
  local_server_wait
  "$@" "$LOCAL_SERVER_URL"
fi
