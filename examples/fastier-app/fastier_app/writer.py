"""A background writer: keeps creating (and updating) orders through the app's HTTP API.

    python -m fastier_app.writer --url http://127.0.0.1:8000 --log writes.jsonl [--rate 10] [--duration 60]

One JSON line per request is appended to the log (flushed at once, so a
checker may read it while the writer runs):

* an acknowledged create (2xx): ``{"op": "create", "ok": true, "id",
  "number", "client_ref", "customer_id", "items": [{"product_id",
  "quantity"}], "total_cents", "order_status", "database", "pid", ...}``;
* an acknowledged update: ``{"op": "update", "ok": true, "id", "client_ref",
  "order_status", "database", "pid", ...}``;
* a failure: ``{"ok": false, "http_status": 503 | null, "error": "...", ...}``
  (``http_status`` null = no HTTP answer: refused, reset, timed out).

Every line has ``ts`` (UTC), ``t`` (seconds since the start) and
``latency_ms``. ``database`` is the ``host:port/dbname`` that the answering
worker wrote to. Each create carries a fresh ``client_ref`` (UUID), so an
acknowledged write can be found in any database by a query of its own.

The writer never retries a request: a failure is counted and it goes on with
the next one, so an app that is briefly unreachable shows up as failures and
a gap. SIGTERM or SIGINT stop it after the request in flight; a summary
(sent, acknowledged, failed, longest gap between two acknowledged writes) is
printed as JSON on stdout. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

NEXT_STATUS = {"new": "paid", "paid": "shipped", "shipped": "delivered"}


class Writer:
    def __init__(self, url: str, log: TextIO, *, rate: float = 10.0, update_ratio: float = 0.25, timeout: float = 5.0, seed: int | None = None):
        self.url = url.rstrip("/")
        self.log = log
        self.rate = rate
        self.update_ratio = update_ratio
        self.timeout = timeout
        self.rng = random.Random(seed)  # noqa: S311 - load generation, not cryptography
        self.stop_event = threading.Event()
        self.started = time.monotonic()
        self.customers: list[int] = []
        self.products: list[int] = []
        self.open_orders: dict[int, dict[str, Any]] = {}  # id -> {client_ref, status} of acknowledged orders that can still change
        self.sent = self.acknowledged = self.failed = 0
        self.by_op: dict[str, int] = {"create": 0, "update": 0}
        self.last_success: float | None = None
        self.longest_gap = 0.0
        self.longest_gap_ended_at: float | None = None
        self.first_failure: dict[str, Any] | None = None
        self.last_failure: dict[str, Any] | None = None

    # -- HTTP -----------------------------------------------------------------------
    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int | None, dict[str, Any] | None, str | None]:
        """(http status or None, JSON body, error text)."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "User-Agent": "fastier-writer/1"}
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=headers)  # noqa: S310 - http(s) only, see main()
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - the URL is the operator's
                return resp.status, json.loads(resp.read() or b"{}"), None
        except urllib.error.HTTPError as err:
            try:
                detail = json.loads(err.read() or b"{}").get("error") or err.reason
            except (ValueError, AttributeError):
                detail = err.reason
            return err.code, None, str(detail)
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            return None, None, f"{type(reason).__name__}: {reason}" if not isinstance(reason, str) else reason

    def _record(self, entry: dict[str, Any]) -> None:
        now = time.monotonic()
        entry = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "t": round(now - self.started, 3), **entry}
        self.sent += 1
        if entry["ok"]:
            self.acknowledged += 1
            self.by_op[entry["op"]] += 1
            if self.last_success is not None and now - self.last_success > self.longest_gap:
                self.longest_gap = now - self.last_success
                self.longest_gap_ended_at = entry["t"]
            self.last_success = now
        else:
            self.failed += 1
            short = {k: entry.get(k) for k in ("ts", "t", "op", "http_status", "error")}
            self.first_failure = self.first_failure or short
            self.last_failure = short
        self.log.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self.log.flush()

    # -- what to send -------------------------------------------------------------
    def load_catalogue(self) -> bool:
        """Customers and products to order with; retried until the app answers or we stop."""
        while not self.stop_event.is_set():
            status_c, customers, error_c = self._request("GET", "/api/customers?limit=500")
            status_p, products, error_p = self._request("GET", "/api/products")
            if status_c == 200 and status_p == 200 and customers and products:
                self.customers = [c["id"] for c in customers["customers"]]
                self.products = [p["id"] for p in products["products"]]
                if self.customers and self.products:
                    return True
                print("writer: the database has no customers or products: seed it first (python -m fastier_app seed)", file=sys.stderr)
                return False
            print(f"writer: waiting for the app ({error_c or error_p or status_c})", file=sys.stderr)
            self.stop_event.wait(1.0)
        return False

    def create(self) -> None:
        ref = str(uuid.uuid4())
        items = [
            {"product_id": pid, "quantity": self.rng.randint(1, 3)} for pid in self.rng.sample(self.products, k=min(len(self.products), self.rng.randint(1, 3)))
        ]
        customer = self.rng.choice(self.customers)
        started = time.monotonic()
        status, body, error = self._request("POST", "/api/orders", {"customer_id": customer, "items": items, "client_ref": ref})
        latency = round((time.monotonic() - started) * 1000, 1)
        base = {"op": "create", "client_ref": ref, "customer_id": customer, "items": items, "http_status": status, "latency_ms": latency}
        if status is not None and 200 <= status < 300 and body and "order" in body:
            order = body["order"]
            served = body.get("served_by") or {}
            self._record(
                {
                    **base,
                    "ok": True,
                    "id": order["id"],
                    "number": order.get("number"),
                    "total_cents": order["total_cents"],
                    "order_status": order["status"],
                    "database": served.get("database"),
                    "pid": served.get("pid"),
                }
            )
            if order["status"] in NEXT_STATUS:
                self.open_orders[order["id"]] = {"client_ref": ref, "status": order["status"]}
        else:
            self._record({**base, "ok": False, "error": error or f"unexpected answer {status}"})

    def update(self) -> None:
        order_id = self.rng.choice(list(self.open_orders))
        known = self.open_orders[order_id]
        target = NEXT_STATUS[known["status"]]
        started = time.monotonic()
        status, body, error = self._request("PATCH", f"/api/orders/{order_id}", {"status": target})
        latency = round((time.monotonic() - started) * 1000, 1)
        base = {"op": "update", "id": order_id, "client_ref": known["client_ref"], "order_status": target, "http_status": status, "latency_ms": latency}
        if status is not None and 200 <= status < 300 and body and "order" in body:
            served = body.get("served_by") or {}
            self._record({**base, "ok": True, "order_status": body["order"]["status"], "database": served.get("database"), "pid": served.get("pid")})
            known["status"] = body["order"]["status"]
            if known["status"] not in NEXT_STATUS:
                del self.open_orders[order_id]
        else:
            self._record({**base, "ok": False, "error": error or f"unexpected answer {status}"})
            if status is not None and 400 <= status < 500:
                del self.open_orders[order_id]  # refused for good (409/404): do not insist

    # -- the loop -----------------------------------------------------------------------
    def run(self, duration: float | None = None) -> dict[str, Any]:
        deadline = self.started + duration if duration else None
        if self.load_catalogue():
            print(f"writer: {len(self.customers)} customers, {len(self.products)} products; {self.rate:g} requests/s to {self.url}", file=sys.stderr)
            interval = 1.0 / self.rate if self.rate > 0 else 0.0
            next_at = time.monotonic()
            while not self.stop_event.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if self.open_orders and self.rng.random() < self.update_ratio:
                    self.update()
                else:
                    self.create()
                next_at += interval
                now = time.monotonic()
                if next_at < now - interval:
                    next_at = now  # fell behind (slow answers): no burst to catch up
                wait = next_at - now
                if deadline is not None:
                    wait = min(wait, deadline - now)
                if wait > 0:
                    self.stop_event.wait(wait)
        return self.summary()

    def summary(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "duration_s": round(time.monotonic() - self.started, 3),
            "sent": self.sent,
            "acknowledged": self.acknowledged,
            "failed": self.failed,
            "acknowledged_creates": self.by_op["create"],
            "acknowledged_updates": self.by_op["update"],
            "longest_gap_s": round(self.longest_gap, 3),
            "longest_gap_ended_at_s": self.longest_gap_ended_at,
            "first_failure": self.first_failure,
            "last_failure": self.last_failure,
        }


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """The records of a writer log (a torn last line, from a writer killed mid-write, is skipped)."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastier_app.writer", description="Keep writing orders through the Fastier HTTP API; log every request.")
    parser.add_argument("--url", required=True, help="base URL of the app, e.g. http://127.0.0.1:8000")
    parser.add_argument("--log", required=True, help="JSON-lines file to append one record per request to")
    parser.add_argument("--rate", type=float, default=10.0, help="requests per second (default 10; 0 = as fast as answers come)")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: until SIGTERM/SIGINT)")
    parser.add_argument("--update-ratio", type=float, default=0.25, help="share of requests that advance an order's status (default 0.25)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for one answer (default 5)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    args = parser.parse_args(argv)
    if not args.url.startswith(("http://", "https://")):
        parser.error("--url must be an http:// or https:// URL")
    if args.rate < 0 or not 0 <= args.update_ratio <= 1:
        parser.error("--rate must be >= 0 and --update-ratio between 0 and 1")
    with open(args.log, "a", encoding="utf-8") as log:
        writer = Writer(args.url, log, rate=args.rate, update_ratio=args.update_ratio, timeout=args.timeout, seed=args.seed)

        def stop(signum: int, _frame: Any) -> None:
            writer.stop_event.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        summary = writer.run(args.duration)
    print(json.dumps(summary), flush=True)
    return 0 if writer.customers else 2


if __name__ == "__main__":
    sys.exit(main())
