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

# What SAM hands CloudFormation, checked for what API Gateway and Lambda refuse or ignore without an
# error at lint time: translate the template (CodeUri replaced by an S3 URI, as `sam deploy` does
# after uploading) and check the HTTP API's OpenAPI body against API Gateway's route rules (the
# same ones tests/src/apigw.rs enforces on template.yaml itself), that every HttpApi event became a
# route, that the sweeper's EventInvokeConfig exists with no retries, and that the Rules survived.
echo "sam translate: routes, EventInvokeConfig, Rules"
"$VENV/bin/python" - "$TEMPLATE" <<'PY'
import re, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

template = yaml_parse(open(sys.argv[1]).read())
declared = set()
for res in template["Resources"].values():
    if res["Type"] != "AWS::Serverless::Function":
        continue
    res["Properties"]["CodeUri"] = "s3://bucket/key"
    for event in (res["Properties"].get("Events") or {}).values():
        if event["Type"] == "HttpApi":
            declared.add("/" + event["Properties"]["Path"].lstrip("/"))

class NoManagedPolicies:
    def load(self):
        return {}

out = transform(template, {}, NoManagedPolicies())
problems = []
apis = [r for r in out["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
if len(apis) != 1:
    sys.exit(f"expected one HTTP API, found {len(apis)}")
paths = set(apis[0]["Properties"]["Body"]["paths"])
if paths != declared:
    problems.append(f"routes SAM generated {sorted(paths)} != HttpApi events {sorted(declared)}")
variable_at = {}  # parent path -> (variable segment, path)
for path in sorted(paths - {"/$default"}):
    segs = path[1:].split("/")
    for i, seg in enumerate(segs):
        m = re.fullmatch(r"\{([A-Za-z_][A-Za-z0-9_]*)(\+?)\}", seg)
        if seg == "" or (("{" in seg or "}" in seg) and not m):
            problems.append(f"{path}: bad segment {seg!r}")
        if not m:
            continue
        if m.group(2) and i != len(segs) - 1:
            problems.append(f"{path}: greedy variable before the end")
        parent = "/".join(segs[:i])
        other = variable_at.setdefault(parent, (seg, path))
        if other[0] != seg:
            problems.append(f"{path}: conflicting variable on the same hierarchical level as {other[1]} (409)")
default = apis[0]["Properties"]["Body"]["paths"].get("/$default", {})
if not default.get("x-amazon-apigateway-any-method", {}).get("isDefaultRoute"):
    problems.append("/$default is not marked isDefaultRoute")
invoke = [r["Properties"] for r in out["Resources"].values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
if [(p["FunctionName"], p["MaximumRetryAttempts"]) for p in invoke] != [({"Ref": "CrmSweeperFunction"}, 0)]:
    problems.append(f"EventInvokeConfig: {invoke}")
for rule in ["AlarmDestination", "StripeSecretsTogether", "PaymentRedirects"]:
    if rule not in out.get("Rules", {}):
        problems.append(f"Rule {rule} lost in translation")
if problems:
    sys.exit("\n".join(problems))
print(f"sam translate: {len(paths)} routes, one variable name per level; sweeper retries 0; Rules kept")
PY
