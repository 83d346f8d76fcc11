"""A real Elastic Beanstalk backend for the local AWS endpoint.

moto's own Elastic Beanstalk is a stub (applications and bare environments).
:func:`install` replaces it in-process, before the first request:

* moto's server builds the Elastic Beanstalk app from
  ``moto.elasticbeanstalk.urls.url_paths``; we point its handler at
  :class:`~.responses.LocalEBResponse` (a subclass of moto's ``EBResponse``),
  whose methods answer the actions with our backend;
* moto's dispatch maps ``Action=CreateApplicationVersion`` to the method
  ``create_application_version`` (``camelcase_to_underscores``); install checks
  that every action we claim resolves to a method of ours;
* the backend is our own ``BackendDict`` (one backend per account and
  region), so moto's stub backend is never used;
* environments whose version has something to run run it (``serving``:
  instance processes behind an HAProxy per environment); the others are
  simulated.

See ``docs/local-aws-elasticbeanstalk.md`` for what is modelled and how it
differs from AWS.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from moto.core.utils import camelcase_to_underscores

from .runtime import RUNTIME

__all__ = ["install", "shutdown"]


def install(settings: Any) -> None:
    """Replace moto's Elastic Beanstalk with ours; ``settings.eb_delay_s`` paces transitions."""
    import moto.elasticbeanstalk.urls as eb_urls

    from local_aws.settings import ACCESS_KEY, SECRET_KEY

    from . import (
        control,  # noqa: F401 - registers the /_local/eb/ routes
        hooks,
        serving,
    )
    from .responses import ACTIONS, LocalEBResponse

    RUNTIME.delay_s = float(getattr(settings, "eb_delay_s", RUNTIME.delay_s))
    missing = [a for a in ACTIONS if not callable(getattr(LocalEBResponse, camelcase_to_underscores(a), None))]
    if missing:
        raise RuntimeError(f"local_aws.eb: no handler for {missing}")
    for path in list(eb_urls.url_paths):
        eb_urls.url_paths[path] = LocalEBResponse.dispatch
    # Codes such as ConfigurationValidationException are not error shapes of the
    # botocore model; moto warns about each. They are the codes AWS sends.
    warnings.filterwarnings("ignore", message=r"Exception\(.*\) with code .* does not match an error shape")
    state_dir = getattr(settings, "state_dir", None)
    if state_dir is not None:  # stops what a crashed endpoint left in this state folder
        serving.SUPERVISOR.configure(Path(state_dir) / "eb", str(settings.endpoint), ACCESS_KEY, SECRET_KEY)
        hooks.use(serving.factory)


def shutdown() -> None:
    """Stop every instance process and load balancer of the served environments."""
    from . import serving

    serving.SUPERVISOR.shutdown()
