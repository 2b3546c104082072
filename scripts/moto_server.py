"""moto_server with one lock around request handling, DynamoDB's idempotency tokens, and the
answers DynamoDB gives under contention (transaction conflicts and throttling), injected on demand.

1. One lock. moto's in-memory backend is not thread-safe: under the threaded dev server,
   concurrent TransactWriteItems interleave their condition checks and writes (we measured 11
   bookings for 10 seats and "dictionary changed size during iteration" 500s). Real DynamoDB
   applies each transaction atomically, so the tests need a moto that does too: connections stay
   concurrent, request handling is serialised.

2. ClientRequestToken. moto ignores TransactWriteItems' token. DynamoDB documents it: within 10
   minutes, a request with a token already used and the same parameters returns the first outcome
   without running again; with other parameters, IdempotentParameterMismatchException
   (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-apis-txwriteitems-idempotency).
   The wrapper implements exactly that, so the tests can prove that an SDK retry of a committed
   transaction is answered with success (tests/tests/hardening.rs).

3. Contention. Because of the lock, moto never has two transactions on one item at the same time,
   so it never answers what DynamoDB answers then. DynamoDB does not lock items; it cancels
   (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling):
   - "An item within a TransactWriteItems request is part of another ongoing TransactWriteItems
     request": the request fails with TransactionCanceledException, whose CancellationReasons
     list one entry per action in request order: `TransactionConflict` ("Transaction is ongoing
     for the item.") for the contended item, the literal code `None` and no Message for the others
     (API reference, TransactionCanceledException). Nothing is written.
   - "A PutItem, UpdateItem, or DeleteItem request for an item conflicts with an ongoing
     TransactWriteItems request that includes the same item": TransactionConflictException.
   - A hot partition (every booking of one event updates that event's item, the seat counter)
     throttles: HTTP 400 with `ThrottlingException` or `ProvisionedThroughputExceededException`
     and a throttling reason `TableWriteKeyRangeThroughputExceeded` ("The request rate directed at
     a specific partition key value has exceeded the internal partition-level throughput limits",
     API reference, ThrottlingReason; https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/throttling-key-range-limit-exceeded-mitigation.html),
     or, inside a transaction on an on-demand table, TransactionCanceledException with the reason
     `ThrottlingError` on the hot item (API reference, TransactionCanceledException).
   Every error body is DynamoDB's JSON protocol as the AWS SDKs parse it
   (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html#Programming.Errors.Components):
   status 400, Content-Type application/x-amz-json-1.0, `__type` with the
   `com.amazonaws.dynamodb.v20120810#` namespace, and the field names of each shape (aws-sdk-rust's
   deserializers: `Message` and `CancellationReasons[].Code/Message` for TransactionCanceledException,
   `message` and `throttlingReasons[].reason/resource` for ThrottlingException, `message` and
   `ThrottlingReasons` for ProvisionedThroughputExceededException).
   What the Rust SDK then does by itself (aws-runtime 1.10 `THROTTLING_ERRORS`; aws-sdk-dynamodb
   1.136 models no retryable error on these operations): ThrottlingException and
   ProvisionedThroughputExceededException are retried (standard mode, 3 attempts in all);
   TransactionCanceledException, whatever its reasons, and TransactionConflictException are not,
   so what happens next is the adapter's (docs/scaling.md, "The retry budget").

   "Ongoing" is what moto's lock hides: a TransactWriteItems is in flight from the moment its
   request arrives until its answer leaves, and while requests queue for the lock many are in
   flight at once, as they would be inside DynamoDB. A request touching an item that another
   in-flight transaction also touches (or that a finished one still holds: `window_ms`, default 0,
   models a transaction that stays open longer than moto takes) is contended, and is then
   answered with a conflict with probability `conflict_rate`, else with a throttle with
   probability `throttle_rate` (the three throttle forms in turn). A request that touches no such
   item is never injected: without contention DynamoDB has nothing to cancel, and a client's own
   finished transaction never conflicts with its next request. Rates default to 0 (moto's own
   behaviour, for every test that does not ask) or come from MOTO_CONFLICT_RATE,
   MOTO_THROTTLE_RATE, MOTO_CONFLICT_WINDOW_MS; MOTO_INJECT_SEED seeds the draws.

   Runtime control, per table, so one test can contend its own table while others run:
     POST /_inject  {"table": "<name>", "conflict_rate": 0.5, "throttle_rate": 0.1, "window_ms": 50}
     GET  /_inject?table=<name>  -> the table's settings and what was injected so far:
          {"transaction_conflicts", "item_conflicts", "throttles", "contended"}

Usage: moto_server.py HOST PORT
"""

import copy
import io
import json
import os
import random
import sys
import threading
import time
import urllib.parse
import uuid
import zlib

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple
from moto.dynamodb import models

_lock = threading.Lock()
_backend = DomainDispatcherApplication(create_backend_app)

class _NoTableCopy:
    """Stands in for moto's `copy` module during `transact_write_items` (see 4.): its whole-table
    backup becomes the table itself, so its own rollback (putting the backup back) is a no-op and
    the undo log below restores what the transaction touched."""

    @staticmethod
    def deepcopy(value, memo=None):
        return value


def _key_of(table, op_type, op):
    if op_type == "Put":
        attrs = op["Item"]
        key = {table.hash_key_attr: attrs[table.hash_key_attr]}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = attrs[table.range_key_attr]
        return key
    return op["Key"]


def _transact_with_undo_log(self, transact_items):
    """4. Speed only, same semantics. moto's `transact_write_items` backs up every table it
    touches with `copy.deepcopy` (once per *action*) to restore it if the transaction fails: a
    9-action hand-off on a table of 1,000 items took ~0.5 s, and a line of 10,000 waiting users
    could not be built at all (moto grew past 5 GB). DynamoDB's rule is only that a cancelled
    transaction writes nothing: here each touched item is saved before the call (an undo log,
    O(actions)), and on any failure every one is put back as it was (or deleted if it did not
    exist) and the stream records the failed call appended are dropped, as DynamoDB emits none.
    Request handling is serialised (1.), so nothing else sees the table meanwhile."""
    saved, streams = [], {}
    try:
        for item in transact_items:
            op_type, op = next(iter(item.items()))
            table = self.get_table(op["TableName"])
            key = _key_of(table, op_type, op)
            current = self.get_item(op["TableName"], key)
            saved.append((op["TableName"], key, None if current is None else current.to_json()["Attributes"]))
            if table.stream_shard is not None:
                streams[op["TableName"]] = (table.stream_shard, len(table.stream_shard.items))
    except Exception:
        return _transact_write_items(self, transact_items)  # malformed: moto's own path answers
    models.copy = _NoTableCopy
    try:
        return _transact_write_items(self, transact_items)
    except Exception:
        for table_name, key, old in reversed(saved):
            table = self.get_table(table_name)
            hash_value, range_value = self.get_keys_value(table, key)
            if old is None:
                if table.get_item(hash_value, range_value) is not None:
                    table.delete_item(hash_value, range_value)
            else:
                table.put_item(old)
        for shard, length in streams.values():
            del shard.items[length:]
        raise
    finally:
        models.copy = copy


_transact_write_items = models.DynamoDBBackend.transact_write_items
models.DynamoDBBackend.transact_write_items = _transact_with_undo_log

TOKEN_WINDOW_SECS = 600
_tokens = {}  # token -> (expires, parameters without the token, status, headers, body)

NAMESPACE = "com.amazonaws.dynamodb.v20120810#"
JSON_TYPE = "application/x-amz-json-1.0"
INJECT_PATH = "/_inject"
SINGLE_WRITES = ("PutItem", "UpdateItem", "DeleteItem")


def _env_number(name, default, kind=float):
    value = os.environ.get(name, "").strip()
    return kind(value) if value else default


DEFAULTS = {
    "conflict_rate": _env_number("MOTO_CONFLICT_RATE", 0.0),
    "throttle_rate": _env_number("MOTO_THROTTLE_RATE", 0.0),
    "window_ms": _env_number("MOTO_CONFLICT_WINDOW_MS", 0, int),
}
_settings = {}  # table -> settings set through POST /_inject
_counts = {}  # table -> counters of what was injected
_in_flight = {}  # (table, key) -> transactions touching the item that arrived and are not answered
_held = {}  # (table, key) -> monotonic time until which a finished transaction still holds it
_rng = random.Random(os.environ.get("MOTO_INJECT_SEED") or None)
_throttle_turns = {}  # table -> throttles answered so far, to take the three forms in turn


def _settings_of(table):
    return {**DEFAULTS, **_settings.get(table, {})}


def _counts_of(table):
    return _counts.setdefault(table, {"transaction_conflicts": 0, "item_conflicts": 0, "throttles": 0, "contended": 0})


def _count(table, what):
    _counts_of(table)[what] += 1


def _key_names(environ, table, key=None):
    """The table's key attributes: from moto's backend (a Put carries the whole item)."""
    if key is not None:
        return sorted(key)
    try:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        auth = environ.get("HTTP_AUTHORIZATION", "")
        region = auth.split("Credential=")[1].split("/")[2] if "Credential=" in auth else "us-east-1"
        t = dynamodb_backends[DEFAULT_ACCOUNT_ID][region].get_table(table)
        return [n for n in (t.hash_key_attr, t.range_key_attr) if n]
    except Exception:  # unknown table: moto answers it with its own error
        return None


def _item_key(environ, table, key=None, item=None):
    names = _key_names(environ, table, key)
    source = key if key is not None else (item or {})
    if not names:
        return None
    return json.dumps({n: source.get(n) for n in names}, sort_keys=True)


def _transaction_items(environ, request):
    """(table, key) of each action of a TransactWriteItems, in request order; none for a request
    moto is left to refuse with its own validation error."""
    out = []
    try:
        for action in request.get("TransactItems", []):
            ((kind, body),) = action.items()
            table = body.get("TableName", "")
            if kind == "Put":
                out.append((table, _item_key(environ, table, item=body.get("Item"))))
            else:
                out.append((table, _item_key(environ, table, key=body.get("Key"))))
    except (AttributeError, TypeError, ValueError):
        return []
    return out


def _error(type_name, body):
    # DynamoDB signs every body with its CRC32 (`x-amz-crc32`), which botocore checks, as moto does.
    payload = json.dumps({"__type": NAMESPACE + type_name, **body}).encode()
    headers = [
        ("Content-Type", JSON_TYPE),
        ("x-amzn-RequestId", uuid.uuid4().hex.upper()),
        ("x-amz-crc32", str(zlib.crc32(payload) & 0xFFFFFFFF)),
    ]
    return "400 Bad Request", headers, payload


def _cancelled(items, contended, code, message):
    reasons = [{"Code": code, "Message": message} if i in contended else {"Code": "None"} for i in range(len(items))]
    codes = ", ".join(r["Code"] for r in reasons)
    return _error(
        "TransactionCanceledException",
        {
            "Message": f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
            "CancellationReasons": reasons,
        },
    )


def _throttle(table, items, contended):
    arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}"
    reason = "TableWriteKeyRangeThroughputExceeded"
    message = (
        "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically "
        "scaling your table or index so please try again shortly. If exceptions persist, check if you "
        "have a hot key: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html"
    )
    turn = _throttle_turns.get(table, 0) % 3
    _throttle_turns[table] = turn + 1
    if turn == 0:
        return _error("ThrottlingException", {"message": message, "throttlingReasons": [{"reason": reason, "resource": arn}]})
    if turn == 1:
        return _error(
            "ProvisionedThroughputExceededException",
            {"message": message, "ThrottlingReasons": [{"reason": reason, "resource": arn}]},
        )
    if items is None:  # a single-item write has no cancellation reasons: the first form again
        return _error("ThrottlingException", {"message": message, "throttlingReasons": [{"reason": reason, "resource": arn}]})
    return _cancelled(items, contended, "ThrottlingError", message)


def _contention(environ, target, request):
    """An injected answer for a request that touches an item an ongoing transaction holds, or None."""
    now = time.monotonic()
    if target == "TransactWriteItems":
        items = _transaction_items(environ, request)
        keys = items
    elif target in SINGLE_WRITES:
        table = request.get("TableName", "")
        items = None
        try:
            keys = [(table, _item_key(environ, table, key=request.get("Key"), item=request.get("Item")))]
        except (AttributeError, TypeError):
            return None
    else:
        return None
    # A transaction's own actions are counted in `_in_flight` once each (DynamoDB refuses two
    # actions on one item in one transaction), so another one is in flight when the count is > 1.
    mine = 1 if items is not None else 0
    contended = {
        i for i, k in enumerate(keys) if k[1] is not None and (_in_flight.get(k, 0) > mine or _held.get(k, 0) > now)
    }
    if not contended:
        return None
    table = keys[min(contended)][0]
    settings = _settings_of(table)
    _count(table, "contended")
    if _rng.random() < settings["conflict_rate"]:
        if items is None:
            _count(table, "item_conflicts")
            return _error("TransactionConflictException", {"message": "Transaction is ongoing for the item"})
        _count(table, "transaction_conflicts")
        return _cancelled(items, contended, "TransactionConflict", "Transaction is ongoing for the item.")
    if _rng.random() < settings["throttle_rate"]:
        _count(table, "throttles")
        return _throttle(table, items, contended)
    return None


def _arrive(items):
    for k in items:
        if k[1] is not None:
            _in_flight[k] = _in_flight.get(k, 0) + 1


def _leave(items, ran):
    now = time.monotonic()
    for k in items:
        if k[1] is None:
            continue
        _in_flight[k] -= 1
        if not _in_flight[k]:
            del _in_flight[k]
        window = _settings_of(k[0])["window_ms"]
        if ran and window:
            _held[k] = now + window / 1000
    if len(_held) > 50_000:
        for k in [k for k, until in _held.items() if until <= now]:
            del _held[k]


def _inject(environ):
    if environ["REQUEST_METHOD"] == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}")
        table = body.pop("table")
        unknown = set(body) - set(DEFAULTS)
        if unknown:
            return "400 Bad Request", [("Content-Type", "application/json")], json.dumps({"unknown": sorted(unknown)}).encode()
        _settings.setdefault(table, {}).update(body)
    else:
        table = urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("table", [""])[0]
    answer = {"table": table, **_settings_of(table), **_counts_of(table)}
    return "200 OK", [("Content-Type", "application/json")], json.dumps(answer).encode()


def _call(environ):
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers

    # Drain the response while holding the lock: the body may be produced lazily.
    body = b"".join(_backend(environ, start_response))
    return captured["status"], captured["headers"], body


def _dynamodb(environ, target, request):
    """The answer to a write, and whether moto ran it (an injected answer wrote nothing)."""
    if target != "TransactWriteItems":
        injected = _contention(environ, target, request)
        return (injected, False) if injected else (_call(environ), True)
    token = request.pop("ClientRequestToken", None)
    now = time.monotonic()
    seen = _tokens.get(token) if token else None
    if seen and seen[0] > now:
        if seen[1] == request:
            return (seen[2], seen[3], seen[4]), False
        mismatch = {"message": "ClientRequestToken reused with different parameters"}
        return _error("IdempotentParameterMismatchException", mismatch), False
    injected = _contention(environ, target, request)
    if injected:
        # A cancelled transaction wrote nothing; its token is not spent.
        return injected, False
    status, headers, body = _call(environ)
    if token:
        _tokens[token] = (now + TOKEN_WINDOW_SECS, request, status, headers, body)
    return (status, headers, body), True


def _write(environ, target):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(raw)
    try:
        request = json.loads(raw or b"{}")
    except ValueError:
        request = None
    if not isinstance(request, dict):  # moto answers it with its own error
        with _lock:
            return _call(environ)
    items = []
    if target == "TransactWriteItems":
        # Registered before queueing for the lock: from here on the transaction is in flight.
        with _lock:
            items = _transaction_items(environ, request)
            _arrive(items)
    ran = False
    try:
        with _lock:
            answer, ran = _dynamodb(environ, target, request)
            return answer
    finally:
        if items:
            with _lock:
                _leave(items, ran)


def app(environ, start_response):
    target = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2]
    if target in ("TransactWriteItems",) + SINGLE_WRITES:
        status, headers, body = _write(environ, target)
    else:
        with _lock:
            if environ.get("PATH_INFO") == INJECT_PATH:
                status, headers, body = _inject(environ)
            else:
                status, headers, body = _call(environ)
    start_response(status, headers)
    return [body]


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    run_simple(host, port, app, threaded=True, request_handler=MotoRequestHandler)
