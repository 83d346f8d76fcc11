"""Local Elastic Beanstalk environments that run their version (local_aws.eb.serving).

One environment (MinSize 2, Immutable deployments, health check on /healthz)
runs a tiny WSGI app under gunicorn, from a bundle built here and uploaded to
the local S3, behind its own HAProxy. The tests run in file order and share
it: launch, a deploy under a request loop that must not see one failure, a
version whose health check fails (rolled back), a version whose requirements
are not there, health that follows the instances' real checks, an instance
killed with SIGKILL and replaced, and termination that leaves no process.
Every answer is checked through the load balancer's port or the instances'
own ports, and the environment through boto3.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import signal
import socket
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

STACK = "64bit Amazon Linux 2023 v4.6.0 running Python 3.11"
ENV_NS = "aws:elasticbeanstalk:application:environment"
PROCESS_NS = "aws:elasticbeanstalk:environment:process:default"

APP = """\
import json
import os

STATE = {"healthy": HEALTHY}


def application(environ, start_response):
    path, method = environ.get("PATH_INFO", "/"), environ["REQUEST_METHOD"]
    if path == "/healthz" or (not STATE["healthy"] and path != "/health-toggle"):  # a sick app fails everything
        ok = STATE["healthy"]
        start_response("200 OK" if ok else "500 Internal Server Error", [("Content-Type", "text/plain")])
        return [b"ok" if ok else b"failing"]
    if path == "/secret":  # what an app does with DATABASE_SECRET_ARN: boto3, no endpoint or credentials in its code
        import boto3

        secret = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["DATABASE_SECRET_ARN"])["SecretString"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [secret.encode()]
    if path == "/health-toggle" and method == "POST":
        STATE["healthy"] = not STATE["healthy"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(STATE["healthy"]).encode()]
    body = json.dumps({
        "version": os.environ.get("APP_VERSION"),
        "instance": os.environ.get("LOCAL_EB_INSTANCE_ID"),
        "pid": os.getpid(),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
"""
PROCFILE = "web: gunicorn --bind :8000 --workers 1 --threads 4 --graceful-timeout 5 app:application\n"


def bundle(healthy: bool = True, requirements: str = "gunicorn\n") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("Procfile", PROCFILE)
        archive.writestr("app.py", APP.replace("HEALTHY", str(healthy)))
        archive.writestr("requirements.txt", requirements)
    return buf.getvalue()


def wait_until(predicate: Callable[[], Any], timeout: float = 45.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what}: not met within {timeout}s (last: {last!r})")


def get(port: int, path: str = "/version", conn: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        if own:
            conn.close()


class Load:
    """Two light request loops on the load balancer: new connections, and one keep-alive connection."""

    def __init__(self, port: int):
        self.port = port
        self.results: list[tuple[str, int, str]] = []  # (loop, status or -1, version or error)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(keep,), daemon=True) for keep in (False, True)]

    def _run(self, keep_alive: bool) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10) if keep_alive else None
        loop = "keep-alive" if keep_alive else "new-connection"
        while not self.stop.is_set():
            try:
                status, body = get(self.port, conn=conn)
                self.results.append((loop, status, json.loads(body)["version"] if status == 200 else body[:80].decode(errors="replace")))
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self.results.append((loop, -1, f"{type(exc).__name__}: {exc}"))
            time.sleep(0.02)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(15)

    def failures(self) -> list[tuple[str, int, str]]:
        return [r for r in self.results if r[1] != 200]

    def versions(self, loop: str) -> list[str]:
        return [version for name, status, version in self.results if name == loop and status == 200]


class Served:
    """The shared environment and its clients."""

    def __init__(self, stack: Any, unique: str):
        self.stack = stack
        self.eb, self.s3 = stack.client("elasticbeanstalk"), stack.client("s3")
        self.app, self.name, self.bucket = f"serve-{unique}", f"serve-{unique}", f"serve-{unique}"
        self.idle = f"idle-{unique}"  # a second environment, for the CNAME swap
        self.port = 0
        self.secret = ""

    def describe(self, name: str | None = None) -> dict[str, Any]:
        found = [e for e in self.eb.describe_environments(EnvironmentNames=[name or self.name])["Environments"] if e["Status"] != "Terminated"]
        assert len(found) == 1, found
        return found[0]

    def ready(self, name: str | None = None) -> dict[str, Any]:
        return wait_until(lambda: (env := self.describe(name))["Status"] == "Ready" and env, what=f"{name or self.name} Ready")

    def endpoints(self) -> dict[str, dict[str, Any]]:
        listing = self.stack.control("GET", "/_local/eb/endpoints")[1]
        on_disk = json.loads(Path(listing["file"]).read_text())["environments"]
        assert on_disk == listing["environments"]
        return {e["environment_name"]: e for e in on_disk}

    def green(self) -> dict[str, Any]:
        try:
            return wait_until(lambda: (env := self.describe())["Status"] == "Ready" and env["Health"] == "Green" and env, what=f"{self.name} Green")
        except AssertionError as exc:  # say why (a missing HAProxy, a process that exits...)
            env = self.describe()
            problems = [e["Message"] for e in self.eb.describe_events(EnvironmentName=self.name, Severity="WARN")["Events"][:5]]
            raise AssertionError(f"{exc}; {env['Status']}/{env['Health']}/{env.get('HealthStatus')}; latest warnings and errors: {problems}") from None

    def state(self) -> dict[str, Any]:
        status, body = self.stack.control("GET", f"/_local/eb/environments/{self.name}")
        assert status == 200, body
        [found] = [e for e in body["environments"] if e["description"]["Status"] != "Terminated"]
        return found

    def instances(self) -> list[str]:
        return [i["Id"] for i in self.eb.describe_environment_resources(EnvironmentName=self.name)["EnvironmentResources"]["Instances"]]

    def serving_instances(self) -> list[dict[str, Any]]:
        return [i for i in self.state()["deploy_hook"]["instances"] if i["state"] == "in_service"]

    def answers(self, count: int = 12) -> list[dict[str, Any]]:
        out = []
        for _ in range(count):
            status, body = get(self.port)
            assert status == 200, (status, body)
            out.append(json.loads(body))
        return out

    def messages(self, since: Any = None) -> list[str]:
        kwargs = {"StartTime": since} if since is not None else {}
        return [e["Message"] for e in reversed(self.eb.describe_events(EnvironmentName=self.name, **kwargs)["Events"])]

    def upload(self, label: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=f"{label}.zip", Body=data)
        self.eb.create_application_version(ApplicationName=self.app, VersionLabel=label, SourceBundle={"S3Bucket": self.bucket, "S3Key": f"{label}.zip"})

    def update(self, label: str, version_property: str | None = None) -> Any:
        settings = [{"Namespace": ENV_NS, "OptionName": "APP_VERSION", "Value": version_property or label}]
        answer = self.eb.update_environment(EnvironmentName=self.name, VersionLabel=label, OptionSettings=settings)
        return answer["DateUpdated"]


@pytest.fixture(scope="module")
def served(stack: Any) -> Iterator[Served]:
    import uuid

    env = Served(stack, uuid.uuid4().hex[:8])
    env.s3.create_bucket(Bucket=env.bucket)
    env.eb.create_application(ApplicationName=env.app)
    env.secret = stack.client("secretsmanager").create_secret(Name=f"serve-{env.app}", SecretString=json.dumps({"password": env.app}))["ARN"]
    env.upload("v1", bundle())
    env.upload("v2", bundle())
    env.upload("v3-failing", bundle(healthy=False))
    env.upload("v4-deps", bundle(requirements="gunicorn\nno-such-package-locally==1.0\n"))
    env.eb.create_environment(
        ApplicationName=env.app,
        EnvironmentName=env.idle,
        SolutionStackName=STACK,
        VersionLabel="v1",
        CNAMEPrefix=f"{env.app}-idle",
        OptionSettings=[{"Namespace": ENV_NS, "OptionName": "APP_VERSION", "Value": "idle"}],
    )
    env.eb.create_environment(
        ApplicationName=env.app,
        EnvironmentName=env.name,
        SolutionStackName=STACK,
        VersionLabel="v1",
        CNAMEPrefix=env.app,
        OptionSettings=[
            {"Namespace": "aws:autoscaling:asg", "OptionName": "MinSize", "Value": "2"},
            {"Namespace": "aws:autoscaling:asg", "OptionName": "MaxSize", "Value": "4"},
            {"Namespace": "aws:elasticbeanstalk:command", "OptionName": "DeploymentPolicy", "Value": "Immutable"},
            {"Namespace": "aws:elasticbeanstalk:healthreporting:system", "OptionName": "SystemType", "Value": "enhanced"},
            {"Namespace": PROCESS_NS, "OptionName": "HealthCheckPath", "Value": "/healthz"},
            {"Namespace": PROCESS_NS, "OptionName": "HealthCheckInterval", "Value": "6"},  # 0.2 s locally
            {"Namespace": PROCESS_NS, "OptionName": "HealthyThresholdCount", "Value": "2"},
            {"Namespace": PROCESS_NS, "OptionName": "UnhealthyThresholdCount", "Value": "3"},
            {"Namespace": ENV_NS, "OptionName": "APP_VERSION", "Value": "v1"},
            {"Namespace": ENV_NS, "OptionName": "DATABASE_SECRET_ARN", "Value": env.secret},
        ],
    )
    try:
        yield env
    finally:
        with contextlib.suppress(Exception):
            env.eb.delete_application(ApplicationName=env.app, TerminateEnvByForce=True)


def test_launch_runs_min_size_instances_behind_the_load_balancer(served: Served) -> None:
    env = served.green()
    assert env["VersionLabel"] == "v1"
    assert env["CNAME"].endswith(".us-east-1.elasticbeanstalk.com")  # the CNAME stays AWS's
    status, endpoint = served.stack.control("GET", f"/_local/eb/environments/{served.name}/endpoint")
    assert status == 200, endpoint
    assert (endpoint["cname"], endpoint["url"]) == (env["CNAME"], f"http://127.0.0.1:{endpoint['port']}")
    served.port = endpoint["port"]
    assert served.endpoints()[served.name] == endpoint  # a front door finds the port by CNAME

    answers = served.answers()
    instances = served.instances()
    assert len(instances) == 2
    assert {a["instance"] for a in answers} == set(instances)  # both instances answer through the load balancer
    assert len({a["pid"] for a in answers}) == 2
    assert {a["version"] for a in answers} == {"v1"}  # the environment property reaches the app
    assert get(served.port, "/secret") == (200, json.dumps({"password": served.app}).encode())  # boto3 in the app reaches the local AWS
    health = served.eb.describe_environment_health(EnvironmentName=served.name, AttributeNames=["All"])
    assert (health["Color"], health["HealthStatus"], health["InstancesHealth"]["Ok"]) == ("Green", "Ok", 2)
    log = served.messages()
    assert sum(m.startswith("Added instance [") for m in log) == 2
    assert f"Successfully launched environment: {served.name}" in log


def test_deploy_replaces_instances_without_dropping_a_request(served: Served) -> None:
    before = set(served.instances())
    with Load(served.port) as load:
        time.sleep(0.5)
        since = served.update("v2")
        env = served.ready()
        time.sleep(0.5)
    assert (env["VersionLabel"], env["Health"]) == ("v2", "Green")
    assert load.failures() == [], load.failures()[:5]
    for loop in ("new-connection", "keep-alive"):
        versions = load.versions(loop)
        assert versions[0] == "v1" and versions[-1] == "v2", (loop, versions)
        switch = versions.index("v2")
        assert set(versions[switch:]) == {"v2"}, (loop, versions)  # drained: no old answer after the first new one
    after = set(served.instances())
    assert len(after) == 2 and not after & before  # new instances (Immutable)
    assert {a["version"] for a in served.answers()} == {"v2"}
    log = served.messages(since)
    assert "New application version was deployed to running EC2 instances." in log
    assert sum(m.startswith("Removed instance [") for m in log) == 2


def test_scaling_and_restart_keep_serving(served: Served) -> None:
    def set_min_size(size: int) -> None:
        served.eb.update_environment(
            EnvironmentName=served.name, OptionSettings=[{"Namespace": "aws:autoscaling:asg", "OptionName": "MinSize", "Value": str(size)}]
        )
        served.ready()

    with Load(served.port) as load:
        set_min_size(3)
        scaled = served.instances()
        assert len(scaled) == 3 and len(served.serving_instances()) == 3
        pids = {i["id"]: i["pid"] for i in served.serving_instances()}
        served.eb.restart_app_server(EnvironmentName=served.name)
        served.ready()
        restarted = {i["id"]: i["pid"] for i in served.serving_instances()}
        assert set(restarted) == set(pids) and not set(restarted.values()) & set(pids.values())  # same instances, new processes
        set_min_size(2)
    assert load.failures() == [], load.failures()[:5]
    assert len(served.instances()) == 2 and served.describe()["Health"] == "Green"


def test_version_failing_its_health_check_is_rolled_back(served: Served) -> None:
    with Load(served.port) as load:
        since = served.update("v3-failing")
        env = served.ready()
    assert (env["VersionLabel"], env["Health"]) == ("v2", "Red")  # Immutable: the old instances kept serving
    assert load.failures() == [], load.failures()[:5]
    assert set(load.versions("new-connection")) == {"v2"}
    errors = [e["Message"] for e in served.eb.describe_events(EnvironmentName=served.name, Severity="ERROR", StartTime=since)["Events"]]
    assert any("failed its health check (GET /healthz: HTTP 500) 3 times in a row" in m for m in errors), errors
    assert "Failed to deploy application." in errors
    assert len(served.instances()) == 2 and len(served.serving_instances()) == 2
    # The fault control still clears a failed deploy's health.
    assert served.stack.control("POST", f"/_local/eb/environments/{served.name}/health", {"color": "Green"})[0] == 200
    assert served.green()["VersionLabel"] == "v2"


def test_missing_requirements_fail_the_deploy_with_a_clear_event(served: Served) -> None:
    since = served.update("v4-deps")
    env = served.ready()
    assert (env["VersionLabel"], env["Health"]) == ("v2", "Red")
    errors = [e["Message"] for e in served.eb.describe_events(EnvironmentName=served.name, Severity="ERROR", StartTime=since)["Events"]]
    assert any("no-such-package-locally==1.0" in m and "does not have" in m for m in errors), errors
    assert {a["version"] for a in served.answers(4)} == {"v2"}
    served.stack.control("POST", f"/_local/eb/environments/{served.name}/health", {"color": "Green"})
    served.green()


def test_health_follows_the_instances_health_checks(served: Served) -> None:
    ports = [i["port"] for i in served.serving_instances()]
    assert len(ports) == 2

    def toggle(port: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("POST", "/health-toggle")
        assert conn.getresponse().status == 200
        conn.close()

    def health() -> tuple[str, str, list[str]]:
        found = served.eb.describe_environment_health(EnvironmentName=served.name, AttributeNames=["All"])
        return found["Color"], found["HealthStatus"], found["Causes"]

    toggle(ports[0])
    half = wait_until(lambda: (h := health())[1] == "Degraded" and h, what="one of two instances failing")
    assert half == ("Red", "Degraded", ["ELB health is failing or not available for 1 out of 2 instances."])
    wait_until(lambda: all(get(served.port)[0] == 200 for _ in range(6)), timeout=5, what="the load balancer routing around it")
    toggle(ports[1])
    wait_until(lambda: health() == ("Red", "Severe", ["ELB health is failing or not available for all instances."]), what="all failing")
    wait_until(lambda: get(served.port)[0] == 503, timeout=5, what="HAProxy's own checks: no healthy target")
    for port in ports:
        toggle(port)
    served.green()
    warnings = [e["Message"] for e in served.eb.describe_events(EnvironmentName=served.name, Severity="WARN")["Events"]]
    assert any(m.startswith("Environment health has transitioned from Ok to Degraded.") for m in warnings), warnings


def test_killed_instance_is_replaced(served: Served) -> None:
    victim = served.serving_instances()[0]
    os.killpg(victim["pid"], signal.SIGKILL)
    wait_until(lambda: victim["id"] not in served.instances() and len(served.instances()) == 2, what="replacement")
    env = served.green()
    assert env["VersionLabel"] == "v2"
    replaced = set(served.instances())
    wait_until(lambda: {a["instance"] for a in served.answers()} == replaced, what="both instances answering")
    log = served.messages()
    assert f"Removed instance [{victim['id']}] from your environment." in log
    with pytest.raises(ProcessLookupError):
        os.kill(victim["pid"], 0)


def test_swap_moves_the_cname_between_load_balancers(served: Served) -> None:
    served.ready(served.idle)
    before = served.endpoints()
    served.eb.swap_environment_cnames(SourceEnvironmentName=served.name, DestinationEnvironmentName=served.idle)
    served.ready(served.idle)
    served.ready()
    after = served.endpoints()
    assert (after[served.name]["cname"], after[served.idle]["cname"]) == (before[served.idle]["cname"], before[served.name]["cname"])
    assert after[served.name]["cname"] == f"{served.app}-idle.us-east-1.elasticbeanstalk.com"
    assert (after[served.name]["port"], after[served.idle]["port"]) == (before[served.name]["port"], before[served.idle]["port"])
    assert json.loads(get(after[served.idle]["port"])[1])["version"] == "idle"  # each load balancer still fronts its own environment
    assert json.loads(get(after[served.name]["port"])[1])["version"] == "v2"


def _our_processes(env_id: str) -> list[int]:
    marker = f"LOCAL_EB_ENVIRONMENT_ID={env_id}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if marker in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
    return found


def test_terminate_stops_every_process(served: Served) -> None:
    state = served.state()
    env_id = state["description"]["EnvironmentId"]
    pids = [i["pid"] for i in state["deploy_hook"]["instances"]] + [state["deploy_hook"]["load_balancer"]["pid"]]
    assert _our_processes(env_id)
    served.eb.terminate_environment(EnvironmentName=served.name)
    served.eb.get_waiter("environment_terminated").wait(EnvironmentNames=[served.name], WaiterConfig={"Delay": 0.1, "MaxAttempts": 300})
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert _our_processes(env_id) == []
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", served.port)) != 0  # the load balancer is gone
    assert served.stack.control("GET", f"/_local/eb/environments/{served.name}/endpoint")[0] == 404
    listing = served.stack.control("GET", "/_local/eb/endpoints")[1]
    assert env_id not in {e["environment_id"] for e in listing["environments"]}
