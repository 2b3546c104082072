#!/usr/bin/env python3
"""Writes extract.json: the request-body schemas of the Stripe operations this service calls, from
Stripe's published OpenAPI description (stripe/openapi, openapi/spec3.json), with every
`$ref` they use inlined. Not run in CI; run by hand when Stripe's API version moves:

    python3 extract.py path/to/spec3.json > extract.json
"""
import json
import sys

OPERATIONS = {
    "PostCheckoutSessions": ("/v1/checkout/sessions", "post"),
    "GetCheckoutSessionsSession": ("/v1/checkout/sessions/{session}", "get"),
    "PostCheckoutSessionsSessionExpire": ("/v1/checkout/sessions/{session}/expire", "post"),
    "PostRefunds": ("/v1/refunds", "post"),
}
# Documentation only: the stand-in walks types, properties, items, enums, maxLength and anyOf.
DROP = {"description", "title", "x-stripeBypassValidation", "x-expansionResources"}


def inline(node, spec, seen=()):
    if isinstance(node, dict):
        if "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                return {}
            target = spec
            for part in ref.lstrip("#/").split("/"):
                target = target[part]
            return inline(target, spec, seen + (ref,))
        return {k: inline(v, spec, seen) for k, v in sorted(node.items()) if k not in DROP}
    if isinstance(node, list):
        return [inline(v, spec, seen) for v in node]
    return node


def main():
    spec = json.load(open(sys.argv[1]))
    out = {"source": "stripe/openapi openapi/spec3.json (see README.md)", "operations": {}}
    for op_id, (path, method) in OPERATIONS.items():
        op = spec["paths"][path][method]
        assert op["operationId"] == op_id, op["operationId"]
        body = op.get("requestBody", {}).get("content", {}).get("application/x-www-form-urlencoded", {})
        schema = body.get("schema", {"additionalProperties": False, "properties": {}, "type": "object"})
        schema = inline(schema, spec)
        # GET takes its parameters in the query string (only `expand`): no form at all.
        out["operations"][op_id] = {"method": method, "path": path, "schema": schema}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
