#!/usr/bin/env python3
"""The local checkout page (`make run PAYMENTS=local`) in a real headless Chromium.

Run by `make test` as

    PAYMENTS=local scripts/local-server.sh $VENV/bin/python scripts/checkout-browser-test.py

which starts the local server with the Stripe stand-in on a free port, passes its URL as the last
argument, and prints the server's log if this exits non-zero.

Through the API: a facilitator creates a priced event whose title holds markup, two attendees book
it (201 pending_payment with a checkout_url). In Chromium: the first opens her checkout_url, sees
the title as text and the price, clicks Pay and lands on the success page; the API then shows the
booking confirmed by the webhook's event (settled_by evt_local_…). A replayed Pay form changes
nothing, a form without the page's token is refused. The second clicks Cancel, lands on the cancel
page and her booking is still pending_payment; DELETE cancels it, and the page then says the
session expired.

Needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver) and the
selenium package pinned in the Makefile.
"""

import json
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.request

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
TITLE = 'Sound Bath <b>&</b> "Gong"'
PASSWORD = "correct horse battery"


class Failed(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Failed(what)
    print(f"  ok  {what}")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def call(api, method, path, token=None, body=None, headers=None, raw=None):
    """(status, parsed JSON or text, headers) of one request; never raises on an HTTP status."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(api + path, data=data, method=method)
    if body is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=15) as resp:
            status, text, hdrs = resp.status, resp.read().decode(), resp.headers
    except urllib.error.HTTPError as e:
        status, text, hdrs = e.code, e.read().decode(), e.headers
    try:
        return status, json.loads(text), hdrs
    except ValueError:
        return status, text, hdrs


def user(api, stamp, name, role=None):
    email = f"checkout-{stamp}-{name.lower()}@example.com"
    body = {"name": name, "email": email, "password": PASSWORD}
    if role:
        body["role"] = role
    status, reply, _ = call(api, "POST", "/auth/register", body=body)
    check(status == 201, f"register {name}: 201 (got {status} {reply})")
    status, reply, _ = call(api, "POST", "/auth/login", body={"email": email, "password": PASSWORD})
    check(status == 200, f"login {name}: 200 (got {status})")
    return reply["access_token"]


def book(api, token, event_id, key):
    status, booking, _ = call(api, "POST", "/bookings/", token, {"event_id": event_id}, {"Idempotency-Key": key})
    check(status == 201 and booking.get("status") == "pending_payment",
          f"book: 201 pending_payment (got {status} {booking})")
    url = (booking.get("payment") or {}).get("checkout_url") or ""
    check(url.startswith(api + "/checkout/cs_"), f"checkout_url is the local page ({url})")
    return booking["id"], url


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="checkout-chromium-")
    # No sandbox (containers, root), and none of Chromium's own network traffic: on a closed
    # network its background connections otherwise stall start-up.
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(15)
    return driver


def wait_for_path(driver, path, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if driver.current_url.split("?")[0].endswith(path):
            return
        time.sleep(0.05)
    raise Failed(f"the browser did not reach {path} within {seconds} s (it is at {driver.current_url})")


def text(driver, element_id):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id).text


def main(api):
    started = time.time()
    api = api.rstrip("/")
    stamp = str(int(time.time() * 1000))
    print("API calls")
    fac = user(api, stamp, "Facilitator", "facilitator")
    asha = user(api, stamp, "Asha")
    ravi = user(api, stamp, "Ravi")
    status, event, _ = call(api, "POST", "/events/", fac, {
        "title": TITLE, "type": "Music", "datetime": "2030-08-01T18:00:00", "capacity": 10,
        "price": {"amount": 1500, "currency": "eur"}})
    check(status == 201, f"priced event created: 201 (got {status} {event}); is the server running with PAYMENTS=local?")
    paid_id, paid_url = book(api, asha, event["id"], f"checkout-{stamp}-asha")
    left_id, left_url = book(api, ravi, event["id"], f"checkout-{stamp}-ravi")

    print("Chromium: Pay")
    from selenium.webdriver.common.by import By

    driver = browser()
    try:
        driver.get(paid_url)
        check(text(driver, "title") == TITLE, f"the page shows the title as text ({text(driver, 'title')!r})")
        check(text(driver, "amount") == "15.00 EUR", f"the page shows the price ({text(driver, 'amount')!r})")
        check(not driver.find_elements(By.TAG_NAME, "b"), "the title's markup is not rendered")
        token = re.search(r'name="csrf" value="([^"]+)"', driver.page_source)
        check(token is not None, "the Pay form carries a token")
        driver.find_element(By.ID, "pay").click()
        wait_for_path(driver, "/payments/success")
        check(text(driver, "result") == "Payment received", "success page after Pay")
        check(text(driver, "webhook").startswith("200 "), f"the webhook answered 200 ({text(driver, 'webhook')!r})")
        status, booking, _ = call(api, "GET", f"/bookings/{paid_id}", asha)
        settled_by = (booking.get("payment") or {}).get("settled_by") or ""
        check(status == 200 and booking.get("status") == "confirmed",
              f"the booking is confirmed (got {status} {booking.get('status')})")
        check(settled_by.startswith("evt_local_"), f"confirmed by the signed webhook's event ({settled_by!r})")

        print("The Pay form again, and forged")
        session_id = paid_url.rsplit("/", 1)[1]
        form = f"csrf={token.group(1)}".encode()
        origin = {"origin": api, "content-type": "application/x-www-form-urlencoded"}
        status, _, hdrs = call(api, "POST", f"/checkout/{session_id}/pay", headers=origin, raw=form)
        check(status == 303 and "/payments/success" in (hdrs.get("location") or ""),
              f"a second Pay goes to the success page again (got {status})")
        status, again, _ = call(api, "GET", f"/bookings/{paid_id}", asha)
        check((again.get("payment") or {}).get("settled_by") == settled_by, "and settles nothing twice")
        status, _, _ = call(api, "POST", f"/checkout/{session_id}/pay", headers=origin, raw=b"csrf=guess")
        check(status == 403, f"a Pay form without the page's token: 403 (got {status})")
        status, _, _ = call(api, "POST", f"/checkout/{session_id}/pay",
                            headers={**origin, "origin": "http://evil.example"}, raw=form)
        check(status == 403, f"a Pay form from another origin: 403 (got {status})")

        print("Chromium: Cancel")
        driver.get(left_url)
        check(text(driver, "amount") == "15.00 EUR", "the second booking's page shows the price")
        driver.find_element(By.ID, "cancel").click()
        wait_for_path(driver, "/payments/cancel")
        check(text(driver, "result") == "Payment cancelled", "cancel page after Cancel")
        status, booking, _ = call(api, "GET", f"/bookings/{left_id}", ravi)
        check(booking.get("status") == "pending_payment",
              f"the booking is still pending_payment, its seat held (got {booking.get('status')})")
        status, booking, _ = call(api, "DELETE", f"/bookings/{left_id}", ravi)
        check(status == 200 and booking.get("status") == "cancelled", f"DELETE cancels it at once (got {status})")
        driver.get(left_url)
        check("expired" in text(driver, "status") and not driver.find_elements(By.ID, "pay"),
              f"its checkout page then says the session expired ({text(driver, 'status')!r})")
    finally:
        driver.quit()
    print(f"local checkout in Chromium: all checks passed in {time.time() - started:.1f} s")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: PAYMENTS=local scripts/local-server.sh python scripts/checkout-browser-test.py")
    for path, package in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")]:
        if not os.access(path, os.X_OK):
            sys.exit(f"FAILED: {path} not found: apt-get install -y {package} (.ci/run does)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        sys.exit("FAILED: selenium is not installed in this Python: make venv")
    try:
        main(sys.argv[1])
    except Failed as e:
        sys.exit(f"FAILED: {e}")
    except Exception as e:  # a WebDriver or network error: say what, not only a traceback
        sys.exit(f"FAILED: {type(e).__name__}: {e}")
