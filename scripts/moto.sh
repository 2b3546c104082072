#!/usr/bin/env bash
# Source this file: starts moto_server on a free loopback port, exports the AWS variables the SDK
# reads, and stops the server when the sourcing shell exits (success or failure).
VENV=${VENV:-.venv}
MOTO_PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MOTO_LOG=${MOTO_LOG:-$(mktemp -t moto.XXXXXX.log)}
"$VENV/bin/python" "$(dirname "${BASH_SOURCE[0]}")/moto_server.py" 127.0.0.1 "$MOTO_PORT" >"$MOTO_LOG" 2>&1 &
MOTO_PID=$!
trap 'rc=$?; kill $MOTO_PID 2>/dev/null; wait $MOTO_PID 2>/dev/null || true; exit $rc' EXIT
for _ in $(seq 1 100); do
  if "$VENV/bin/python" - "$MOTO_PORT" <<'PY' 2>/dev/null; then break; fi
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1)
PY
  sleep 0.1
done
kill -0 "$MOTO_PID" 2>/dev/null || { echo "moto_server failed to start:"; cat "$MOTO_LOG"; exit 1; }
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$MOTO_PORT"
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
echo "moto_server pid $MOTO_PID on $AWS_ENDPOINT_URL_DYNAMODB (log: $MOTO_LOG)"
