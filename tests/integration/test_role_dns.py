"""The dns role through ansible-playbook against the local AWS.

Four-step change test (check on an empty account, real, check again, real
again), then the settings a user relies on read back with boto3: the apex
alias and the www CNAME point at the given target, the health check calls the
health path over HTTPS. Then the migration TTL switch and the teardown, and a
bad inventory value rejected before any AWS call.
"""

from __future__ import annotations

import pytest

from tests.playbooks import ROOT, ensure_collection, run_playbook

PLAYBOOK = ROOT / "tests/integration/playbooks/role_dns.yml"
# Nothing listens on the discard port: an AWS call would fail to connect.
NO_AWS = "http://127.0.0.1:9"


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


def changed_tasks(run) -> list[str]:
    """Names of the changed tasks, without the role prefix.

    Read from the raw result: PlaybookRun.tasks() lets a module's own ``name``
    return value (route53_zone has one) shadow the task name.
    """
    names = []
    for play in run.result.get("plays", []):
        for task in play.get("tasks", []):
            if task.get("hosts", {}).get("localhost", {}).get("changed"):
                names.append(task["task"]["name"].split(" : ", 1)[-1])
    return names


def _zone_id(route53, domain: str) -> str | None:
    zones = route53.list_hosted_zones_by_name(DNSName=domain)["HostedZones"]
    ids = [z["Id"].split("/")[-1] for z in zones if z["Name"] == domain + "."]
    return ids[0] if ids else None


def _records(route53, zone_id: str) -> dict[tuple[str, str], dict]:
    sets = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {(r["Name"], r["Type"]): r for r in sets}


def test_dns_zone_records_and_health_check(stack, unique):
    route53 = stack.client("route53")
    domain = f"it{unique}.fastier.example"
    target = f"it{unique}-local-blue.us-east-1.elasticbeanstalk.com"
    extra = {"platform_name": f"it{unique}", "dns_domain": domain, "dns_target_cname": target}

    check = run_playbook(stack.env(), PLAYBOOK, extra, check=True)
    assert check.rc == 0, check.explain()
    # the zone and the health check would be created; records need the zone's id first
    assert "Hosted zone " + domain in changed_tasks(check)
    assert _zone_id(route53, domain) is None

    real = run_playbook(stack.env(), PLAYBOOK, extra)
    assert real.rc == 0, real.explain()
    assert set(changed_tasks(real)) == {
        f"Hosted zone {domain}",
        f"Apex alias record {domain}",
        f"Www record www.{domain}",
        "Health check of the live environment",
    }
    zone_id = _zone_id(route53, domain)
    assert zone_id
    records = _records(route53, zone_id)
    apex = records[(domain + ".", "A")]
    assert apex["AliasTarget"]["DNSName"].rstrip(".") == target
    # Elastic Beanstalk's hosted zone of us-east-1 (AWS General Reference)
    assert apex["AliasTarget"]["HostedZoneId"] == "Z117KPS5GTRQ2G"
    assert apex["AliasTarget"]["EvaluateTargetHealth"] is True
    www = records[(f"www.{domain}.", "CNAME")]
    assert [r["Value"] for r in www["ResourceRecords"]] == [target]
    assert www["TTL"] == 300

    outputs = real.task("Show dns_outputs")["dns_outputs"]
    assert outputs["zone_id"] == zone_id
    assert outputs["domain"] == domain
    check_id = outputs["health_check_id"]
    health = route53.get_health_check(HealthCheckId=check_id)["HealthCheck"]["HealthCheckConfig"]
    assert health["Type"] == "HTTPS"
    assert health["Port"] == 443
    assert health["ResourcePath"] == "/healthz"
    assert health["FullyQualifiedDomainName"] == target
    tags = route53.list_tags_for_resource(ResourceType="healthcheck", ResourceId=check_id)["ResourceTagSet"]["Tags"]
    assert {"Key": "Name", "Value": f"it{unique}-local-live-health"} in tags

    again_check = run_playbook(stack.env(), PLAYBOOK, extra, check=True)
    assert again_check.rc == 0, again_check.explain()
    assert again_check.changed == 0, changed_tasks(again_check)

    again = run_playbook(stack.env(), PLAYBOOK, extra)
    assert again.rc == 0, again.explain()
    assert again.changed == 0, changed_tasks(again)

    # a day before a cut-over: only the TTL of the www record drops
    low = run_playbook(stack.env(), PLAYBOOK, {**extra, "dns_low_ttl_for_migration": True})
    assert low.rc == 0, low.explain()
    assert changed_tasks(low) == [f"Www record www.{domain}"]
    assert _records(route53, zone_id)[(f"www.{domain}.", "CNAME")]["TTL"] == 60

    gone = run_playbook(stack.env(), PLAYBOOK, {**extra, "dns_state": "absent", "dns_delete_zone": True})
    assert gone.rc == 0, gone.explain()
    assert _zone_id(route53, domain) is None
    assert check_id not in [h["Id"] for h in route53.list_health_checks()["HealthChecks"]]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"dns_domain": "not a domain"}, "dns_domain must be a public DNS name"),
        ({"dns_health_check_path": "healthz"}, "dns_health_check_path must start with '/'"),
        ({"dns_migration_ttl": 600}, "dns_migration_ttl must be between 1 and dns_ttl"),
        ({"dns_ttl": "five minutes"}, "dns_ttl"),
        ({"dns_health_check_request_interval": 15}, "dns_health_check_request_interval"),
    ],
)
def test_dns_rejects_bad_inventory_before_any_aws_call(stack, unique, bad, message):
    extra = {
        "platform_name": f"it{unique}",
        "dns_domain": f"it{unique}.fastier.example",
        "dns_target_cname": f"it{unique}-local-blue.us-east-1.elasticbeanstalk.com",
        "aws_endpoint_url": NO_AWS,
        **bad,
    }
    run = run_playbook(stack.env(), PLAYBOOK, extra)
    assert run.rc != 0
    assert message in run.stdout, run.explain()
    failed = [t["name"] for t in run.tasks() if t.get("failed")]
    assert len(failed) == 1 and ("Check the dns inputs" in failed[0] or "arg spec" in failed[0]), failed
    assert "Could not connect" not in run.stdout
