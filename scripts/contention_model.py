"""What one event's seat counter sustains under DynamoDB's transaction conflicts: a model, not a
measurement (docs/scaling.md, "A flash sale").

Every booking of an event is a TransactWriteItems that updates the event's item. DynamoDB does
not queue transactions on an item: while one holds it (its prepare and commit, `hold` seconds),
another that touches it is cancelled with `TransactionConflict`
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling).
The adapter (shared/src/store/dynamo/mod.rs, `DynamoStore::transact`) retries a conflict up to
6 attempts in all, sleeping a jittered 10 << n ms (n = 1..5: 10-20, 20-40, 40-80, 80-160,
160-320 ms) between them, then answers 503 with Retry-After: 1.

Buyers arrive as a Poisson stream of `rate` bookings/s on one event with unlimited seats. The
model prints, per rate, what commits, how many attempts a booking takes and how many bookings
spend the budget (503). Usage: contention_model.py [HOLD_MS] (default 20).
"""

import heapq
import random
import sys

ATTEMPTS = 6


def backoff(tries, rng):
    base = 10 << min(tries, 5)
    return rng.uniform(base / 2, base) / 1000


def simulate(rate, hold, seconds=60.0, seed=1):
    rng = random.Random(seed)
    events = []  # (time, seq, booking, tries)
    t, seq = 0.0, 0
    while t < seconds:
        t += rng.expovariate(rate)
        heapq.heappush(events, (t, seq, seq, 0))
        seq += 1
    busy_until = -1.0
    committed = unavailable = attempts = 0
    while events:
        now, _, booking, tries = heapq.heappop(events)
        attempts += 1
        tries += 1
        if now < busy_until:  # another transaction holds the item: cancelled, nothing written
            if tries >= ATTEMPTS:
                unavailable += 1
            else:
                seq += 1
                heapq.heappush(events, (now + backoff(tries, rng), seq, booking, tries))
            continue
        busy_until = now + hold
        committed += 1
    total = committed + unavailable
    return committed / seconds, attempts / total, unavailable / total


def main():
    hold = (float(sys.argv[1]) if len(sys.argv) > 1 else 20.0) / 1000
    print(f"hold {hold * 1000:.0f} ms per transaction; ceiling 1/hold = {1 / hold:.0f} commits/s")
    print("| bookings/s on one event | committed/s | attempts per booking | 503 (budget spent) |")
    print("|---|---|---|---|")
    for rate in (5, 10, 20, 30, 40, 50, 75, 100, 200):
        ok, tries, failed = simulate(rate, hold)
        print(f"| {rate} | {ok:.1f} | {tries:.2f} | {failed * 100:.1f} % |")


if __name__ == "__main__":
    main()
