"""``python -m local_aws``: start, stop and inspect the local AWS stack.

up       start the PostgreSQL clusters and the endpoint, return once it answers
down     stop exactly what ``up`` started (recorded in <state>/state.json)
status   show what runs
env      print shell ``export`` lines for clients of the endpoint
url      the live URL of a Route 53 record (its front door), or every record's
run      up, run a command with the client environment, down (always)
serve    run the endpoint in the foreground (what ``up`` starts)
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
from pathlib import Path
from typing import Any

from .postgres import PostgresError, clusters_for
from .settings import ACCESS_KEY, DEFAULT_REGION, SECRET_KEY, Settings


def say(message: str) -> None:
    print(f"local-aws: {message}", flush=True)


def client_env(settings: Settings) -> dict[str, str]:
    """Environment a client of this stack needs (no real credentials)."""
    return {
        "LOCAL_AWS_ENDPOINT": settings.endpoint,
        "LOCAL_AWS_STATE_DIR": str(settings.state_dir),
        "LOCAL_AWS_PORT": str(settings.port),
        "LOCAL_PG_LEGACY_PORT": str(settings.legacy_pg_port),
        "LOCAL_EB_DELAY_S": str(settings.eb_delay_s),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", DEFAULT_REGION),
    }


def endpoint_answers(settings: Settings, timeout: float = 1.0) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{settings.endpoint}/_local/health", timeout=timeout) as resp:  # noqa: S310 - loopback http
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    # When we started the endpoint ourselves (pytest's fixture, `run`), a dead
    # one is our zombie until reaped: reap it, or kill(pid, 0) says "alive".
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_our_server(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"local_aws" in cmdline and b"serve" in cmdline


def start_stack(settings: Settings, wait_s: float = 60.0) -> dict[str, Any]:
    """Start what is not running yet; record what we started. Idempotent."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    state = settings.load_state()
    started_clusters: list[str] = list(state.get("started_clusters", []))
    clusters = clusters_for(settings.pg_dir, settings.legacy_pg_port)
    started_now: list[str] = []
    try:
        for name, cluster in clusters.items():
            if cluster.is_initialized() and not cluster.is_running():
                cluster.set_port(cluster.port)
            if cluster.start():
                say(f"PostgreSQL '{name}' started on 127.0.0.1:{cluster.port}")
                started_now.append(name)
                if name not in started_clusters:
                    started_clusters.append(name)
            else:
                say(f"PostgreSQL '{name}' already running on 127.0.0.1:{cluster.port}")
        pid = _start_endpoint(settings, wait_s)
    except BaseException:
        # leave nothing behind that this call started
        for name in started_now:
            clusters[name].stop()
            say(f"PostgreSQL '{name}' stopped (start failed)")
        raise
    state = {
        "server_pid": pid,
        "started_clusters": started_clusters,
        "clusters": {name: c.to_json() for name, c in clusters.items()},
    }
    settings.save(state)
    return settings.load_state()


def _start_endpoint(settings: Settings, wait_s: float) -> int:
    """Start the endpoint unless ours already answers; return its pid."""
    pid = int(settings.pid_file.read_text()) if settings.pid_file.exists() else None
    if pid and _pid_alive(pid) and _is_our_server(pid) and endpoint_answers(settings):
        say(f"endpoint already running at {settings.endpoint} (pid {pid})")
    else:
        if endpoint_answers(settings):
            raise SystemExit(f"something else answers on {settings.endpoint}; set LOCAL_AWS_PORT to a free port")
        log = settings.log_file.open("ab")
        env = {**os.environ, **client_env(settings), "PYTHONUNBUFFERED": "1"}
        project_root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [project_root, env.get("PYTHONPATH")]))
        proc = subprocess.Popen(
            [sys.executable, "-m", "local_aws", "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            cwd=project_root,
        )
        settings.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + wait_s
        while not endpoint_answers(settings):
            if proc.poll() is not None:
                settings.pid_file.unlink(missing_ok=True)
                raise SystemExit(f"the endpoint exited with {proc.returncode}; last lines of {settings.log_file}:\n{_tail(settings.log_file)}")
            if time.monotonic() > deadline:
                proc.terminate()
                proc.wait(10)
                settings.pid_file.unlink(missing_ok=True)
                raise SystemExit(f"the endpoint did not answer within {wait_s:.0f}s; see {settings.log_file}:\n{_tail(settings.log_file)}")
            time.sleep(0.1)
        pid = proc.pid
        say(f"endpoint answering at {settings.endpoint} (pid {pid})")
    return pid


def stop_stack(settings: Settings) -> None:
    state = settings.load_state()
    pid = state.get("server_pid")
    if not pid and settings.pid_file.exists():
        pid = int(settings.pid_file.read_text())
    if pid and _pid_alive(pid) and _is_our_server(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        say(f"endpoint stopped (pid {pid})")
    elif pid:
        say(f"endpoint pid {pid} is not running")
    settings.pid_file.unlink(missing_ok=True)
    # RDS instance servers end with the endpoint; after a crash of the
    # endpoint they are orphans, and ours to stop.
    from .rds import stop_leftovers_in

    for leftover in stop_leftovers_in(settings):
        say(f"RDS instance server {leftover} stopped (left by a crashed endpoint)")
    # So do the instance processes and load balancers of Elastic Beanstalk environments.
    from .eb.serving import stop_leftovers_in as stop_eb_leftovers_in

    for leftover in stop_eb_leftovers_in(settings):
        say(f"Elastic Beanstalk {leftover} stopped (left by a crashed endpoint)")
    from .frontdoor import stop_leftovers_in as stop_door_leftovers_in

    for leftover in stop_door_leftovers_in(settings):
        say(f"front door {leftover} stopped (left by a crashed endpoint)")
    clusters = clusters_for(settings.pg_dir, settings.legacy_pg_port)
    for name in state.get("started_clusters", []):
        cluster = clusters.get(name)
        if cluster and cluster.stop():
            say(f"PostgreSQL '{name}' stopped")
    if state:
        state.update({"server_pid": None, "started_clusters": []})
        settings.save({k: v for k, v in state.items() if k not in settings.to_json()})


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def cmd_status(settings: Settings) -> int:
    health = endpoint_answers(settings)
    clusters = clusters_for(settings.pg_dir, settings.legacy_pg_port)
    print(f"endpoint {settings.endpoint}: {'answering' if health else 'down'}")
    for name, cluster in clusters.items():
        print(f"postgres {name} 127.0.0.1:{cluster.port}: {'running' if cluster.is_running() else 'stopped'}")
    return 0 if health else 3


def front_door_records(settings: Settings) -> list[dict[str, Any]] | None:
    """The front door's records: from the endpoint, or from ``<state>/frontdoor.json`` when it does not answer."""
    try:
        with urllib.request.urlopen(f"{settings.endpoint}/_local/frontdoor", timeout=5) as resp:  # noqa: S310 - loopback http
            return json.loads(resp.read())["records"]
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        pass
    try:
        return json.loads((settings.state_dir / "frontdoor.json").read_text())["records"]
    except (OSError, ValueError, KeyError):
        return None


def _targets(record: dict[str, Any]) -> str:
    parts = []
    for target in record.get("targets", []):
        where = f"{target['environment_name']} ({target.get('version_label') or 'no version'})" if target.get("environment_name") else target["name"]
        served = "" if target.get("url") else ", not served"
        parts.append(f"{where} {target['share'] * 100:.0f}%{served}")
    return ", ".join(parts) or "nothing"


def _answers(url: str) -> bool:
    """Whether the app answers at ``url`` (any status below 500: a 404 is an app that runs)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback http
            return resp.status < 500
    except urllib.error.HTTPError as err:
        return err.code < 500
    except (urllib.error.URLError, OSError):
        return False


def cmd_url(settings: Settings, name: str | None, wait_s: float, as_json: bool) -> int:
    """Print the live URL of record ``name`` (every record without a name); rc 1 when there is none.

    With ``wait_s``, wait until an environment that runs its version answers there (rc 1 if none does by then).
    """
    deadline = time.monotonic() + wait_s
    while True:
        records = front_door_records(settings)
        if records is None:
            registry = settings.state_dir / "frontdoor.json"
            print(f"local-aws: neither the endpoint {settings.endpoint} nor {registry} answers: is the local AWS up?", file=sys.stderr)
            return 1
        if name is None:
            if as_json:
                print(json.dumps(records, indent=1))
            for record in [] if as_json else records:
                print(f"{record['name']:40} {record.get('url') or '-':28} -> {_targets(record)}")
            return 0
        wanted = name.strip().lower().rstrip(".")
        found = next((r for r in records if r["name"] == wanted), None)
        if found is not None and found.get("url") and (wait_s <= 0 or (found.get("served_share", 0) > 0 and _answers(found["url"]))):
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    if found is None:
        known = ", ".join(r["name"] for r in records) or "none"
        print(
            f"local-aws: no record {wanted} of a local hosted zone leads to an Elastic Beanstalk environment (records that do: {known})",
            file=sys.stderr,
        )
        return 1
    if not found.get("url"):
        print(f"local-aws: the front door of {wanted} could not start: {found.get('error')}", file=sys.stderr)
        return 1
    print(json.dumps(found, indent=1) if as_json else found["url"])
    if found.get("served_share", 0) <= 0:
        print(f"local-aws: {wanted} leads to no environment that runs its version yet: {_targets(found)}", file=sys.stderr)
        return 1 if wait_s > 0 else 0
    if wait_s > 0 and not _answers(found["url"]):
        print(f"local-aws: nothing answered at {found['url']} within {wait_s:.0f} s ({_targets(found)})", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_aws", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up")
    sub.add_parser("down")
    sub.add_parser("status")
    sub.add_parser("env")
    sub.add_parser("serve")
    url = sub.add_parser("url", help="the live URL of a Route 53 record (python -m local_aws url fastier.example)")
    url.add_argument("name", nargs="?", help="record name, e.g. fastier.example or www.fastier.example; none: every record")
    url.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help="wait until an environment that runs its version answers there")
    url.add_argument("--json", action="store_true", help="the whole record (targets, shares, versions) as JSON")
    run = sub.add_parser("run")
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="command to run (after --)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()

    try:
        if args.command == "serve":
            from .server import serve

            return serve(settings)
        if args.command == "up":
            start_stack(settings)
            return 0
        if args.command == "down":
            stop_stack(settings)
            return 0
        if args.command == "status":
            return cmd_status(settings)
        if args.command == "url":
            return cmd_url(settings, args.name, args.wait, args.json)
        if args.command == "env":
            for key, value in client_env(settings).items():
                print(f"export {key}={value}")
            return 0
        if args.command == "run":
            cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            if not cmd:
                parser.error("run needs a command after --")
            try:
                start_stack(settings)
                return subprocess.call(cmd, env={**os.environ, **client_env(settings)})
            finally:
                stop_stack(settings)
                say("everything this run started is stopped")
    except PostgresError as exc:
        print(f"local-aws: {exc}", file=sys.stderr)
        return 2
    return 0
