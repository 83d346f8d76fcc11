"""gunicorn settings of the Fastier app, all from environment variables.

``gunicorn -c gunicorn.conf.py`` starts ``wsgi:application``. Command-line
options win over this file. On SIGHUP gunicorn reads this file again, starts
new workers (each builds the app and reads ``FASTIER_ENV_FILE`` again) and
stops the old ones gracefully once they finish their requests.

``BIND`` (or ``127.0.0.1:$PORT``, PORT default 8000: nginx or the load
balancer is in front), ``WEB_CONCURRENCY`` workers (2 x CPUs + 1),
``GUNICORN_THREADS`` (1 = sync workers; more = gthread), ``GUNICORN_TIMEOUT``
(30 s), ``GUNICORN_GRACEFUL_TIMEOUT`` (20 s), ``GUNICORN_MAX_REQUESTS`` (1000,
0 = never recycle) with ``GUNICORN_MAX_REQUESTS_JITTER`` (100),
``GUNICORN_ACCESS_LOG`` / ``GUNICORN_ERROR_LOG`` (``-`` = stdout/stderr),
``LOG_LEVEL`` (info).
"""

import multiprocessing
import os


def _int(name, default):
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise SystemExit(f"gunicorn.conf.py: {name}={value!r} is not an integer") from exc


wsgi_app = "wsgi:application"
bind = [os.environ.get("BIND") or f"127.0.0.1:{_int('PORT', 8000)}"]
workers = _int("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1)
threads = _int("GUNICORN_THREADS", 1)
worker_class = "gthread" if threads > 1 else "sync"
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 20)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
max_requests = _int("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 100)

# Not preloaded: each worker builds the app itself, so a graceful reload
# (SIGHUP) re-reads the code and FASTIER_ENV_FILE.
preload_app = False

proc_name = "fastier-app"
# gunicorn >= 25 opens a control socket at one fixed path per user
# (~/.gunicorn/gunicorn.ctl), shared by every instance on the host; this app
# is managed with signals (HUP, TERM), so it opens none.
control_socket_disable = True
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# client (X-Forwarded-For when behind a proxy), request, status, bytes, request time
access_log_format = '%({x-forwarded-for}i)s %(h)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s" pid=%(p)s'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# heartbeat files in memory, not on the (EBS) disk: gunicorn's advice for EC2 and containers
SHM = "/dev/shm"  # noqa: S108 - a tmpfs for gunicorn's own heartbeat files
if os.path.isdir(SHM):
    worker_tmp_dir = SHM
