#!/usr/bin/env bash
# `make lint` (and part of `make test`): template.yaml must pass `sam validate --lint` and cfn-lint
# with no findings. Needs only the venv (no AWS account, no Docker).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
TEMPLATE=${TEMPLATE:-template.yaml}
# SAM insists on a region even for offline validation.
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-${AWS_REGION:-us-east-1}}
export SAM_CLI_TELEMETRY=0

for tool in sam cfn-lint; do
  [ -x "$VENV/bin/$tool" ] || { echo "missing $VENV/bin/$tool: run \`make venv\`" >&2; exit 1; }
done

echo "sam validate --lint --template $TEMPLATE"
"$VENV/bin/sam" validate --lint --template "$TEMPLATE"

echo "cfn-lint $TEMPLATE"
"$VENV/bin/cfn-lint" "$TEMPLATE"
echo "cfn-lint: no findings"
