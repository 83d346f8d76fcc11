"""Deploys under load, counted at the live URL (the machinery of bench/deploy_under_load.py, at a light load).

One platform is built for the module (``Platform``: the sample app on a
local RDS instance, the live environment ``<app>-blue`` with two instances
behind its HAProxy, a hosted zone whose apex is an alias of the live CNAME and
the weighted record ``app.<zone>``), and the tests run in file order on it.
Every request goes through the front door of a Route 53 record
(``local_aws.frontdoor``), as a user's would through DNS; deploys run
``playbooks/deploy.yml`` as a user runs it (without the ledger, which only
rollback.yml needs). What is asserted is what a user sees: every request of a
light mixed load (reads and writes) answered with a 2xx during a deploy with
each strategy, acknowledged writes in the database, which version answers,
and which environment the record leads to. Nothing is timed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bench.deploy_under_load import BROKEN, Load, Platform, changes, wait_until
from tests.localstack import LocalStack
from tests.playbooks import ROOT, ensure_collection

LIGHT = {"rate": 16.0, "clients": 4}  # two keep-alive clients, two with a new connection per request
VERSION_HEAVY = {"list": 15, "order": 10, "version": 50, "create": 20, "update": 5}  # many /version answers: which version served


@pytest.fixture(scope="module")
def platform(stack: LocalStack) -> Iterator[Platform]:
    ensure_collection()
    built = Platform(stack, instances=2, workers=1, threads=4, orders=300)
    try:
        built.build()
        yield built
    finally:
        built.teardown()


def settle(load: Load, count: int = 8) -> None:
    """Let ``count`` more requests complete (the load is running before and after an operation)."""
    target = len(load.samples) + count
    wait_until(lambda: len(load.samples) >= target, timeout=60, what=f"{count} more requests", step=0.05)


def assert_no_failure(platform: Platform, load: Load) -> None:
    assert len(load.samples) > 20, len(load.samples)
    failures = load.failures()
    assert failures == [], [(f.op, f.status, f.error) for f in failures[:5]]
    creates = load.acknowledged_creates()
    assert creates, "the load wrote nothing"
    assert platform.lost_writes(creates) == []


def holder(platform: Platform) -> str:
    return next(e["EnvironmentName"] for e in platform.environments() if e["CNAME"].lower() == platform.live_cname)


def test_cname_swap_deploy_loses_no_request(platform: Platform) -> None:
    record = platform.domain
    assert platform.live(record) == platform.blue
    with Load(platform.url(record), platform.catalogue, mix=VERSION_HEAVY, **LIGHT) as load:
        settle(load)
        run = platform.deploy("v2", "cname_swap", watch=1, ledger=False)
        returned = load.now()
        settle(load)
    assert run.rc == 0, run.explain()
    assert_no_failure(platform, load)
    assert changes(load.versions())[0] == "v1"
    answered_after = [s.version for s in load.samples if s.start > returned and s.version]
    assert answered_after and set(answered_after) == {"v2"}  # the door followed the swap
    assert holder(platform) == platform.green
    found = platform.record(record)
    assert found is not None
    assert [(t["environment_name"], t["share"], t["version_label"]) for t in found["targets"]] == [(platform.green, 1.0, "v2")]


def test_version_failing_its_health_check_never_receives_live_traffic(platform: Platform) -> None:
    record = platform.domain
    with Load(platform.url(record), platform.catalogue, mix=VERSION_HEAVY, **LIGHT) as load:
        settle(load)
        run = platform.deploy(BROKEN, "cname_swap", watch=1, ledger=False)
        settle(load)
    assert run.rc != 0, "the deploy of a version whose /healthz fails succeeded"
    failed = run.task("fastier.platform.blue_green : Fail with what went wrong")
    assert 'failed at "Deploy the version to the idle environment"' in failed["msg"], failed["msg"]
    assert_no_failure(platform, load)
    assert set(load.versions()) == {"v2"}
    # The idle environment turned Red by its own health checks; Immutable: its old instances still run v1.
    idle = platform.environment(platform.blue)
    assert idle is not None
    assert (idle["VersionLabel"], idle["Health"]) == ("v1", "Red")
    assert {i["version_label"] for i in platform.instances_of(platform.blue)} == {"v1"}
    errors = [e["Message"] for e in platform.eb.describe_events(EnvironmentName=platform.blue, Severity="ERROR")["Events"]]
    assert any("failed its health check (GET /healthz: HTTP 503)" in m for m in errors), errors
    assert holder(platform) == platform.green
    found = platform.record(record)
    assert found is not None
    assert [(t["environment_name"], t["share"]) for t in found["targets"]] == [(platform.green, 1.0)]


class Shares:
    """The shares of the weighted record's targets as the front door had them, sampled until stopped."""

    def __init__(self, platform: Platform, name: str):
        self.platform, self.name = platform, name
        self.seen: list[dict[str, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.1):
            found = self.platform.record(self.name)
            if found:
                now = {t["environment_name"]: t["share"] for t in found["targets"]}
                if not self.seen or self.seen[-1] != now:
                    self.seen.append(now)

    def __enter__(self) -> Shares:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


def test_weighted_deploy_shifts_by_steps_and_loses_no_request(platform: Platform) -> None:
    record = platform.weighted_name
    platform.reset_weights()  # all of app.<zone> to the environment that holds the live CNAME (green, v2)
    wait_until(lambda: (found := platform.serving(record)) and [t["environment_name"] for t in found["targets"]] == [platform.green], what="reset")
    with Shares(platform, record) as shares, Load(platform.url(record), platform.catalogue, mix=VERSION_HEAVY, **LIGHT) as load:
        settle(load)
        run = platform.deploy("v3", "route53_weighted", bake=1, watch=1, ledger=False)
        settle(load)
    assert run.rc == 0, run.explain()
    assert_no_failure(platform, load)
    new_share = [seen.get(platform.blue, 0.0) for seen in shares.seen]
    assert new_share[0] == 0.0 and new_share[-1] == 1.0
    assert {0.1, 0.5} <= set(new_share), shares.seen  # each step reached the door
    sequence = changes(load.versions())
    assert (sequence[0], sequence[-1]) == ("v2", "v3")
    assert len(sequence) > 2, sequence  # while split, both versions answered in turn
    assert holder(platform) == platform.green  # no CNAME swap: only the weights moved
    assert platform.live(record) == platform.blue


def test_killed_instance_is_replaced_and_the_environment_returns_to_green(platform: Platform) -> None:
    record = platform.weighted_name
    live = platform.live(record)
    before = {i["id"] for i in platform.instances_of(live)}
    with Load(platform.url(record), platform.catalogue, **LIGHT) as load:
        settle(load)
        victim = platform.kill_instance(live)
        env = platform.wait_replaced(live, victim)
        replaced = load.now()
        settle(load)
    assert (env["Status"], env["Health"]) == ("Ready", "Green")
    after = {i["id"] for i in platform.instances_of(live)}
    assert victim["id"] not in after and len(after) == 2 and after - before
    with pytest.raises(ProcessLookupError):
        os.kill(victim["pid"], 0)
    messages = [e["Message"] for e in platform.eb.describe_events(EnvironmentName=live)["Events"]]
    assert f"Removed instance [{victim['id']}] from your environment." in messages
    # The live URL kept answering: every request after the replacement is a 2xx (one in flight on the killed process may not be).
    later = [s for s in load.samples if s.start > replaced]
    assert later and all(s.status is not None and 200 <= s.status < 300 for s in later), [(s.op, s.status, s.error) for s in later[:5]]


def test_front_door_records_and_the_url_command(platform: Platform) -> None:
    """What gets a door (CNAMEs and aliases that lead to Elastic Beanstalk) and what a user types to find it."""
    www, mail, parked = f"www.{platform.domain}", f"mail.{platform.domain}", f"old.{platform.domain}"

    def cname(name: str, value: str) -> dict[str, Any]:
        return {"Action": "UPSERT", "ResourceRecordSet": {"Name": name, "Type": "CNAME", "TTL": 300, "ResourceRecords": [{"Value": value}]}}

    platform.change(
        [
            cname(www, platform.live_cname),
            {"Action": "UPSERT", "ResourceRecordSet": {"Name": mail, "Type": "A", "TTL": 300, "ResourceRecords": [{"Value": "192.0.2.25"}]}},
            cname(parked, f"{platform.app}-gone.us-east-1.elasticbeanstalk.com"),  # no environment holds it
        ]
    )
    found = wait_until(lambda: platform.serving(www), what="the door of www")
    assert [t["environment_name"] for t in found["targets"]] == [holder(platform)]
    empty = wait_until(lambda: platform.record(parked), what="the door of a record no environment answers")
    assert (empty["served_share"], empty["targets"][0]["environment_name"]) == (0, None)
    status, _ = platform.stack.control("GET", f"/_local/frontdoor/records/{mail}")
    assert status == 404  # an address record leads to no environment: no door
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(empty["url"] + "version", timeout=10)  # noqa: S310 - loopback
    assert answer.value.code == 503  # DNS would not lead anywhere either

    settings = platform.stack.settings
    env = {**os.environ, "LOCAL_AWS_PORT": str(settings.port), "LOCAL_AWS_STATE_DIR": str(settings.state_dir)}

    def url_command(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "local_aws", "url", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)

    cli = url_command(f"{www}.", "--wait", "30")
    assert (cli.returncode, cli.stdout.strip()) == (0, found["url"]), cli.stderr
    listing = url_command()
    assert listing.returncode == 0 and www in listing.stdout and mail not in listing.stdout, listing
    on_disk = json.loads((settings.state_dir / "frontdoor.json").read_text())["records"]
    assert {r["name"] for r in on_disk} >= {platform.domain, platform.weighted_name, www, parked}


def test_route53_change_batch_is_all_or_nothing(platform: Platform) -> None:
    """A batch with one bad change changes nothing (moto applied the changes before the bad one)."""
    before = platform.route53.list_resource_record_sets(HostedZoneId=platform.zone_id)["ResourceRecordSets"]
    good = {
        "Action": "UPSERT",
        "ResourceRecordSet": {"Name": f"new.{platform.domain}", "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": platform.live_cname}]},
    }
    outside = {
        "Action": "UPSERT",
        "ResourceRecordSet": {"Name": "elsewhere.example.org", "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": "x.example"}]},
    }
    with pytest.raises(ClientError) as refused:
        platform.change([good, outside])
    assert refused.value.response["Error"]["Code"] == "InvalidChangeBatch"
    assert platform.route53.list_resource_record_sets(HostedZoneId=platform.zone_id)["ResourceRecordSets"] == before
