#!/usr/bin/env python3
"""Cold start and memory of the real Lambda binaries, behind a fake Lambda Runtime API.

For each function: spawn the binary N times and time spawn → its first `GET /invocation/next`
(the init phase: config, DynamoDB client, keys), then feed one process many API Gateway v2
requests and report per-invocation latency and peak RSS (VmHWM). DynamoDB is whatever
AWS_ENDPOINT_URL_DYNAMODB points at (moto, started by `make bench`). Prints figures; asserts
nothing (a benchmark, not a test). Standard library only.

usage: bench_lambda.py BIN_DIR TABLE [--cold-runs 20] [--invocations 300]
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import queue
import statistics
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = "bench-secret-0123456789abcdef0123456789abcdef"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(sub: str, role: str, email: str) -> str:
    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": sub, "role": role, "email": email, "name": "Bench", "iat": now, "exp": now + 3600,
              "iss": "ahoum-booking", "aud": "ahoum-booking-api"}
    payload = b64(json.dumps(claims).encode())
    sig = hmac.new(SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(sig)}"


def apigw(method: str, path: str, body=None, bearer=None, query="") -> dict:
    headers = {"content-type": "application/json", "host": "bench.local"}
    if bearer:
        headers["authorization"] = f"Bearer {bearer}"
    event = {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
        "headers": headers,
        "requestContext": {"accountId": "123456789012", "apiId": "bench", "domainName": "bench.local",
                           "domainPrefix": "bench", "http": {"method": method, "path": path,
                           "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
                           "requestId": str(uuid.uuid4()), "routeKey": "$default", "stage": "$default",
                           "time": "26/Nov/2026:10:00:00 +0000", "timeEpoch": int(time.time() * 1000)},
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = dict(kv.split("=", 1) for kv in query.split("&"))
    if body is not None:
        event["body"] = json.dumps(body)
    return event


class RuntimeApi:
    """The part of the Lambda Runtime API a function uses: next, response, error."""

    def __init__(self):
        self.events: "queue.Queue[dict]" = queue.Queue()
        self.responses: "queue.Queue[tuple[float, dict]]" = queue.Queue()
        self.first_next = threading.Event()
        self.first_next_at = 0.0
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if not self.path.endswith("/invocation/next"):
                    self.send_error(404)
                    return
                if not api.first_next.is_set():
                    api.first_next_at = time.perf_counter()
                    api.first_next.set()
                event = api.events.get()
                body = json.dumps(event).encode()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", str(uuid.uuid4()))
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                                 "arn:aws:lambda:us-east-1:123456789012:function:bench")
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                data = self.rfile.read(length)
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                try:
                    payload = json.loads(data or b"{}")
                except ValueError:
                    payload = {"raw": data.decode(errors="replace")}
                if "/error" in self.path:
                    payload = {"statusCode": 500, "error": payload}
                api.responses.put((time.perf_counter(), payload))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()


def env_for(api: RuntimeApi, name: str, table: str) -> dict:
    env = dict(os.environ)
    env.update({
        "AWS_LAMBDA_RUNTIME_API": api.address, "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_LEVEL": "WARN", "RUST_LOG": "warn", "TABLE_NAME": table, "JWT_SECRET": SECRET,
        "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH": "true",
    })
    return env


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cold_start(binary: str, name: str, table: str, first: dict) -> tuple[float, float]:
    """(init ms, init + first invocation ms) of one fresh process."""
    api = RuntimeApi()
    started = time.perf_counter()
    proc = subprocess.Popen([binary], env=env_for(api, name, table), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        if not api.first_next.wait(10):
            raise SystemExit(f"{name}: no GET /next within 10 s")
        api.events.put(first)
        done, _ = api.responses.get(timeout=30)
        return (api.first_next_at - started) * 1000, (done - started) * 1000
    finally:
        proc.kill()
        proc.wait()
        api.close()


def warm_run(binary: str, name: str, table: str, requests: list) -> dict:
    api = RuntimeApi()
    proc = subprocess.Popen([binary], env=env_for(api, name, table), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        api.first_next.wait(10)
        latencies, statuses = [], {}
        for req in requests:
            sent = time.perf_counter()
            api.events.put(req)
            done, payload = api.responses.get(timeout=60)
            latencies.append((done - sent) * 1000)
            code = payload.get("statusCode")
            statuses[code] = statuses.get(code, 0) + 1
        return {"latencies": latencies, "statuses": statuses, "peak_rss_mb": peak_rss_mb(proc.pid)}
    finally:
        proc.kill()
        proc.wait()
        api.close()


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin_dir")
    ap.add_argument("table")
    ap.add_argument("--cold-runs", type=int, default=20)
    ap.add_argument("--invocations", type=int, default=300)
    ap.add_argument("--no-endpoint", action="store_true",
                    help="cold starts only, as deployed: no endpoint override (so the SDK client trusts the "
                         "bundled AWS roots), first requests that need no DynamoDB")
    args = ap.parse_args()
    if args.no_endpoint:
        for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
            os.environ.pop(var, None)
        firsts = {"auth": apigw("GET", "/health"), "events": apigw("GET", "/events/", query="limit=0"),
                  "bookings": apigw("GET", "/bookings/")}
        print(f"{'function':<10} {'init p50':>9} {'init p90':>9} {'init+1st p50':>13}")
        for name, first in firsts.items():
            cold = [cold_start(os.path.join(args.bin_dir, name), name, args.table, first) for _ in range(args.cold_runs)]
            inits, fsts = [c[0] for c in cold], [c[1] for c in cold]
            print(f"{name:<10} {statistics.median(inits):>8.1f}  {pct(inits, 0.9):>8.1f}  {statistics.median(fsts):>12.1f}")
        return

    user_id, email = "01BENCHUSER000000000000000", f"bench{int(time.time())}@example.com"
    attendee = token(user_id, "attendee", email)
    n = args.invocations
    scenarios = {
        # argon2id on every login: peak RSS shows whether its 19 MiB block is reused.
        "auth": (apigw("GET", "/health"),
                 [apigw("POST", "/auth/register", {"name": "Bench", "email": email, "password": "benchmark-pw"})]
                 + [apigw("POST", "/auth/login", {"email": email, "password": "benchmark-pw"})
                    for _ in range(min(n, 100))]),
        "events": (apigw("GET", "/events/", query="limit=50"),
                   [apigw("GET", "/events/", query="limit=50") for _ in range(n // 2)]
                   + [apigw("GET", "/events/filter", query="type=yoga&rating=4.5") for _ in range(n // 2)]),
        "bookings": (apigw("GET", "/bookings/", bearer=attendee),
                     [apigw("GET", "/bookings/", bearer=attendee) for _ in range(n)]),
    }
    print(f"{'function':<10} {'size MB':>8} {'init p50':>9} {'init p90':>9} {'init+1st p50':>13} "
          f"{'warm p50':>9} {'warm p99':>9} {'peak RSS MB':>12}  statuses")
    for name, (first, warm) in scenarios.items():
        binary = os.path.join(args.bin_dir, name)
        size = os.path.getsize(binary) / 1e6
        cold = [cold_start(binary, name, args.table, first) for _ in range(args.cold_runs)]
        inits = [c[0] for c in cold]
        firsts = [c[1] for c in cold]
        run = warm_run(binary, name, args.table, warm)
        lat = run["latencies"][1:]
        print(f"{name:<10} {size:>8.1f} {statistics.median(inits):>8.1f}  {pct(inits, 0.9):>8.1f}  "
              f"{statistics.median(firsts):>12.1f}  {statistics.median(lat):>8.2f}  {pct(lat, 0.99):>8.2f}  "
              f"{run['peak_rss_mb']:>11.1f}  {run['statuses']}")


if __name__ == "__main__":
    main()
