"""moto_server with one lock around request handling.

moto's in-memory backend is not thread-safe: under the threaded dev server, concurrent
TransactWriteItems interleave their condition checks and writes (we measured 11 bookings for 10
seats and "dictionary changed size during iteration" 500s). Real DynamoDB applies each
transaction atomically, so the tests need a moto that does too: connections stay concurrent,
request handling is serialised.

moto also ignores TransactWriteItems' ClientRequestToken. DynamoDB documents it: within 10
minutes, a request with a token already used and the same parameters returns the first outcome
without running again; with other parameters, IdempotentParameterMismatchException. The wrapper
implements exactly that, so the tests can prove that an SDK retry of a committed transaction is
answered with success (tests/tests/hardening.rs). Usage: moto_server.py HOST PORT
"""

import io
import json
import time


import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

_lock = threading.Lock()
_backend = DomainDispatcherApplication(create_backend_app)


TOKEN_WINDOW_SECS = 600
_tokens = {}  # token -> (expires, parameters without the token, status, headers, body)


def _call(environ):
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers

    # Drain the response while holding the lock: the body may be produced lazily.
    body = b"".join(_backend(environ, start_response))
    return captured["status"], captured["headers"], body


def app(environ, start_response):
    with _lock:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.endswith(".TransactWriteItems"):
            status, headers, body = _call(environ)
        else:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(raw)
            request = json.loads(raw or b"{}")
            token = request.pop("ClientRequestToken", None)
            now = time.monotonic()
            seen = _tokens.get(token) if token else None
            if seen and seen[0] > now:
                if seen[1] == request:
                    status, headers, body = seen[2], seen[3], seen[4]
                else:
                    status = "400 Bad Request"
                    headers = [("Content-Type", "application/x-amz-json-1.0")]
                    body = json.dumps({
                        "__type": "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
                        "message": "ClientRequestToken reused with different parameters",
                    }).encode()
            else:
                status, headers, body = _call(environ)
                if token:
                    _tokens[token] = (now + TOKEN_WINDOW_SECS, request, status, headers, body)
        start_response(status, headers)
        return [body]


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    run_simple(host, port, app, threaded=True, request_handler=MotoRequestHandler)
