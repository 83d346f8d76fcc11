"""fastier.platform.eb_environment_swap through ansible-playbook against the local AWS.

A blue/green pair is made with boto3 (blue live on v1 with the live CNAME,
green idle on v2), then the module is run and every outcome is read back
with boto3: which environment holds the live CNAME, the weights of the Route
53 records, the versions. Faults come from the local endpoint's control
routes (an environment turning Red), moto's ``set_alarm_state`` and a tiny
HTTP server the test controls (the smoke test).

The helpers and fixtures here are also used by ``test_blue_green.py``.
"""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.playbooks import ROOT, PlaybookRun, ensure_collection, run_playbook

PLAYBOOKS = ROOT / "tests/integration/playbooks"
SWAP = PLAYBOOKS / "bg_swap.yml"
STACK = "64bit Amazon Linux 2023 v4.6.0 running Python 3.11"
REGION = "us-east-1"
ENHANCED = [{"Namespace": "aws:elasticbeanstalk:healthreporting:system", "OptionName": "SystemType", "Value": "enhanced"}]


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


# -- helpers ---------------------------------------------------------------------------------------------


def zip_bytes(marker: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("application.py", f"# {marker}\n")
    return buf.getvalue()


def wait_until(predicate: Any, timeout: float = 60.0, step: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(step)


def active(eb: Any, name: str) -> dict[str, Any] | None:
    found = [e for e in eb.describe_environments(EnvironmentNames=[name])["Environments"] if e["Status"] != "Terminated"]
    return found[0] if found else None


def ready(eb: Any, name: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        env = active(eb, name)
        return env if env and env["Status"] == "Ready" else None

    return wait_until(check, what=f"{name} Ready")


def holder(eb: Any, app: str, cname: str) -> str | None:
    """Name of the environment that holds ``cname``."""
    for env in eb.describe_environments(ApplicationName=app)["Environments"]:
        if env["Status"] != "Terminated" and env.get("CNAME", "").lower() == cname.lower():
            return env["EnvironmentName"]
    return None


def make_app(stack: Any, app: str, bucket: str, labels: tuple[str, ...] = ("v1", "v2", "v3")) -> None:
    eb, s3 = stack.client("elasticbeanstalk"), stack.client("s3")
    s3.create_bucket(Bucket=bucket)
    eb.create_application(ApplicationName=app)
    for label in labels:
        s3.put_object(Bucket=bucket, Key=f"bundles/{label}.zip", Body=zip_bytes(label))
        eb.create_application_version(ApplicationName=app, VersionLabel=label, SourceBundle={"S3Bucket": bucket, "S3Key": f"bundles/{label}.zip"}, Process=True)

    def processed() -> bool:
        return {v["Status"] for v in eb.describe_application_versions(ApplicationName=app)["ApplicationVersions"]} == {"Processed"}

    wait_until(processed, what="versions processed")


def make_env(stack: Any, app: str, name: str, version: str, cname_prefix: str | None = None) -> None:
    params: dict[str, Any] = {"ApplicationName": app, "EnvironmentName": name, "SolutionStackName": STACK, "VersionLabel": version, "OptionSettings": ENHANCED}
    if cname_prefix:
        params["CNAMEPrefix"] = cname_prefix
    stack.client("elasticbeanstalk").create_environment(**params)


def set_health(stack: Any, env: str, color: str, status: str | None = None, causes: list[str] | None = None) -> None:
    body: dict[str, Any] = {"color": color}
    if status:
        body["health_status"] = status
    if causes:
        body["causes"] = causes
    code, answer = stack.control("POST", f"/_local/eb/environments/{env}/health", body)
    assert code == 200, answer


class Answers(ThreadingHTTPServer):
    """A local HTTP server whose answer the test sets: ``server.answer = (status, body)``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer: tuple[int, str] = (200, '{"status": "ok"}')
        self.hits: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        server: Answers = self.server  # type: ignore[assignment]
        server.hits.append(self.path)
        status, body = server.answer
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: Any) -> None:
        return


@pytest.fixture
def http() -> Iterator[Answers]:
    server = Answers()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def pair(stack, unique) -> dict[str, Any]:
    """Blue live on v1 (holding <prefix>.us-east-1.elasticbeanstalk.com), green idle on v2."""
    prefix = f"bg-{unique}"
    app, blue, green = prefix, f"{prefix}-blue", f"{prefix}-green"
    make_app(stack, app, f"bg-bundles-{unique}")
    make_env(stack, app, blue, "v1", cname_prefix=prefix)
    make_env(stack, app, green, "v2")
    eb = stack.client("elasticbeanstalk")
    ready(eb, blue)
    green_env = ready(eb, green)
    live_cname = f"{prefix}.{REGION}.elasticbeanstalk.com"
    return {
        "eb": eb,
        "app": app,
        "blue": blue,
        "green": green,
        "live_cname": live_cname,
        "green_cname": green_env["CNAME"],
        "extra": {"it_app": app, "it_live_cname": live_cname, "it_pair": [blue, green], "it_version": "v2"},
    }


def swap(stack: Any, extra: dict[str, Any], check: bool = False) -> tuple[PlaybookRun, dict[str, Any]]:
    run = run_playbook(stack.env(), SWAP, extra, check=check, diff=True)
    return run, run.task("Swap")


class Watcher:
    """Records, in a thread, what ``probe()`` returns each time it changes.

    ``on_change(value)`` runs in the same thread right after a new value is recorded, so an
    action taken on a state (an alarm raised at 50/50) cannot race the recording of that state.
    """

    def __init__(self, probe: Any, interval: float = 0.05, on_change: Any = None) -> None:
        self.probe, self.interval, self.on_change = probe, interval, on_change
        self.seen: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                value = self.probe()
            except Exception:  # noqa: BLE001 - keep watching through transient errors
                value = None
            if value is not None and (not self.seen or self.seen[-1] != value):
                self.seen.append(value)
                if self.on_change is not None:
                    self.on_change(value)
            time.sleep(self.interval)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def in_thread(action: Any) -> threading.Thread:
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    return thread


# -- CNAME swap -------------------------------------------------------------------------------------


def test_cname_swap_four_steps_smoke_tested_green_promoted_blue_kept(stack, pair, http):
    eb, app, blue, green, live = pair["eb"], pair["app"], pair["blue"], pair["green"], pair["live_cname"]
    extra = {**pair["extra"], "it_smoke": {"url": http.url + "/healthz?env={environment_name}", "expected_text": '"ok"', "retries": 1, "delay": 0.2}}

    check, planned = swap(stack, extra, check=True)
    assert check.rc == 0, check.explain()
    assert planned["changed"] is True
    assert planned["blockers"] == []
    assert planned["diff"] == {"before": {"live_environment": blue, "live_version": "v1"}, "after": {"live_environment": green, "live_version": "v2"}}
    assert any(step.startswith(f"swap the CNAMEs of {blue} and {green}") for step in planned["plan"]), planned["plan"]
    assert http.hits == []  # check mode runs no smoke test
    assert holder(eb, app, live) == blue

    run, done = swap(stack, extra)
    assert run.rc == 0, run.explain()
    assert done["changed"] is True and done["switched"] is True and done["switched_back"] is False
    assert (done["live_environment"], done["live_version"], done["idle_environment"], done["idle_version"]) == (green, "v2", blue, "v1")
    assert done["previous_live_environment"] == blue
    assert done["smoke_test"][0]["ok"] is True and done["smoke_test"][0]["url"].endswith(f"env={green}")
    assert http.hits and http.hits[0] == f"/healthz?env={green}"
    assert {"discover_s", "checks_s", "smoke_s", "switch_s", "watch_s", "total_s"} <= set(done["timings"])
    messages = [(e.get("environment_name"), e["message"]) for e in done["events"]]
    assert (green, "swapEnvironmentCNAMEs is starting.") in messages, messages
    assert any(m.startswith("Completed swapping CNAMEs") for _, m in messages)
    # read back: green holds the live CNAME, blue kept (running v1, with green's old CNAME)
    assert holder(eb, app, live) == green
    blue_now = active(eb, blue)
    assert blue_now is not None and blue_now["VersionLabel"] == "v1" and blue_now["CNAME"] == pair["green_cname"]
    assert active(eb, green)["VersionLabel"] == "v2"

    again_check, same = swap(stack, extra, check=True)
    assert again_check.rc == 0 and same["changed"] is False, same
    again, same = swap(stack, extra)
    assert again.rc == 0, again.explain()
    assert same["changed"] is False and same["live_environment"] == green
    assert holder(eb, app, live) == green


def test_green_red_before_the_swap_is_refused_and_blue_stays_live(stack, pair):
    eb, app, blue, green, live = pair["eb"], pair["app"], pair["blue"], pair["green"], pair["live_cname"]
    set_health(stack, green, "Red", "Severe", ["100.0 % of the requests are failing with HTTP 5xx."])
    blue_before = active(eb, blue)
    started = time.monotonic()
    run, task = swap(stack, pair["extra"])
    assert run.rc != 0
    assert time.monotonic() - started < 60
    message = task["msg"]
    assert f"Not promoting {green}: environment {green} is Ready / Red (Severe)" in message, message
    assert "100.0 % of the requests are failing with HTTP 5xx." in message
    assert "Environment health has transitioned from Ok to Severe" in message  # the events it saw
    assert f"{blue} is still live; nothing was changed" in message
    assert task["evidence"]["state"] == "Ready / Red (Severe)"
    assert task["switched"] is False and task["live_environment"] == blue
    # blue untouched
    assert holder(eb, app, live) == blue
    blue_after = active(eb, blue)
    assert (blue_after["Status"], blue_after["VersionLabel"], blue_after["DateUpdated"]) == ("Ready", "v1", blue_before["DateUpdated"])

    # check mode reports the same refusal as a blocker instead of failing
    check, planned = swap(stack, pair["extra"], check=True)
    assert check.rc == 0, check.explain()
    assert planned["blockers"] == [f"environment {green} is Ready / Red (Severe); acceptable health: Green"]
    assert planned["changed"] is True and holder(eb, app, live) == blue


def test_green_red_during_the_watch_window_swaps_back(stack, pair):
    eb, app, blue, green, live = pair["eb"], pair["app"], pair["blue"], pair["green"], pair["live_cname"]

    def turn_green_red_once_live() -> None:
        wait_until(lambda: holder(eb, app, live) == green and active(eb, green)["Status"] == "Ready", timeout=90, step=0.05)
        time.sleep(1.0)
        set_health(stack, green, "Red", "Degraded", ["Application errors after the deploy"])

    injector = in_thread(turn_green_red_once_live)
    run, task = swap(stack, {**pair["extra"], "it_watch": 20})
    injector.join(timeout=5)
    assert run.rc != 0
    message = task["msg"]
    assert f"bad signal during the watch window of {green}: {green} is Ready / Red (Degraded)" in message, message
    assert "Application errors after the deploy" in message
    assert f"Switched back: {blue} (version v1) holds {live} again" in message
    assert task["switched_back"] is True and task["switched"] is False
    assert task["signal"]["probe"] == "health" and task["signal"]["after_s"] < 20
    assert (task["live_environment"], task["live_version"]) == (blue, "v1")
    assert task["timings"]["switch_back_s"] > 0
    assert holder(eb, app, live) == blue
    assert ready(eb, blue)["VersionLabel"] == "v1"


def test_green_red_during_the_swap_itself_is_switched_back(stack, pair):
    eb, app, blue, green, live = pair["eb"], pair["app"], pair["blue"], pair["green"], pair["live_cname"]
    _, settings = stack.control("GET", "/_local/eb/settings")
    stack.control("POST", "/_local/eb/settings", {"delay_s": 2.0})  # a swap long enough to fail in the middle

    def turn_green_red_mid_swap() -> None:
        wait_until(lambda: active(eb, green)["Status"] == "Updating", timeout=90, step=0.05)
        set_health(stack, green, "Red", "Severe", ["Health checks failing during the swap"])

    try:
        injector = in_thread(turn_green_red_mid_swap)
        run, task = swap(stack, {**pair["extra"], "it_watch": 5})
        injector.join(timeout=5)
    finally:
        stack.control("POST", "/_local/eb/settings", {"delay_s": settings["delay_s"]})
    assert run.rc != 0
    message = task["msg"]
    assert f"the CNAME swap failed: environment {green} turned Updating / Red (Severe)" in message, message
    assert f"Switched back: {blue} (version v1) holds {live} again" in message
    assert task["switched_back"] is True and task["live_environment"] == blue
    assert holder(eb, app, live) == blue
    assert ready(eb, blue)["VersionLabel"] == "v1"


def test_failing_smoke_test_means_no_swap(stack, pair, http):
    eb, app, blue, green, live = pair["eb"], pair["app"], pair["blue"], pair["green"], pair["live_cname"]
    http.answer = (503, '{"status": "database unreachable"}')
    smoke = {"url": http.url + "/healthz", "retries": 2, "delay": 0.1}
    run, task = swap(stack, {**pair["extra"], "it_smoke": smoke})
    assert run.rc != 0
    assert len(http.hits) == 3  # first attempt + 2 retries
    message = task["msg"]
    assert f"Not promoting {green}: the smoke test failed 3 time(s); last: GET {http.url}/healthz -> HTTP 503, expected 200" in message, message
    assert "database unreachable" in message
    assert [a["status"] for a in task["smoke_test"]] == [503, 503, 503]
    assert holder(eb, app, live) == blue

    # a 200 without the expected text is a failure too
    http.answer = (200, "<html>maintenance</html>")
    run, task = swap(stack, {**pair["extra"], "it_smoke": {**smoke, "retries": 0, "expected_text": '"status": "ok"'}})
    assert run.rc != 0
    assert "HTTP 200 but the body does not contain" in task["msg"] and "maintenance" in task["msg"]
    assert holder(eb, app, live) == blue


def test_version_not_deployed_is_refused_and_check_mode_says_why(stack, pair):
    eb, app, blue, live = pair["eb"], pair["app"], pair["blue"], pair["live_cname"]
    extra = {**pair["extra"], "it_version": "v3"}
    run, task = swap(stack, extra)
    assert run.rc != 0
    assert "no environment of the pair runs version v3 (live" in task["msg"], task["msg"]
    assert "deploy it to the idle environment first" in task["msg"]
    check, planned = swap(stack, extra, check=True)
    assert check.rc == 0 and planned["changed"] is True
    assert planned["blockers"][0].startswith("no environment of the pair runs version v3")
    assert holder(eb, app, live) == blue


# -- Route 53 weighted ----------------------------------------------------------------------------------


@pytest.fixture
def zone(stack, unique) -> dict[str, Any]:
    r53 = stack.client("route53")
    name = f"bg-{unique}.example"
    zone_id = r53.create_hosted_zone(Name=name, CallerReference=f"bg-{unique}")["HostedZone"]["Id"].split("/")[-1]
    return {"r53": r53, "id": zone_id, "record": f"app.{name}"}


def weights(zone: dict[str, Any]) -> dict[str, int]:
    records = zone["r53"].list_resource_record_sets(HostedZoneId=zone["id"], StartRecordName=zone["record"])["ResourceRecordSets"]
    return {r["SetIdentifier"]: r["Weight"] for r in records if r["Name"] == zone["record"] + "." and "SetIdentifier" in r}


def weight_pair(zone: dict[str, Any], green: str, blue: str) -> tuple[int | None, int | None] | None:
    """(green, blue) weights in one read, or None before the records exist."""
    now = weights(zone)
    return (now.get(green), now.get(blue)) if now else None


def test_weighted_shift_passes_through_each_step(stack, pair, zone):
    blue, green = pair["blue"], pair["green"]
    route53 = {"zone_id": zone["id"], "record_name": zone["record"], "ttl": 1, "weights": [10, 50, 100], "bake_seconds": 1.5}
    extra = {**pair["extra"], "it_strategy": "route53_weighted", "it_route53": route53}

    check, planned = swap(stack, extra, check=True)
    assert check.rc == 0, check.explain()
    assert [s for s in planned["plan"] if s.startswith("set weights")] == [
        f"set weights of {zone['record']}: {green} 10, {blue} 90; bake 1.5s",
        f"set weights of {zone['record']}: {green} 50, {blue} 50; bake 1.5s",
        f"set weights of {zone['record']}: {green} 100, {blue} 0; bake 1.5s",
    ]
    assert weights(zone) == {}

    with Watcher(lambda: weight_pair(zone, green, blue)) as seen:
        run, task = swap(stack, extra)
    assert run.rc == 0, run.explain()
    assert seen.seen == [(10, 90), (50, 50), (100, 0)]
    assert [h["weights"][green] for h in task["weight_history"]] == [10, 50, 100]
    assert all(h["outcome"] == "ok" and h["baked_s"] >= 1.5 for h in task["weight_history"])
    assert task["weights"] == {green: 100, blue: 0}
    assert task["live_environment"] == green and task["idle_environment"] == blue
    records = zone["r53"].list_resource_record_sets(HostedZoneId=zone["id"], StartRecordName=zone["record"])["ResourceRecordSets"]
    targets = {r["SetIdentifier"]: r["ResourceRecords"][0]["Value"] for r in records if r.get("SetIdentifier")}
    assert targets == {green: pair["green_cname"], blue: pair["live_cname"]}
    # the CNAMEs did not move: traffic moved through the records
    assert holder(pair["eb"], pair["app"], pair["live_cname"]) == blue

    again, same = swap(stack, extra)
    assert again.rc == 0, again.explain()
    assert same["changed"] is False and same["live_environment"] == green


def test_weighted_alarm_in_alarm_mid_way_rolls_the_weights_back(stack, pair, zone, unique):
    blue, green = pair["blue"], pair["green"]
    cw = stack.client("cloudwatch")
    alarm = f"bg-{unique}-5xx"
    cw.put_metric_alarm(
        AlarmName=alarm,
        MetricName="HTTPCode_Target_5XX_Count",
        Namespace="AWS/ApplicationELB",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
    )
    cw.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="quiet")
    route53 = {"zone_id": zone["id"], "record_name": zone["record"], "ttl": 1, "weights": [10, 50, 100], "bake_seconds": 3}
    extra = {**pair["extra"], "it_strategy": "route53_weighted", "it_route53": route53, "it_alarms": [alarm]}

    def alarm_at_fifty(value: tuple[int | None, int | None]) -> None:
        if value == (50, 50):
            cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="Threshold Crossed: 42 5xx in 1 minute")

    # the watcher raises the alarm itself when it records 50/50: the step cannot pass unseen
    with Watcher(lambda: weight_pair(zone, green, blue), on_change=alarm_at_fifty) as seen:
        run, task = swap(stack, extra)
    assert run.rc != 0
    message = task["msg"]
    assert f"Promotion of {green} aborted: bad signal at 50% on {green}: alarm {alarm} is in ALARM (Threshold Crossed: 42 5xx in 1 minute)" in message, message
    assert f"{blue} takes the traffic again" in message
    assert seen.seen == [(10, 90), (50, 50), (0, 100)]
    assert weights(zone) == {green: 0, blue: 100}
    assert [h["outcome"] for h in task["weight_history"]][-1] == "restored"
    assert task["weight_history"][1]["outcome"].startswith(f"aborted: alarm {alarm} is in ALARM")
    assert task["switched_back"] is True and task["live_environment"] == blue
    assert task["alarms"][alarm]["state"] == "ALARM"

    # with the alarm still firing, a new attempt is refused before any weight moves
    run, task = swap(stack, extra)
    assert run.rc != 0
    assert f"alarm {alarm} is in ALARM" in task["msg"] and "nothing was changed" in task["msg"]
    assert weights(zone) == {green: 0, blue: 100}
