"""Realistic demo data: customers, a product catalogue, orders with items.

Loaded with COPY in one transaction, so tens of thousands of orders take a
second or two. The data is deterministic for a given ``--seed``. Ids are
given explicitly (above anything already there) and the identity sequences
are moved past them, so the app's own inserts continue after the seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from .migrations import discover, pending


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    return tuple(word.strip() for word in text.split(sep))


FIRST = _words(
    "Ada Alan Alice Amara Ana Ben Bianca Carlos Chen Chloe Dara David Elena Emeka Eva Farah Felix Grace Hana Hugo Ines Ivan Jamal Jin Julia "
    "Kai Karim Lena Leo Lucia Maya Mei Nadia Noah Olga Omar Priya Rafael Rosa Sam Sara Tariq Theo Uma Victor Wen Yara Yusuf Zoe"
)
LAST = _words(
    "Adeyemi Alvarez Andersen Baker Bianchi Chen Cohen Costa Dubois Eriksen Fischer Garcia Gupta Haddad Hansen Ito Jansen Kim Kowalski "
    "Larsen Lopez Martin Meyer Moreau Nakamura Nguyen Novak Okafor Olsen Patel Petrov Quinn Rossi Sato Schmidt Silva Singh Smith Tanaka "
    "Torres Walker Wang Weber Wilson Yilmaz Zhang"
)
ADJECTIVES = _words("Classic Compact Deluxe Eco Ergonomic Everyday Heavy-duty Lightweight Modular Portable Premium Smart Travel Vintage Wireless")
NOUNS = _words("Backpack, Blender, Desk Lamp, Headphones, Kettle, Keyboard, Monitor Stand, Mug, Notebook, Speaker, Tent, Umbrella, Water Bottle, Webcam", ",")
STATUS_BY_AGE = (
    (1, (("new", 60), ("paid", 35), ("cancelled", 5))),
    (4, (("paid", 30), ("shipped", 60), ("cancelled", 10))),
    (10_000, (("delivered", 88), ("shipped", 4), ("cancelled", 8))),
)
TABLES = ("customers", "products", "orders", "order_items")


class SeedError(Exception):
    pass


def _status(rng: random.Random, age_days: float) -> str:
    for limit, choices in STATUS_BY_AGE:
        if age_days < limit:
            names, weights = zip(*choices, strict=True)
            return rng.choices(names, weights)[0]
    raise AssertionError("unreachable")


def _next_id(conn: psycopg.Connection[Any], table: str) -> int:
    """First id above the rows and the identity sequence of ``table``."""
    seq = conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()[0]
    row = conn.execute(
        sql.SQL("SELECT greatest((SELECT coalesce(max(id), 0) FROM {t}), (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {s}))").format(
            t=sql.Identifier(table), s=sql.SQL(seq)
        )
    ).fetchone()
    return int(row[0]) + 1


def seed(
    conn: psycopg.Connection[Any],
    *,
    customers: int,
    orders: int,
    products: int = 60,
    rng_seed: int = 42,
    force: bool = False,
    days: int = 90,
    say: Callable[[str], None] = print,
) -> dict[str, int]:
    """Insert the data in one transaction; returns the row counts added."""
    if customers < 0 or orders < 0 or products < 0:
        raise SeedError("counts must not be negative")
    rng = random.Random(rng_seed)  # noqa: S311 - demo data, reproducible on purpose
    with conn.transaction():
        waiting = pending(conn, discover())
        if waiting:
            raise SeedError(f"the schema is not migrated ({len(waiting)} pending): run `python -m fastier_app migrate` first")
        conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(sql.SQL(", ").join(map(sql.Identifier, TABLES))))
        counts = {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0] for t in ("customers", "products", "orders")}
        if any(counts.values()) and not force:
            raise SeedError(
                "the database is not empty ({}); refusing to seed it (--force adds rows anyway)".format(", ".join(f"{v} {k}" for k, v in counts.items()))
            )
        now = datetime.now(UTC)

        # products: only into an empty catalogue; otherwise the orders use the existing one
        catalogue: list[tuple[int, int]] = [tuple(r) for r in conn.execute("SELECT id, price_cents FROM products")]
        added_products = 0
        last_product = None
        if not catalogue and products:
            first = _next_id(conn, "products")
            last_product = first + products - 1
            with conn.cursor().copy("COPY products (id, sku, name, price_cents, created_at) FROM STDIN") as copy:
                for pid in range(first, first + products):
                    price = rng.choice((499, 999, 1499, 1999, 2499, 3999, 4999, 7999, 12999, 19999)) + rng.choice((0, 0, 50, 100))
                    name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
                    copy.write_row((pid, f"FA-{pid:05d}", name, price, now - timedelta(days=days + 30)))
                    catalogue.append((pid, price))
            added_products = products
        if orders and not catalogue:
            raise SeedError("there are no products to order (--products 0 on an empty catalogue)")

        customer_ids = [r[0] for r in conn.execute("SELECT id FROM customers")] if force else []
        first_customer = _next_id(conn, "customers")
        with conn.cursor().copy("COPY customers (id, email, name, created_at) FROM STDIN") as copy:
            for cid in range(first_customer, first_customer + customers):
                given, family = rng.choice(FIRST), rng.choice(LAST)
                joined = now - timedelta(days=days + rng.random() * 365)
                copy.write_row((cid, f"{given}.{family}.{cid}@example.com".lower(), f"{given} {family}", joined))
                customer_ids.append(cid)
        if orders and not customer_ids:
            raise SeedError("there are no customers to place orders (--customers 0 on an empty database)")

        first = _next_id(conn, "orders")
        # times ascending with the ids, as a live shop's would be
        ages = sorted((rng.random() ** 1.5 * days for _order in range(orders)), reverse=True)
        items_added = 0
        order_rows = []
        item_rows = []
        for offset, age in enumerate(ages):
            oid = first + offset
            created = now - timedelta(days=age)
            total = 0
            for _line in range(rng.choice((1, 1, 2, 2, 3, 4))):
                pid, price = rng.choice(catalogue)
                quantity = rng.choice((1, 1, 1, 2, 3))
                item_rows.append((oid, pid, quantity, price))
                total += quantity * price
            status = _status(rng, age)
            updated = created if status == "new" else min(now, created + timedelta(hours=rng.random() * 48))
            order_rows.append((oid, rng.choice(customer_ids), status, total, created, updated))
        with conn.cursor().copy("COPY orders (id, customer_id, status, total_cents, created_at, updated_at) FROM STDIN") as copy:
            for row in order_rows:
                copy.write_row(row)
        with conn.cursor().copy("COPY order_items (order_id, product_id, quantity, unit_price_cents) FROM STDIN") as copy:
            for row in item_rows:
                copy.write_row(row)
        items_added = len(item_rows)

        # the identity sequences continue after the ids given here
        for table, last in (("products", last_product), ("customers", first_customer + customers - 1), ("orders", first + orders - 1)):
            if last is not None and last >= 1:
                conn.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", (table, last))
    added = {"customers": customers, "products": added_products, "orders": orders, "order_items": items_added}
    say("seeded " + ", ".join(f"{v} {k}" for k, v in added.items()))
    return added
