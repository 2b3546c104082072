#!/usr/bin/env python3
"""Compares requests.json (the request schemas the stand-in enforces, written for this project) with
Stripe's published OpenAPI description, stripe/openapi's `openapi/spec3.json`, which you download
yourself. Prints every parameter whose presence, type, enum or maxLength differs and exits 1 if any
does. Not run in CI (the description is 8 MB and not vendored); run it when Stripe's API version moves:

    python3 check_against_spec.py path/to/spec3.json
"""
import json
import os
import sys

OPERATIONS = {
    "PostCheckoutSessions": ("/v1/checkout/sessions", "post"),
    "GetCheckoutSessionsSession": ("/v1/checkout/sessions/{session}", "get"),
    "PostCheckoutSessionsSessionExpire": ("/v1/checkout/sessions/{session}/expire", "post"),
    "PostRefunds": ("/v1/refunds", "post"),
}
COMPARED = ("type", "enum", "maxLength")


def resolve(node, spec, seen=()):
    if isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if ref in seen:
            return {}
        target = spec
        for part in ref.lstrip("#/").split("/"):
            target = target[part]
        return resolve(target, spec, seen + (ref,))
    return node


def compare(ours, theirs, spec, where, out):
    theirs = resolve(theirs, spec)
    if ours.get("x-extract") == "elided":
        return
    for key in COMPARED:
        if key in ours and ours.get(key) != theirs.get(key):
            out.append(f"{where}: {key} is {ours.get(key)!r} here, {theirs.get(key)!r} in spec3.json")
    if "anyOf" in ours:
        for i, (a, b) in enumerate(zip(ours["anyOf"], theirs.get("anyOf", []))):
            compare(a, b, spec, f"{where}|anyOf[{i}]", out)
    if "items" in ours:
        compare(ours["items"], theirs.get("items", {}), spec, f"{where}[]", out)
    props, their_props = ours.get("properties", {}), resolve(theirs, spec).get("properties", {})
    for name in sorted(set(props) | set(their_props)):
        if name not in their_props:
            out.append(f"{where}.{name}: accepted here, absent from spec3.json")
        elif name not in props:
            out.append(f"{where}.{name}: in spec3.json, refused here as unknown")
        else:
            compare(props[name], their_props[name], spec, f"{where}.{name}", out)


def main():
    spec = json.load(open(sys.argv[1]))
    ours = json.load(open(os.path.join(os.path.dirname(__file__), "requests.json")))["operations"]
    out = []
    for op_id, (path, method) in OPERATIONS.items():
        op = spec["paths"][path][method]
        body = op.get("requestBody", {}).get("content", {}).get("application/x-www-form-urlencoded", {})
        compare(ours[op_id]["schema"], body.get("schema", {}), spec, op_id, out)
    print("\n".join(out) or "requests.json agrees with spec3.json")
    sys.exit(1 if out else 0)


if __name__ == "__main__":
    main()
