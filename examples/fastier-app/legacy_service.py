#!/usr/bin/env python3
"""The Fastier app as a service on the "legacy server" (stands in for systemd on the t3.medium).

    legacy_service.py start  --dir RUN_DIR --port P [--env-file F] [--workers N] [--timeout S]
    legacy_service.py reload --dir RUN_DIR [--timeout S]
    legacy_service.py repoint --dir RUN_DIR --env-from FILE [--timeout S]
    legacy_service.py stop   --dir RUN_DIR [--timeout S]
    legacy_service.py status --dir RUN_DIR

``start`` runs gunicorn daemonized from this folder (pid file, access and
error logs in RUN_DIR) on 127.0.0.1:P and waits until ``/healthz`` answers
200; when it does not, it prints the answer and the error log's tail, stops
what it started and exits 1. Already running: exit 0.

``reload`` sends SIGHUP: gunicorn starts new workers, which build the app
again and so read the env file again, and lets the old ones finish their
requests (no request is dropped). It returns once every old worker is gone
and ``/healthz`` answers 200 from a new one; otherwise exit 1 with the reason.
Rewrite the env file, then reload: that repoints the app (e.g. at RDS).

``repoint`` does both: the env file the service reads is replaced, in one
step (a new file renamed over it, mode 600), by the content of ``--env-from``,
then the service reloads. It is what a cut-over's hand-over runs (a program
without a shell) to move the running app onto another database.

``stop`` sends SIGTERM (gunicorn finishes the requests in flight), waits
``--timeout`` seconds, then SIGKILLs the process group. Not running: exit 0.

``status`` prints JSON (running, pid, port, since, workers, health); exit 0
when running, 3 when not (as ``systemctl status``).

gunicorn is the one beside the Python running this script (same venv).
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

APP_DIR = Path(__file__).resolve().parent
HOST = "127.0.0.1"


class ServiceError(Exception):
    pass


class Service:
    def __init__(self, run_dir: Path):
        self.run_dir = run_dir.resolve()
        self.pid_file = self.run_dir / "gunicorn.pid"
        self.state_file = self.run_dir / "service.json"
        self.access_log = self.run_dir / "access.log"
        self.error_log = self.run_dir / "error.log"

    # -- process facts (Linux /proc) -----------------------------------------------------
    def state(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def pid(self) -> int | None:
        """The master's pid when it runs (and is ours: its command line names our pid file).

        gunicorn rewrites its pid file on a reload; in that instant the pid
        recorded at start (service.json) answers.
        """
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            pid = self.state().get("pid")
        if not isinstance(pid, int):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        ours = str(self.pid_file).encode() in cmdline.split(b"\0") or b"gunicorn: master [fastier-app]" in cmdline  # (setproctitle's form)
        if not ours or not _alive(pid):
            return None
        return pid

    def workers(self, master: int) -> list[int]:
        return sorted(pid for pid, ppid in _children() if ppid == master and _proc_state(pid) not in ("Z", None))

    def _forget_pid(self) -> None:
        state = self.state()
        if state.pop("pid", None) is not None:
            self.state_file.write_text(json.dumps(state, indent=2) + "\n")

    def url(self, port: int, path: str) -> str:
        return f"http://{HOST}:{port}{path}"

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.error_log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no error log)"

    # -- commands ------------------------------------------------------------------------
    def start(self, port: int, env_file: str | None, workers: int | None, timeout: float) -> int:
        running = self.pid()
        if running:
            print(f"already running (pid {running}, port {self.state().get('port')})")
            return 0
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.pid_file.unlink(missing_ok=True)
        self.state_file.unlink(missing_ok=True)
        gunicorn = Path(sys.executable).parent / "gunicorn"
        cmd = [str(gunicorn)] if gunicorn.exists() else [sys.executable, "-m", "gunicorn"]
        cmd += [
            "--config",
            str(APP_DIR / "gunicorn.conf.py"),
            "--chdir",
            str(APP_DIR),
            "--bind",
            f"{HOST}:{port}",
            "--pid",
            str(self.pid_file),
            "--access-logfile",
            str(self.access_log),
            "--error-logfile",
            str(self.error_log),
            "--capture-output",
            "--daemon",
        ]
        if workers:
            cmd += ["--workers", str(workers)]
        env = dict(os.environ, PORT=str(port))
        if env_file:
            env["FASTIER_ENV_FILE"] = str(Path(env_file).resolve())
        proc = subprocess.run(cmd, env=env, cwd=APP_DIR, capture_output=True, text=True, timeout=60, check=False)
        if proc.returncode != 0:
            print(f"gunicorn did not start (exit {proc.returncode}):\n{proc.stderr.strip() or proc.stdout.strip()}", file=sys.stderr)
            return 1
        deadline = time.monotonic() + timeout
        master = None
        last = "no answer yet"
        while time.monotonic() < deadline:
            master = master or self.pid()
            if master is None and self.pid_file.exists() and not self.pid():
                time.sleep(0.2)  # the pid file may be a moment ahead of /proc
                if not self.pid():
                    break  # wrote its pid file and died
            if master is not None:
                status, body = http_json(self.url(port, "/healthz"))
                if status == 200:
                    started = {
                        "pid": master,
                        "port": port,
                        "env_file": env.get("FASTIER_ENV_FILE"),
                        "workers": workers,
                        "started_at": _now(),
                        "app_dir": str(APP_DIR),
                    }
                    self.state_file.write_text(json.dumps(started, indent=2) + "\n")
                    print(f"started (pid {master}, http://{HOST}:{port}, workers {self.workers(master)}, database {body.get('database')})")
                    return 0
                last = f"/healthz answered {status}: {body.get('reason') if body else 'no JSON'}" if status else f"/healthz: {body}"
                if not _alive(master):
                    master = None
                    break
            time.sleep(0.2)
        print(f"the app did not become healthy within {timeout:.0f}s ({last}); error log {self.error_log}:\n{self.log_tail()}", file=sys.stderr)
        if self.pid():
            self.stop(10)
        return 1

    def reload(self, timeout: float, env_file: str | None = None) -> int:
        master = self.pid()
        if master is None:
            print("not running", file=sys.stderr)
            return 1
        state = self.state()
        if env_file and str(Path(env_file).resolve()) != state.get("env_file"):
            print(f"the service reads {state.get('env_file')}; a reload cannot change that (stop and start instead)", file=sys.stderr)
            return 1
        if not state.get("port"):
            print(f"{self.state_file} does not say which port the service uses; stop and start it again", file=sys.stderr)
            return 1
        port = int(state["port"])
        old = set(self.workers(master))
        expected = len(old) or 1
        os.kill(master, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        last = "old workers still running"
        while time.monotonic() < deadline:
            if not _alive(master):
                print(f"gunicorn exited during the reload; error log:\n{self.log_tail()}", file=sys.stderr)
                return 1
            current = set(self.workers(master))
            if current and not current & old and len(current) >= expected:
                status, body = http_json(self.url(port, "/healthz"))
                _vstatus, version = http_json(self.url(port, "/version"))
                if status == 200 and version and version.get("pid") in current:
                    print(f"reloaded (workers {sorted(old)} -> {sorted(current)}, database {body.get('database')})")
                    return 0
                last = f"/healthz answered {status}: {(body or {}).get('reason', body)}"
            time.sleep(0.1)
        print(f"the reload did not complete within {timeout:.0f}s ({last}); error log:\n{self.log_tail()}", file=sys.stderr)
        return 1

    def repoint(self, env_from: str, timeout: float) -> int:
        env_file = self.state().get("env_file")
        if self.pid() is None:
            print("not running", file=sys.stderr)
            return 1
        if not env_file:
            print("the service was started without --env-file: nothing to repoint", file=sys.stderr)
            return 1
        try:
            content = Path(env_from).read_bytes()
        except OSError as exc:
            print(f"cannot read {env_from}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        target = Path(env_file)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        os.replace(tmp, target)
        print(f"{target} replaced by the content of {env_from}")
        return self.reload(timeout)

    def stop(self, timeout: float) -> int:
        master = self.pid()
        if master is None:
            self.pid_file.unlink(missing_ok=True)
            self._forget_pid()
            print("not running")
            return 0
        group = os.getpgid(master)
        members = {master, *self.workers(master)}
        os.kill(master, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_alive(pid) for pid in members):
            time.sleep(0.1)
        killed = False
        if any(_alive(pid) for pid in members):
            # gunicorn's daemon runs in its own session: its process group is only it and its workers
            if group != os.getpgid(0):
                os.killpg(group, signal.SIGKILL)
            for pid in members:
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
            killed = True
            end = time.monotonic() + 10
            while time.monotonic() < end and any(_alive(pid) for pid in members):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        self._forget_pid()
        left = sorted(pid for pid in members if _alive(pid))
        if left:
            print(f"processes {left} survived SIGKILL", file=sys.stderr)
            return 1
        print("stopped" + (f" (SIGKILL after {timeout:.0f}s)" if killed else ""))
        return 0

    def status(self) -> int:
        master = self.pid()
        state = self.state()
        info: dict[str, Any] = {"running": master is not None, "pid": master, "port": state.get("port"), "since": None, "workers": []}
        if master is not None:
            info["since"] = _started_at(master)
            info["workers"] = self.workers(master)
            info["env_file"] = state.get("env_file")
            status, body = http_json(self.url(int(state["port"]), "/healthz"), timeout=3) if state.get("port") else (None, None)
            info["healthy"] = status == 200
            info["health"] = body
        print(json.dumps(info, indent=2))
        return 0 if master is not None else 3


# -- helpers -------------------------------------------------------------------------------
def http_json(url: str, timeout: float = 5.0) -> tuple[int | None, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback URL built here
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        try:
            return err.code, json.loads(err.read() or b"null")
        except ValueError:
            return err.code, None
    except (urllib.error.URLError, OSError, ValueError) as err:
        return None, str(getattr(err, "reason", err))


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields after "pid (comm)"; [0] is the state


def _proc_state(pid: int) -> str | None:
    fields = _stat(pid)
    return fields[0] if fields else None


def _alive(pid: int) -> bool:
    return _proc_state(pid) not in (None, "Z", "X")


def _children() -> list[tuple[int, int]]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields:
                found.append((int(entry.name), int(fields[1])))
    return found


def _started_at(pid: int) -> str | None:
    fields = _stat(pid)
    if not fields:
        return None
    ticks = int(fields[19])  # starttime, in clock ticks after boot
    boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime "))
    return datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), UTC).isoformat(timespec="seconds")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the Fastier app under gunicorn as the legacy server's service.")
    parser.add_argument("command", choices=("start", "stop", "reload", "repoint", "status"))
    parser.add_argument("--dir", required=True, type=Path, help="run folder: pid file, logs, service.json")
    parser.add_argument("--port", type=int, help="port on 127.0.0.1 (start; the others read it from the run folder)")
    parser.add_argument("--env-file", help="KEY=VALUE file the app reads in every new worker (FASTIER_ENV_FILE)")
    parser.add_argument("--env-from", help="repoint: the file whose content replaces the env file the service reads")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: WEB_CONCURRENCY or 2 x CPUs + 1)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for health, a reload or a graceful stop (default 30)")
    args = parser.parse_args(argv)
    service = Service(args.dir)
    if args.command == "start":
        if not args.port:
            parser.error("start needs --port")
        return service.start(args.port, args.env_file, args.workers, args.timeout)
    if args.port and args.command != "status" and service.pid() and service.state().get("port") not in (None, args.port):
        parser.error(f"the service runs on port {service.state().get('port')}, not {args.port}")
    if args.command == "reload":
        return service.reload(args.timeout, args.env_file)
    if args.command == "repoint":
        if not args.env_from:
            parser.error("repoint needs --env-from")
        return service.repoint(args.env_from, args.timeout)
    if args.command == "stop":
        return service.stop(args.timeout)
    return service.status()


if __name__ == "__main__":
    sys.exit(main())
