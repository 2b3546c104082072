"""moto_server with one lock around request handling.

moto's in-memory backend is not thread-safe: under the threaded dev server, concurrent
TransactWriteItems interleave their condition checks and writes (we measured 11 bookings for 10
seats and "dictionary changed size during iteration" 500s). Real DynamoDB applies each
transaction atomically, so the tests need a moto that does too: connections stay concurrent,
request handling is serialised. Usage: moto_server.py HOST PORT
"""

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


def app(environ, start_response):
    with _lock:
        # Drain the response while holding the lock: the body may be produced lazily.
        return [b"".join(_backend(environ, start_response))]


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    run_simple(host, port, app, threaded=True, request_handler=MotoRequestHandler)
