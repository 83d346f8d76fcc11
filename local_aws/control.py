"""Control interface of the local AWS, outside the AWS API.

Routes live under ``/_local/``; every request and response body is JSON.
Extensions register handlers with :func:`route`::

    @route("POST", "/_local/eb/environments/<name>/health")
    def set_health(body, name):
        ...
        return 200, {"environment": name}

A handler returns ``(status, payload)`` or raises :class:`ControlError`.
This is how tests make an environment turn Red or a deploy fail; nothing here
is reachable through boto3, so the AWS-facing behaviour stays that of AWS.
"""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Callable
from typing import Any

Handler = Callable[..., tuple[int, Any]]

_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


class ControlError(Exception):
    """A control request that cannot be carried out (maps to an HTTP status)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _compile(path: str) -> re.Pattern[str]:
    pattern = re.sub(r"<([a-zA-Z_]+)>", r"(?P<\1>[^/]+)", path)
    return re.compile(f"^{pattern}$")


def route(method: str, path: str) -> Callable[[Handler], Handler]:
    """Register ``handler`` for ``method`` and a path with ``<name>`` parts."""

    def decorator(handler: Handler) -> Handler:
        _ROUTES.append((method.upper(), _compile(path), handler))
        return handler

    return decorator


def routes() -> list[tuple[str, str]]:
    """(method, pattern) of every registered route, for ``GET /_local/``."""
    return [(m, p.pattern) for m, p, _ in _ROUTES]


class ControlMiddleware:
    """WSGI middleware: ``/_local/*`` is ours, everything else goes to moto."""

    prefix = "/_local/"

    def __init__(self, inner: Callable[..., Any]):
        self.inner = inner

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if not (path.startswith(self.prefix) or path == self.prefix.rstrip("/")):
            return self.inner(environ, start_response)
        status, payload = self._handle(environ, path)
        body = json.dumps(payload, default=str, indent=1).encode()
        start_response(
            f"{status} {'OK' if status < 400 else 'ERROR'}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]

    def _handle(self, environ: dict[str, Any], path: str) -> tuple[int, Any]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if path.rstrip("/") == "/_local":
            return 200, {"routes": [{"method": m, "path": p} for m, p in routes()]}
        body: Any = {}
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length:
            raw = environ["wsgi.input"].read(length)
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return 400, {"error": "request body is not JSON"}
        matched_path = False
        for route_method, pattern, handler in _ROUTES:
            match = pattern.match(path)
            if not match:
                continue
            matched_path = True
            if route_method != method:
                continue
            try:
                return handler(body, **match.groupdict())
            except ControlError as exc:
                return exc.status, {"error": exc.message}
            except Exception as exc:  # the endpoint must answer, not die
                return 500, {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
        if matched_path:
            return 405, {"error": f"{method} not allowed on {path}"}
        return 404, {"error": f"no control route {path}"}
