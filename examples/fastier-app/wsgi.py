"""WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:application``.

gunicorn does not preload the app (``preload_app = False``): every worker
imports this module and so builds its own app, reading ``FASTIER_ENV_FILE``
again. A graceful reload (SIGHUP) therefore brings the new settings in.
"""

from fastier_app import create_app

application = create_app()
