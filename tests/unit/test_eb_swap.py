"""Pure pieces of the blue/green promotion (no endpoint).

plugins/module_utils/eb_swap.py (smoke test, Route 53 weights, alarms, the
watch loop) and the CNAME helpers added to elasticbeanstalk.py, with fake
clients and a fake clock; the HTTP check also against a real local server.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _import(name: str) -> Any:
    """Import a module_utils file of this work tree as ansible_collections.fastier.platform."""
    if "ansible_collections.fastier.platform" not in sys.modules:
        tree = Path(tempfile.mkdtemp(prefix="fastier-unit-")) / "ansible_collections" / "fastier"
        tree.mkdir(parents=True)
        (tree / "platform").symlink_to(ROOT)
        sys.path.insert(0, str(tree.parent.parent))
    return importlib.import_module(f"ansible_collections.fastier.platform.plugins.module_utils.{name}")


swap = _import("eb_swap")
eb = _import("elasticbeanstalk")
Deadline = _import("common").Deadline
WaitTimeout = _import("common").WaitTimeout


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# -- CNAMEs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cname", "live", "match"),
    [
        ("fastier-prod.us-east-1.elasticbeanstalk.com", "fastier-prod.us-east-1.elasticbeanstalk.com", True),
        ("Fastier-Prod.us-east-1.elasticbeanstalk.com.", "fastier-prod.us-east-1.elasticbeanstalk.com", True),
        ("fastier-prod.us-east-1.elasticbeanstalk.com", "fastier-prod", True),
        ("fastier-prod-green.us-east-1.elasticbeanstalk.com", "fastier-prod", False),
        ("fastier-prod.eu-west-1.elasticbeanstalk.com", "fastier-prod.us-east-1.elasticbeanstalk.com", False),
        ("", "fastier-prod", False),
        ("fastier-prod.us-east-1.elasticbeanstalk.com", "", False),
    ],
)
def test_cname_matches_full_names_and_prefixes(cname, live, match):
    assert eb.cname_matches(cname, live) is match


def test_the_holder_of_the_live_cname_is_found_and_terminated_ones_ignored():
    envs = [
        {"EnvironmentName": "old", "Status": "Terminated", "CNAME": "shop.us-east-1.elasticbeanstalk.com"},
        {"EnvironmentName": "blue", "Status": "Ready", "CNAME": "shop-blue.eba-x.us-east-1.elasticbeanstalk.com"},
        {"EnvironmentName": "green", "Status": "Updating", "CNAME": "shop.us-east-1.elasticbeanstalk.com"},
    ]
    assert eb.find_cname_holder(envs, "shop")["EnvironmentName"] == "green"
    assert eb.find_cname_holder(envs[:2], "shop") is None


# -- smoke test --------------------------------------------------------------------------------------


def test_url_template_names_the_environment_under_test():
    env = {"CNAME": "shop-green.eba-1.us-east-1.elasticbeanstalk.com", "EndpointURL": "awseb-1.elb.amazonaws.com", "EnvironmentName": "shop-green"}
    assert (
        swap.render_url("https://{cname}/healthz?e={environment_name}", env) == "https://shop-green.eba-1.us-east-1.elasticbeanstalk.com/healthz?e=shop-green"
    )
    assert swap.render_url("http://{endpoint_url}/", env) == "http://awseb-1.elb.amazonaws.com/"
    assert swap.render_url("http://127.0.0.1:8080/healthz", env) == "http://127.0.0.1:8080/healthz"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    answers: list[tuple[int, str]]


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        status, body = self.server.answers.pop(0) if len(self.server.answers) > 1 else self.server.answers[0]  # type: ignore[attr-defined]
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: Any) -> None:
        return


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.answers = [(200, "ok")]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def test_http_check_against_a_real_server(server):
    url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
    server.answers = [(200, '{"status": "ok"}')]
    ok = swap.http_check(url, expected_text='"ok"')
    assert (ok["ok"], ok["status"], ok["detail"]) == (True, 200, "HTTP 200")
    server.answers = [(500, "Traceback (most recent call last): boom")]
    bad = swap.http_check(url)
    assert bad["ok"] is False and bad["status"] == 500
    assert bad["detail"] == "HTTP 500, expected 200; body: Traceback (most recent call last): boom"
    server.answers = [(503, "")]
    assert swap.http_check(url, expected_status=[200, 503])["ok"] is True
    server.answers = [(200, "maintenance")]
    text = swap.http_check(url, expected_text="ready")
    assert text["ok"] is False and "does not contain 'ready'" in text["detail"]


def test_http_check_reports_a_connection_error_as_a_failure():
    # a port nothing listens on (bound then closed)
    srv = _Server(("127.0.0.1", 0), _Handler)
    port = srv.server_address[1]
    srv.server_close()
    result = swap.http_check(f"http://127.0.0.1:{port}/", timeout=2)
    assert result["ok"] is False and result["status"] is None
    assert result["detail"].startswith("request failed:")


def test_smoke_test_retries_then_passes_or_gives_up():
    calls: list[str] = []
    answers = iter([False, False, True])

    def check(url: str, **_kw: Any) -> dict[str, Any]:
        calls.append(url)
        ok = next(answers)
        return {"url": url, "ok": ok, "status": 200 if ok else 502, "detail": "x"}

    clock = FakeClock()
    spec = {"url": "http://{cname}/h", "retries": 3, "delay": 2, "expected_status": [200]}
    ok, attempts = swap.smoke_test(spec, {"CNAME": "g.example"}, sleep=clock.sleep, check=check)
    assert ok is True and [a["attempt"] for a in attempts] == [1, 2, 3]
    assert calls == ["http://g.example/h"] * 3 and clock.sleeps == [2, 2]

    clock = FakeClock()
    ok, attempts = swap.smoke_test({**spec, "retries": 1}, {"CNAME": "g"}, sleep=clock.sleep, check=lambda url, **_: {"url": url, "ok": False})
    assert ok is False and len(attempts) == 2 and clock.sleeps == [2]


# -- weights ------------------------------------------------------------------------------------------


def test_weight_steps_are_validated():
    assert swap.validate_weights([10, 50, 100]) == [10, 50, 100]
    assert swap.validate_weights([100]) == [100]
    for bad, message in (
        ([], "at least one step"),
        ([10, 50], "must be 100"),
        ([50, 10, 100], "increase"),
        ([0, 100], "between 1 and 100"),
        ([10, 150], "between 1 and 100"),
        (["x", 100], "whole percentages"),
    ):
        with pytest.raises(ValueError, match=message):
            swap.validate_weights(bad)


def test_weight_plan_moves_traffic_from_live_to_target():
    assert swap.weight_plan([10, 50, 100], live="blue", target="green") == [
        {"green": 10, "blue": 90},
        {"green": 50, "blue": 50},
        {"green": 100, "blue": 0},
    ]


class FakeRoute53:
    def __init__(self, records: list[dict[str, Any]], page: int = 2, statuses: list[str] | None = None) -> None:
        self.records, self.page = records, page
        self.batches: list[dict[str, Any]] = []
        self.statuses = list(statuses or ["INSYNC"])

    def list_resource_record_sets(self, **params: Any) -> dict[str, Any]:
        start = params.get("StartRecordIdentifier")
        index = 0
        if start:
            index = next(i for i, r in enumerate(self.records) if r.get("SetIdentifier") == start)
        chunk = self.records[index : index + self.page]
        out: dict[str, Any] = {"ResourceRecordSets": chunk, "IsTruncated": index + self.page < len(self.records)}
        if out["IsTruncated"]:
            nxt = self.records[index + self.page]
            out.update(NextRecordName=nxt["Name"], NextRecordType=nxt["Type"], NextRecordIdentifier=nxt.get("SetIdentifier"))
        return out

    def change_resource_record_sets(self, **params: Any) -> dict[str, Any]:
        self.batches.append(params)
        return {"ChangeInfo": {"Id": "/change/C1", "Status": self.statuses.pop(0)}}

    def get_change(self, Id: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        return {"ChangeInfo": {"Id": Id, "Status": self.statuses.pop(0)}}


def record(name: str, ident: str | None, weight: int | None, value: str) -> dict[str, Any]:
    out: dict[str, Any] = {"Name": name, "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": value}]}
    if ident is not None:
        out["SetIdentifier"] = ident
    if weight is not None:
        out["Weight"] = weight
    return out


def test_weighted_records_of_the_pair_are_read_across_pages():
    client = FakeRoute53(
        [
            record("app.shop.example.", "blue", 90, "shop.us-east-1.elasticbeanstalk.com"),
            record("app.shop.example.", "canary", 5, "other.example"),
            record("app.shop.example.", "green", 10, "shop-green.eba-1.us-east-1.elasticbeanstalk.com"),
            record("beta.shop.example.", "green", 1, "nope"),
        ]
    )
    found = swap.read_weighted_records(client, "Z1", "APP.shop.example", ["blue", "green"])
    assert swap.weights_of(found) == {"blue": 90, "green": 10}
    assert swap.record_targets(found) == {"blue": "shop.us-east-1.elasticbeanstalk.com", "green": "shop-green.eba-1.us-east-1.elasticbeanstalk.com"}


def test_weights_change_in_one_batch_and_wait_until_insync():
    client = FakeRoute53([], statuses=["PENDING", "PENDING", "INSYNC"])
    clock = FakeClock()
    deadline = Deadline(600, "the change", clock=clock)
    swap.change_weights(
        client, "Z1", "app.shop.example", ttl=30, targets={"green": ("g.example", 50), "blue": ("b.example", 50)}, deadline=deadline, sleep=clock.sleep
    )
    [batch] = client.batches
    changes = batch["ChangeBatch"]["Changes"]
    assert [(c["Action"], c["ResourceRecordSet"]["SetIdentifier"], c["ResourceRecordSet"]["Weight"]) for c in changes] == [
        ("UPSERT", "blue", 50),
        ("UPSERT", "green", 50),
    ]
    assert changes[0]["ResourceRecordSet"]["Name"] == "app.shop.example." and changes[0]["ResourceRecordSet"]["TTL"] == 30
    assert len(clock.sleeps) == 2


def test_a_change_that_never_syncs_times_out_with_its_status():
    client = FakeRoute53([], statuses=["PENDING"] * 100)
    clock = FakeClock()
    with pytest.raises(WaitTimeout, match="last seen: change /change/C1 is PENDING"):
        swap.change_weights(client, "Z1", "a.b.c", ttl=60, targets={"g": ("x", 100)}, deadline=Deadline(30, "the change", clock=clock), sleep=clock.sleep)


# -- alarms -------------------------------------------------------------------------------------------


class FakeCloudWatch:
    def __init__(self, alarms: dict[str, str]) -> None:
        self.alarms = alarms

    def describe_alarms(self, AlarmNames: list[str], **_kw: Any) -> dict[str, Any]:  # noqa: N803
        found = [{"AlarmName": n, "StateValue": self.alarms[n], "StateReason": f"reason of {n}"} for n in AlarmNames if n in self.alarms]
        return {"MetricAlarms": found, "CompositeAlarms": []}


def test_alarm_states_and_a_missing_alarm_is_an_error():
    client = FakeCloudWatch({"5xx": "ALARM", "latency": "OK", "cpu": "INSUFFICIENT_DATA"})
    states = swap.alarm_states(client, ["5xx", "latency", "cpu"])
    assert swap.alarms_firing(states) == {"5xx": {"state": "ALARM", "reason": "reason of 5xx"}}
    assert swap.alarm_states(client, []) == {}
    with pytest.raises(ValueError, match="not found: typo"):
        swap.alarm_states(client, ["5xx", "typo"])


# -- watch ---------------------------------------------------------------------------------------------


def test_watch_returns_the_first_bad_signal_with_when_it_came():
    clock = FakeClock()
    seen = iter([None, None, "green is Ready / Red (Severe)"])
    signal = swap.watch(10, 2, [("health", lambda: next(seen)), ("alarms", lambda: None)], clock=clock, sleep=clock.sleep)
    assert signal is not None and signal.probe == "health"
    assert signal.as_dict() == {"probe": "health", "detail": "green is Ready / Red (Severe)", "after_s": 4.0}
    assert str(signal) == "green is Ready / Red (Severe) (4.0s into the window)"


def test_a_quiet_window_polls_until_its_end_and_checks_at_both_ends():
    clock = FakeClock()
    polls: list[float] = []

    def probe() -> None:
        polls.append(clock.now)

    assert swap.watch(5, 2, [("health", probe)], clock=clock, sleep=clock.sleep) is None
    assert polls == [0.0, 2.0, 4.0, 5.0]
    clock = FakeClock()
    polls.clear()
    assert swap.watch(0, 2, [("health", probe)], clock=clock, sleep=clock.sleep) is None
    assert polls == [0.0]


def test_flaky_probe_reports_only_after_failures_in_a_row():
    answers = iter(["down", None, "down", "down", "down"])
    probe = swap.ConsecutiveFailures(lambda: next(answers), 3)
    assert [probe() for _ in range(5)] == [None, None, None, None, "down (3 failures in a row)"]
    single = swap.ConsecutiveFailures(lambda: "down", 1)
    assert single() == "down"
