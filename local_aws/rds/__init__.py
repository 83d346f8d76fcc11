"""Local RDS: PostgreSQL DB instances backed by real PostgreSQL servers.

``install(settings)`` hooks moto's RDS backend (``moto_rds``) so that every
``Engine=postgres`` DB instance gets a PostgreSQL cluster of its own on
127.0.0.1 (``instances``), DB snapshots and automated backups hold real data
(``snapshots``: ``pg_basebackup`` copies, archived WAL for point-in-time
recovery), adds control routes (``routes``), clears servers, snapshots and
archives a crashed run left in the state dir, and builds the template cluster
in the background. ``shutdown()`` stops every instance server and deletes its
data, backups and snapshots: moto's state lives in memory, so none of it
outlives the endpoint.

See ``docs/local-aws-rds.md`` for what is real and what is not.
"""

from __future__ import annotations

import threading
from pathlib import Path

from local_aws.settings import Settings

from .instances import Fleet, stop_leftovers

__all__ = ["install", "shutdown", "stop_leftovers_in"]


def install(settings: Settings) -> Fleet:
    from . import moto_rds, routes  # noqa: F401 - routes register on import

    fleet = Fleet(settings.pg_dir)
    fleet.claim()
    moto_rds.install(fleet)
    threading.Thread(target=fleet.template.warm, name="rds-template", daemon=True).start()
    return fleet


def shutdown() -> None:
    from .moto_rds import _installed

    fleet = _installed.pop("fleet", None)
    if fleet is not None:
        fleet.shutdown()


def stop_leftovers_in(settings: Settings) -> list[str]:
    """For ``local_aws down`` after a crash: stop orphaned instance servers."""
    return stop_leftovers(Path(settings.pg_dir))
