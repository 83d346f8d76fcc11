"""Fastier: the sample Flask + PostgreSQL shop that fastier.platform migrates.

``create_app()`` builds the WSGI app (``wsgi.py`` exposes it to gunicorn);
``python -m fastier_app`` migrates and seeds the database;
``python -m fastier_app.writer`` keeps writing through the HTTP API.
Flask is imported only by ``create_app``, so the writer needs nothing but the
standard library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(environ: dict[str, Any] | None = None) -> Flask:
    from .web import create_app as _create_app

    return _create_app(environ)


__all__ = ["create_app"]
