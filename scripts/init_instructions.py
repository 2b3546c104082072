#!/usr/bin/env python3
"""Init cost of Lambda bootstraps in instructions: what each binary executes from exec until it
asks the Runtime API for its first event (`GET .../invocation/next`), counted by valgrind's
callgrind behind a fake Runtime API that never answers.

Wall-clock init on a small shared machine varies by tens of percent between runs; instruction
counts repeat within a fraction of a percent, so a ratio against a floor binary can steer.
The environment is Lambda's (region, the execution role's credentials as variables, function
metadata) plus `--env K=V`. The first binary is the floor the others are divided by.

usage: init_instructions.py FLOOR BOOTSTRAP... [--env K=V ...] [--timeout S]
Standard library and valgrind only; prints a Markdown table.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def count(path: str, extra_env: dict, timeout: float) -> int:
    asked = threading.Event()

    class RuntimeApi(BaseHTTPRequestHandler):
        def log_message(self, *_):
            pass

        def do_GET(self):
            if "/invocation/next" in self.path:
                asked.set()
                time.sleep(timeout)  # never answered: the process is stopped first
            self.send_response(404)
            self.end_headers()

        do_POST = do_GET

    server = ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_port}",
        "AWS_LAMBDA_FUNCTION_NAME": "fn", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_LOG_STREAM_NAME": "stream",
        "AWS_LAMBDA_LOG_GROUP_NAME": "group", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "token",
        "LAMBDA_TASK_ROOT": "/var/task", "_HANDLER": "bootstrap",
    }
    env.update(extra_env)
    fd, out = tempfile.mkstemp(prefix="callgrind.")
    os.close(fd)
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", path], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout
        while not asked.wait(0.2):
            if proc.poll() is not None:
                sys.exit(f"{path} exited ({proc.returncode}) before asking for an event:\n{proc.stderr.read()[-800:]}")
            if time.monotonic() > deadline:
                proc.kill()
                sys.exit(f"{path}: no /invocation/next within {timeout}s")
        # callgrind writes its totals when the process ends on a signal it does not catch.
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        with open(out) as f:
            for line in f:
                if line.startswith("summary:") or line.startswith("totals:"):
                    return int(line.split()[1])
        sys.exit(f"{path}: no instruction count; valgrind said:\n{err[-800:]}")
    finally:
        server.shutdown()
        os.unlink(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("floor")
    ap.add_argument("bootstrap", nargs="+")
    ap.add_argument("--env", action="append", default=[], metavar="K=V")
    ap.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args()
    extra = dict(kv.split("=", 1) for kv in a.env)
    floor = count(a.floor, extra, a.timeout)
    print("| binary | init instructions | × floor |")
    print("|---|---:|---:|")
    print(f"| {os.path.basename(a.floor)} (floor) | {floor / 1e6:.3f} M | 1.00 |")
    for path in a.bootstrap:
        n = count(path, extra, a.timeout)
        print(f"| {os.path.basename(path)} | {n / 1e6:.3f} M | {n / floor:.2f} |", flush=True)


if __name__ == "__main__":
    main()
