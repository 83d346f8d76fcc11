"""The Flask application: server-rendered pages, a JSON API, /healthz and /version."""

from __future__ import annotations

import logging
import os
import platform
import time
import uuid
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import psycopg
from flask import Blueprint, Flask, current_app, jsonify, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from .config import ConfigError, Settings, hostname
from .db import Database, DatabaseUnavailable, describe_error
from .migrations import applied_versions, discover

log = logging.getLogger("fastier_app")
bp = Blueprint("fastier", __name__)

STATUSES = ("new", "paid", "shipped", "delivered", "cancelled")
TRANSITIONS = {"new": {"paid", "cancelled"}, "paid": {"shipped", "cancelled"}, "shipped": {"delivered"}, "delivered": set(), "cancelled": set()}
MAX_ITEMS = 50
MAX_QUANTITY = 1000

ORDER_COLUMNS = """
    o.id, o.number, o.customer_id, c.name AS customer_name, o.status, o.total_cents,
    o.client_ref, o.created_at, o.updated_at
"""


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class State:
    """What one worker knows: its settings, its database, when it started."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.db = Database(settings)
        self.started_at = datetime.now(UTC)
        self.migrations = [f"{m.version}_{m.name}" for m in discover()]


def state() -> State:
    return current_app.extensions["fastier"]


# -- helpers ---------------------------------------------------------------------------
def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def order_json(row: dict[str, Any], items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    data = {key: _iso(value) for key, value in row.items()}
    if data.get("client_ref") is not None:
        data["client_ref"] = str(data["client_ref"])
    if items is not None:
        data["items"] = items
    return data


def fetch_order(conn: psycopg.Connection[Any], order_id: int) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {ORDER_COLUMNS} FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = %s", (order_id,)).fetchone()  # noqa: S608 - constant columns
    if row is None:
        return None
    items = conn.execute(
        """SELECT i.product_id, p.sku, p.name, i.quantity, i.unit_price_cents
             FROM order_items i JOIN products p ON p.id = i.product_id
            WHERE i.order_id = %s ORDER BY i.id""",
        (order_id,),
    ).fetchall()
    return order_json(row, items)


def served_by() -> dict[str, Any]:
    """Which process and database answered (for the writer's log)."""
    return {"pid": os.getpid(), "database": state().db.config.address()}


def record_page_view(conn: psycopg.Connection[Any]) -> None:
    """One row per page view; best effort, so pages still render on a read-only database."""
    try:
        conn.execute("INSERT INTO page_views (path, user_agent) VALUES (%s, %s)", (request.path[:500], (request.user_agent.string or "")[:300] or None))
        conn.commit()
    except psycopg.Error as exc:
        with suppress(psycopg.Error):
            conn.rollback()
        log.warning("page view not recorded: %s", describe_error(exc, state().db.config))


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}")
    return value


def _positive_int(value: Any, what: str, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (high is not None and value > high):
        raise ApiError(400, f"{what} must be an integer from 1" + (f" to {high}" if high else ""))
    return value


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


# -- pages -------------------------------------------------------------------------------
@bp.get("/")
def dashboard() -> Any:
    with state().db.connection() as conn:
        recent = conn.execute(f"SELECT {ORDER_COLUMNS} FROM orders o JOIN customers c ON c.id = o.customer_id ORDER BY o.id DESC LIMIT 20").fetchall()  # noqa: S608
        by_status = {row["status"]: row["n"] for row in conn.execute("SELECT status, count(*) AS n FROM orders GROUP BY status")}
        today = conn.execute(
            "SELECT count(*) AS orders, coalesce(sum(total_cents), 0) AS revenue FROM orders WHERE created_at >= date_trunc('day', now())"
        ).fetchone()
        customers = conn.execute("SELECT count(*) AS n FROM customers").fetchone()["n"]
        conn.commit()
        record_page_view(conn)
    counts = [(status, by_status.get(status, 0)) for status in STATUSES]
    return render_template("index.html", recent=recent, counts=counts, today=today, customers=customers)


@bp.get("/orders/<int:order_id>")
def order_page(order_id: int) -> Any:
    with state().db.connection() as conn:
        order = fetch_order(conn, order_id)
        conn.commit()
        record_page_view(conn)
    if order is None:
        return render_template("error.html", code=404, message=f"There is no order {order_id}."), 404
    return render_template("order.html", order=order, transitions=sorted(TRANSITIONS[order["status"]]))


# -- JSON API ------------------------------------------------------------------------------
@bp.get("/api/orders")
def list_orders() -> Any:
    limit = _int_arg("limit", 50, 1, 200)
    before = _int_arg("before_id", 2**62, 1, 2**62)
    status = request.args.get("status")
    if status is not None and status not in STATUSES:
        raise ApiError(400, f"status must be one of {', '.join(STATUSES)}")
    where, params = ["o.id < %s"], [before]
    if status:
        where.append("o.status = %s")
        params.append(status)
    if request.args.get("customer_id"):
        where.append("o.customer_id = %s")
        params.append(_int_arg("customer_id", 0, 1, 2**62))
    with state().db.connection() as conn:
        rows = conn.execute(
            f"SELECT {ORDER_COLUMNS} FROM orders o JOIN customers c ON c.id = o.customer_id WHERE {' AND '.join(where)} ORDER BY o.id DESC LIMIT %s",  # noqa: S608 - fixed fragments
            (*params, limit),
        ).fetchall()
    orders = [order_json(row) for row in rows]
    return jsonify(orders=orders, next_before_id=orders[-1]["id"] if len(orders) == limit else None)


@bp.get("/api/orders/<int:order_id>")
def get_order(order_id: int) -> Any:
    with state().db.connection() as conn:
        order = fetch_order(conn, order_id)
    if order is None:
        raise ApiError(404, f"order {order_id} does not exist")
    return jsonify(order=order)


@bp.post("/api/orders")
def create_order() -> Any:
    """Create an order: ``{"customer_id", "items": [{"product_id", "quantity"}], "client_ref"?}``.

    A ``client_ref`` (UUID) makes the call idempotent: the same ref again
    returns the order it created (200) instead of a second order.
    """
    body = _json_body()
    customer_id = _positive_int(body.get("customer_id"), "customer_id")
    items = body.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        raise ApiError(400, f"items must be a list of 1 to {MAX_ITEMS} {{product_id, quantity}} objects")
    lines = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise ApiError(400, f"item {number} must be an object")
        lines.append(
            (_positive_int(item.get("product_id"), f"item {number}: product_id"), _positive_int(item.get("quantity"), f"item {number}: quantity", MAX_QUANTITY))
        )
    client_ref = body.get("client_ref")
    if client_ref is not None:
        try:
            client_ref = uuid.UUID(str(client_ref))
        except ValueError:
            raise ApiError(400, "client_ref must be a UUID") from None

    with state().db.connection() as conn:
        if client_ref is not None:
            existing = conn.execute("SELECT id, customer_id FROM orders WHERE client_ref = %s", (client_ref,)).fetchone()
            if existing is not None:
                return _replay(conn, existing, customer_id, client_ref)
        if conn.execute("SELECT 1 FROM customers WHERE id = %s", (customer_id,)).fetchone() is None:
            raise ApiError(422, f"customer {customer_id} does not exist")
        wanted = sorted({pid for pid, _quantity in lines})
        prices = {row["id"]: row["price_cents"] for row in conn.execute("SELECT id, price_cents FROM products WHERE id = ANY(%s)", (wanted,))}
        missing = [pid for pid in wanted if pid not in prices]
        if missing:
            raise ApiError(422, f"product(s) {', '.join(map(str, missing))} do not exist")
        total = sum(quantity * prices[pid] for pid, quantity in lines)
        created = conn.execute(
            "INSERT INTO orders (customer_id, total_cents, client_ref) VALUES (%s, %s, %s) ON CONFLICT (client_ref) DO NOTHING RETURNING id",
            (customer_id, total, client_ref),
        ).fetchone()
        if created is None:  # the same client_ref committed by a concurrent request
            conn.rollback()
            existing = conn.execute("SELECT id, customer_id FROM orders WHERE client_ref = %s", (client_ref,)).fetchone()
            return _replay(conn, existing, customer_id, client_ref)
        order_id = created["id"]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents) VALUES (%s, %s, %s, %s)",
                [(order_id, pid, quantity, prices[pid]) for pid, quantity in lines],
            )
        order = fetch_order(conn, order_id)
    response = jsonify(order=order, served_by=served_by())
    response.status_code = 201
    response.headers["Location"] = url_for("fastier.get_order", order_id=order_id)
    return response


def _replay(conn: psycopg.Connection[Any], existing: dict[str, Any], customer_id: int, client_ref: uuid.UUID) -> Any:
    if existing["customer_id"] != customer_id:
        raise ApiError(409, f"client_ref {client_ref} was used for another customer's order")
    return jsonify(order=fetch_order(conn, existing["id"]), served_by=served_by(), replayed=True)


@bp.patch("/api/orders/<int:order_id>")
def update_order(order_id: int) -> Any:
    """Change the status: ``{"status": "paid"}``; new -> paid|cancelled, paid -> shipped|cancelled, shipped -> delivered."""
    body = _json_body()
    wanted = body.get("status")
    if wanted not in STATUSES:
        raise ApiError(400, f"status must be one of {', '.join(STATUSES)}")
    with state().db.connection() as conn:
        row = conn.execute("SELECT status FROM orders WHERE id = %s FOR UPDATE", (order_id,)).fetchone()
        if row is None:
            raise ApiError(404, f"order {order_id} does not exist")
        current = row["status"]
        if wanted != current:
            if wanted not in TRANSITIONS[current]:
                raise ApiError(409, f"order {order_id} is {current}; it cannot become {wanted}")
            conn.execute("UPDATE orders SET status = %s, updated_at = now() WHERE id = %s", (wanted, order_id))
        order = fetch_order(conn, order_id)
    return jsonify(order=order, served_by=served_by(), changed=wanted != current)


@bp.get("/api/products")
def list_products() -> Any:
    with state().db.connection() as conn:
        rows = conn.execute("SELECT id, sku, name, price_cents FROM products ORDER BY id LIMIT 1000").fetchall()
    return jsonify(products=rows)


@bp.get("/api/customers")
def list_customers() -> Any:
    limit = _int_arg("limit", 100, 1, 1000)
    with state().db.connection() as conn:
        rows = conn.execute("SELECT id, name, email FROM customers ORDER BY id LIMIT %s", (limit,)).fetchall()
    return jsonify(customers=rows)


# -- operations ---------------------------------------------------------------------------
@bp.get("/healthz")
def healthz() -> Any:
    """200 when the database answers and every migration is applied; 503 with the reason."""
    st = state()
    started = time.monotonic()
    body: dict[str, Any] = {"version": st.settings.version, "environment": st.settings.environment, "database": st.db.config.address()}

    def fail(reason: str, logged: bool = False) -> Any:
        if not logged:
            log.warning("healthz: %s", reason)
        response = jsonify(status="error", reason=reason, **body)
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        return response

    if st.settings.env_file_error:
        return fail(st.settings.env_file_error)
    timeout = st.settings.number("DB_HEALTH_TIMEOUT")
    if st.settings.problems:
        return fail("configuration: " + "; ".join(st.settings.problems))
    try:
        with st.db.connection(connect_timeout=timeout) as conn:
            writable = conn.execute("SELECT current_setting('transaction_read_only') = 'off' AS writable").fetchone()["writable"]
            applied = applied_versions(conn)
    except DatabaseUnavailable as exc:
        return fail(f"database unavailable: {exc.reason}", logged=True)  # the database layer logged it
    if applied is None:
        return fail("the schema is not migrated (no schema_migrations table): run `python -m fastier_app migrate`")
    missing = [name for name in st.migrations if name.split("_", 1)[0] not in applied]
    if missing:
        return fail(f"migrations not applied: {', '.join(missing)}")
    body["migrations"] = {"applied": len(st.migrations), "latest": st.migrations[-1] if st.migrations else None}
    body["writable"] = writable
    body["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
    return jsonify(status="ok", **body)


@bp.get("/version")
def version() -> Any:
    st = state()
    return jsonify(
        version=st.settings.version,
        environment=st.settings.environment,
        hostname=hostname(),
        pid=os.getpid(),
        database=st.db.config.address(),
        database_config=st.db.config.source,
        python=platform.python_version(),
        worker_started_at=st.started_at.isoformat(),
    )


# -- errors ----------------------------------------------------------------------------------
def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path in ("/healthz", "/version")


def _error(status: int, message: str) -> Any:
    if _wants_json():
        response = jsonify(error=message)
        response.status_code = status
    else:
        response = current_app.make_response((render_template("error.html", code=status, message=message), status))
    if status == 503:
        response.headers["Retry-After"] = "2"
    return response


def _register_errors(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Any:
        return _error(exc.status, exc.message)

    @app.errorhandler(DatabaseUnavailable)
    def unavailable(exc: DatabaseUnavailable) -> Any:
        message = "the database is read-only for maintenance; retry shortly" if exc.read_only else f"the database is unavailable: {exc.reason}"
        return _error(503, message)

    @app.errorhandler(ConfigError)
    def config_error(exc: ConfigError) -> Any:
        return _error(503, f"configuration: {exc}")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        return _error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(psycopg.Error)
    def database_error(exc: psycopg.Error) -> Any:
        log.error("database error on %s %s: %s", request.method, request.path, describe_error(exc, state().db.config))
        return _error(500, "database error")


def _money(cents: int | None) -> str:
    return f"${(cents or 0) / 100:,.2f}"


def create_app(environ: dict[str, str] | None = None) -> Flask:
    """The app for one worker: settings (with the env file) are read here, once."""
    settings = Settings.load(environ)
    logging.basicConfig(level=(settings.get("LOG_LEVEL", "INFO") or "INFO").upper(), format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s")
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    st = State(settings)
    app.extensions["fastier"] = st
    app.register_blueprint(bp)
    _register_errors(app)
    app.jinja_env.filters["money"] = _money
    static_base = settings.get("STATIC_URL")

    @app.context_processor
    def _template_globals() -> dict[str, Any]:
        def static_url(path: str) -> str:
            return f"{static_base.rstrip('/')}/{path}" if static_base else url_for("static", filename=path)

        return {"static_url": static_url, "app_version": settings.version, "environment": settings.environment}

    @app.after_request
    def _security_headers(response: Any) -> Any:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    if settings.env_file_error:
        log.error("%s", settings.env_file_error)
    # (an address behind a secret is resolved by the first connection, not here)
    where = "" if st.db.config.source == "DATABASE_SECRET_ARN" else f" {st.db.config.address()}"
    log.info("fastier-app %s (%s) worker %d: database%s from %s", settings.version, settings.environment, os.getpid(), where, st.db.config.source)
    return app
