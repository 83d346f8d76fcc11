"""The local AWS endpoint process: moto's WSGI app plus our extensions.

``serve()`` runs in the foreground until SIGTERM/SIGINT. Extensions are
imported and installed before the first request:

* ``local_aws.eb.install(settings)``  - Elastic Beanstalk backend;
* ``local_aws.rds.install(settings)`` - RDS instances backed by PostgreSQL;
* ``local_aws.moto_fixes.install(settings)`` - fixes of moto deviations from
  the AWS API reference that our roles meet (each one contract-tested);
* ``local_aws.frontdoor.install(settings)`` - the live URL: a loopback port
  per Route 53 record that leads to an Elastic Beanstalk environment.

An extension may also define ``shutdown()``; it is called once when the server
stops (SIGTERM from ``local_aws down``), to stop what the extension started.

An extension that fails to install stops the server with the reason: a
half-working endpoint would make every later failure confusing.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import sys
import threading
from typing import Any

from .control import ControlMiddleware, route
from .settings import Settings

EXTENSIONS = ("local_aws.eb", "local_aws.rds", "local_aws.moto_fixes", "local_aws.frontdoor")

log = logging.getLogger("local_aws")
_started: dict[str, Any] = {}


@route("GET", "/_local/health")
def _health(_body: Any) -> tuple[int, Any]:
    return 200, {"ok": True, **_started}


_modules: list[Any] = []


def install_extensions(settings: Settings) -> list[str]:
    installed = []
    for name in EXTENSIONS:
        module = importlib.import_module(name)
        module.install(settings)
        _modules.append(module)
        installed.append(name)
    return installed


def shutdown_extensions() -> None:
    for module in reversed(_modules):
        hook = getattr(module, "shutdown", None)
        if hook is None:
            continue
        try:
            hook()
        except Exception:  # keep stopping the others
            log.exception("shutdown of %s failed", module.__name__)


def build_app(settings: Settings) -> Any:
    # AWS managed IAM policies (AWSElasticBeanstalkWebTier, ...) exist in
    # every real account; moto loads them only when asked, before first use.
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    extensions = install_extensions(settings)
    _started.update({"endpoint": settings.endpoint, "extensions": extensions})
    return ControlMiddleware(DomainDispatcherApplication(create_backend_app))


def make_server(settings: Settings) -> Any:
    from werkzeug.serving import make_server as werkzeug_make_server

    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing to bind {settings.host}: the local AWS listens on loopback only")
    app = build_app(settings)
    return werkzeug_make_server(settings.host, settings.port, app, threaded=True)


def serve(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    # werkzeug logs every request at INFO; keep the log readable.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(settings)
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        log.info("signal %s: shutting down", signum)
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("local AWS listening on %s (%s)", settings.endpoint, json.dumps(_started.get("extensions")))
    try:
        server.serve_forever()
    finally:
        shutdown_extensions()
    log.info("stopped")
    return 0
