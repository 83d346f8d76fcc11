"""The report's cost model and price table (plugins/module_utils/report/cost.py, prices.py), no endpoint."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from tests.unit.test_report_fixtures import PLATFORM, PRICE_TABLE, import_report, state

cost = import_report("cost")
model = import_report("model")
prices = import_report("prices")

TABLE = prices.PriceTable.load(PRICE_TABLE)
NAMES = ["minimum", "typical", "maximum"]


def estimate(st: dict[str, Any] | None = None, configured: dict[str, Any] | None = None, basis: str = "configured", **assumptions: Any) -> dict[str, Any]:
    platform = model.normalize(st or state(), PLATFORM)
    return cost.estimate(platform, configured or {}, assumptions, None, TABLE, cost_basis=basis)


def line(est: dict[str, Any], tier: str, starts: str) -> dict[str, Any]:
    found = [entry for entry in est["lines"] if entry["tier"] == tier and entry["item"].startswith(starts)]
    assert len(found) == 1, [entry["item"] for entry in est["lines"]]
    return found[0]


def test_totals_are_the_sums_of_the_priced_lines_per_scenario_and_per_tier():
    est = estimate()
    assert [s["name"] for s in est["scenarios"]] == NAMES
    assert est["not_priced"] == sum(1 for entry in est["lines"] if not entry["priced"]) > 0  # the DR vault storage in us-west-2
    for name in NAMES:
        priced = [Decimal(entry["monthly"][name]) for entry in est["lines"] if entry["priced"]]
        assert Decimal(est["totals"][name]) == sum(priced)
        assert sum(Decimal(t[name]) for t in est["tiers"].values()) == sum(priced)
        for tier, amounts in est["tiers"].items():
            assert Decimal(amounts[name]) == sum(Decimal(e["monthly"][name]) for e in est["lines"] if e["tier"] == tier and e["priced"])
    assert est["tiers"].keys() == {"network", "app", "database", "storage", "cdn", "dns", "pipeline", "observability", "dr"}


def test_each_priced_line_is_its_quantity_times_its_unit_price_rounded_to_the_cent():
    for entry in estimate()["lines"]:
        if entry["priced"]:
            for name in NAMES:
                expected = (Decimal(entry["quantity"][name]) * Decimal(entry["unit_price"])).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
                assert Decimal(entry["monthly"][name]) == expected, entry


def test_multi_az_off_halves_the_database_instance_and_storage_lines():
    multi = estimate(configured={"database": {"multi_az": True}})
    single = estimate(configured={"database": {"multi_az": False}})
    instance_multi = line(multi, "database", "RDS postgres db.t4g.micro")
    instance_single = line(single, "database", "RDS postgres db.t4g.micro")
    assert "Multi-AZ" in instance_multi["item"] and "Single-AZ" in instance_single["item"]
    for name in NAMES:
        assert Decimal(instance_single["monthly"][name]) * 2 == Decimal(instance_multi["monthly"][name]) == Decimal("23.36")
        storage_multi = Decimal(line(multi, "database", "Storage 20 GiB gp3")["monthly"][name])
        storage_single = Decimal(line(single, "database", "Storage 20 GiB gp3")["monthly"][name])
        assert storage_single * 2 == storage_multi
        assert Decimal(single["totals"][name]) < Decimal(multi["totals"][name])


def test_live_environment_follows_the_auto_scaling_size_and_the_idle_one_stays_at_its_minimum():
    est = estimate()
    live = line(est, "app", "EC2 t3.small (fastier-unit-blue")
    idle = line(est, "app", "EC2 t3.small (fastier-unit-green")
    assert live["quantity"] == {"minimum": "1460", "typical": "2920", "maximum": "4380"}  # 2, ceil((2+6)/2)=4, 6 instances x 730 h
    assert idle["quantity"] == {"minimum": "1460", "typical": "1460", "maximum": "1460"}
    assert (live["unit_price"], live["monthly"]) == ("0.0208", {"minimum": "30.37", "typical": "60.74", "maximum": "91.10"})
    assert [row["app_instances"] for row in est["load"]] == [2, 4, 6]
    bigger = estimate(configured={"beanstalk": {"min_size": 3, "max_size": 10}})
    assert line(bigger, "app", "EC2 t3.small (fastier-unit-blue")["quantity"] == {"minimum": "2190", "typical": "5110", "maximum": "7300"}  # 3, ceil(6.5)=7, 10
    assert Decimal(bigger["totals"]["maximum"]) > Decimal(est["totals"]["maximum"])


def test_cost_basis_picks_the_inventory_or_the_live_value_and_falls_back_to_the_other():
    configured = {"beanstalk": {"instance_type": "t3.medium", "min_size": "1", "max_size": ""}}
    inventory = estimate(configured=configured, basis="configured")
    assert line(inventory, "app", "EC2 t3.medium (fastier-unit-blue")["quantity"]["maximum"] == "4380"  # max from live (6)
    assert line(inventory, "app", "EC2 t3.medium (fastier-unit-blue")["quantity"]["minimum"] == "730"  # min from the inventory
    live = estimate(configured=configured, basis="live")
    assert line(live, "app", "EC2 t3.small (fastier-unit-blue")["quantity"]["minimum"] == "1460"


@pytest.mark.parametrize(
    ("assumption", "before", "after", "tier", "starts"),
    [
        ("nat_gb_per_month", 20, 40, "network", "NAT data processed"),
        ("static_share_percent", 60, 30, "cdn", "CloudFront data transfer out"),
        ("logs_gb_per_month", 5, 50, "observability", "CloudWatch Logs ingestion"),
        ("builds_per_month", 40, 80, "pipeline", "CodeBuild"),
        ("hours_per_month", 730, 365, "app", "Application Load Balancer (fastier-unit-blue)"),
    ],
)
def test_a_changed_assumption_changes_its_line(assumption, before, after, tier, starts):
    first = line(estimate(**{assumption: before}), tier, starts)
    second = line(estimate(**{assumption: after}), tier, starts)
    assert first["priced"] and second["priced"]
    assert first["monthly"]["maximum"] != second["monthly"]["maximum"]
    assert first["quantity"] != second["quantity"]


def test_backup_storage_is_billed_only_beyond_the_provisioned_storage_and_grows_with_retention():
    small = line(estimate(db_data_gb=10), "database", "Backup storage")
    assert small["quantity"]["minimum"] == "0" and small["monthly"]["minimum"] == "0.00"  # 10 + 10*5%*7 = 13.5 GB < 20 GiB
    week = line(estimate(db_data_gb=100), "database", "Backup storage")
    month = line(estimate(db_data_gb=100, configured={"database": {"backup_retention_days": 35}}), "database", "Backup storage")
    assert week["quantity"]["minimum"] == "115"  # 100 + 100*5%*7 - 20
    assert month["quantity"]["minimum"] == "255"  # 100 + 100*5%*35 - 20
    assert Decimal(month["monthly"]["minimum"]) > Decimal(week["monthly"]["minimum"])


def test_a_price_missing_from_the_table_is_shown_not_priced_and_left_out_of_the_totals():
    configured = {"beanstalk": {"instance_type": "z9.huge"}}
    est = estimate(configured=configured)
    missing = [e for e in est["lines"] if e["item"].startswith("EC2 z9.huge")]
    assert len(missing) == 2 and not any(e["priced"] for e in missing)
    assert all(e["monthly"] == {n: None for n in NAMES} for e in missing)
    assert "no sourced price" in missing[0]["reason"]
    baseline = estimate()
    ec2 = sum(Decimal(e["monthly"]["minimum"]) for e in baseline["lines"] if e["item"].startswith("EC2 t3.small"))
    assert Decimal(est["totals"]["minimum"]) == Decimal(baseline["totals"]["minimum"]) - ec2
    dr = line(est, "dr", "Database backups kept in us-west-2")
    assert not dr["priced"] and "us-east-1 only, not for us-west-2" in dr["reason"]


def test_only_existing_tiers_are_costed():
    est = estimate(state(dns={}, cdn={}, pipeline={}, observability={}, details={"environments": [], "database": {}, "pipeline": {}, "backup": {}}))
    assert {e["tier"] for e in est["lines"]} == {"network", "storage", "database"}
    assert [row["app_instances"] for row in est["load"]] == [None, None, None]


def test_without_a_cdn_all_traffic_goes_through_the_load_balancer():
    with_cdn = estimate()
    without = estimate(state(cdn={}))
    out_with = Decimal(line(with_cdn, "app", "Data transfer out")["quantity"]["maximum"])
    out_without = Decimal(line(without, "app", "Data transfer out")["quantity"]["maximum"])
    assert out_with == Decimal("1000") and out_without == Decimal("2500")


def test_scenarios_are_checked():
    platform = model.normalize(state(), PLATFORM)
    with pytest.raises(ValueError, match="unique"):
        cost.estimate(platform, {}, {}, [{"name": "a", "requests_per_month": 1}, {"name": "a", "requests_per_month": 2}], TABLE)
    with pytest.raises(ValueError, match="app_instances"):
        cost.estimate(platform, {}, {}, [{"name": "a", "app_instances": "lots", "requests_per_month": 1}], TABLE)
    three = cost.estimate(platform, {}, {}, [{"name": "fixed", "app_instances": 3, "requests_per_month": 1, "data_transfer_out_gb": 1}], TABLE)
    assert line(three, "app", "EC2 t3.small (fastier-unit-blue")["quantity"] == {"fixed": "2190"}


def test_price_table_every_price_names_a_dated_source():
    assert TABLE.as_of == "2026-11-22"
    assert TABLE.prices
    for price in TABLE.prices.values():
        source = TABLE.sources[price.source]
        assert source["url"].startswith("https://") and source["read"] and source["published"]
        assert price.quote
    found, reason = TABLE.lookup("eu-west-1", "route53.hosted_zone_month")
    assert found.region == "global" and reason is None
    found, reason = TABLE.lookup("eu-central-1", "ec2.instance_hour.t3.micro")
    assert found is None and "us-east-1" in reason


def test_price_table_refuses_a_price_without_a_known_source():
    with pytest.raises(prices.PriceTableError, match="unknown source"):
        prices.PriceTable({"sources": {"a": {"url": "https://x", "read": "2026-01-01"}}, "prices": {"us-east-1": {"p": {"usd": 1, "source": "b"}}}})
    with pytest.raises(prices.PriceTableError, match="read"):
        prices.PriceTable({"sources": {"a": {"url": "https://x"}}, "prices": {}})
    data: dict[str, Any] = {"sources": {"a": {"url": "https://x", "read": "2026-01-01"}}, "prices": {"us-east-1": {"p": {"usd": 1}}}}
    with pytest.raises(prices.PriceTableError, match="'usd' and 'source'"):
        prices.PriceTable(copy.deepcopy(data))


def test_an_override_from_the_price_list_api_replaces_the_table_price():
    table = prices.PriceTable.load(PRICE_TABLE)
    source = {
        "id": "aws-price-list-api",
        "title": "AWS Price List API",
        "url": "https://docs.aws.amazon.com/x",
        "published": "2026-11-01",
        "read": "now",
        "note": "",
    }
    table.override(prices.Price("ec2.instance_hour.t3.small", "us-east-1", "0.0300", "instance-hour", source["id"]), source)
    est = cost.estimate(model.normalize(state(), PLATFORM), {}, {}, None, table)
    live = line(est, "app", "EC2 t3.small (fastier-unit-blue")
    assert live["unit_price"] == "0.0300" and live["source"] == "aws-price-list-api"
