"""The report's architecture model and pages (plugins/module_utils/report/model.py, render.py), no endpoint.

Which nodes and edges come from which state; the drawing itself through the
``diagrams`` package and Graphviz (deterministic bytes, icons inlined).
"""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

from tests.unit.test_report_fixtures import PLATFORM, PRICE_TABLE, import_report, state

model = import_report("model")
cost = import_report("cost")
prices = import_report("prices")
render = import_report("render")


def arch(st: dict[str, Any]) -> dict[str, Any]:
    return model.architecture(model.normalize(st, PLATFORM))


def kinds(a: dict[str, Any]) -> list[str]:
    return sorted(node["kind"] for node in a["nodes"])


def edges(a: dict[str, Any]) -> set[tuple[str, str]]:
    return {(e["from"], e["to"]) for e in a["edges"]}


def test_nothing_found_draws_only_the_users():
    a = arch({})
    assert a["tiers"] == []
    assert kinds(a) == ["users"]
    assert a["edges"] == [] and a["clusters"] == []


def test_every_tier_of_a_full_platform_with_its_nodes_and_edges():
    a = arch(state())
    assert a["tiers"] == ["network", "storage", "database", "app", "dns", "cdn", "pipeline", "observability", "dr"]
    assert kinds(a) == sorted(
        ["users", "route53", "cloudfront", "nat_gateway"]
        + ["beanstalk_environment", "alb"] * 2
        + ["rds_primary", "rds_standby", "secret"]
        + ["s3_bucket"] * 3
        + ["codepipeline", "codebuild", "cloudwatch", "sns", "backup_vault"]
    )
    e = edges(a)
    assert {
        ("users", "route53"),
        ("users", "cloudfront"),
        ("route53", "alb_0"),  # the live environment's load balancer
        ("alb_0", "env_0"),
        ("alb_1", "env_1"),
        ("cloudfront", "bucket_static"),
        ("env_0", "db_primary"),
        ("env_1", "db_primary"),
        ("db_primary", "db_standby"),
        ("bucket_artifacts", "pipeline"),
        ("pipeline", "env_1"),  # deploys to the idle environment
        ("cloudwatch", "sns"),
        ("db_primary", "dr_vault_0"),
    } <= e
    envs = [n for n in a["nodes"] if n["kind"] == "beanstalk_environment"]
    assert [(n["id"], n["attrs"]["role"], n["attrs"]["name"]) for n in envs] == [
        ("env_0", "live", "fastier-unit-blue"),
        ("env_1", "idle", "fastier-unit-green"),
    ]  # the terminated environment is not drawn
    assert "LIVE, version v7\n2 running (min 2, max 6) x t3.small" in envs[0]["label"]
    standby = next(n for n in a["nodes"] if n["kind"] == "rds_standby")
    assert "us-east-1b" in standby["label"]
    assert {c["id"] for c in a["clusters"]} == {"region", "vpc", "app", "db", "s3", "dr"}
    assert next(c for c in a["clusters"] if c["id"] == "dr")["label"] == "DR region us-west-2"


def test_the_same_state_gives_the_same_model():
    assert arch(state()) == arch(state())
    assert json.dumps(arch(state()), sort_keys=True) == json.dumps(arch(state()), sort_keys=True)


def test_single_az_database_has_no_standby():
    st = state()
    st["details"]["database"]["multi_az"] = False
    a = arch(st)
    assert "rds_standby" not in kinds(a)
    assert ("db_primary", "db_standby") not in edges(a)


def test_missing_buckets_are_not_drawn_and_cloudfront_has_no_origin_edge_without_the_static_bucket():
    st = state(storage={"artifacts": {"name": "a", "exists": True}, "backups": {"name": "b", "exists": False}, "static": {"name": "s", "exists": False}})
    a = arch(st)
    assert [n["attrs"]["bucket_kind"] for n in a["nodes"] if n["kind"] == "s3_bucket"] == ["artifacts"]
    assert not any(target == "bucket_static" for _, target in edges(a))


def test_without_dns_the_users_reach_the_live_load_balancer_and_without_a_network_there_is_no_vpc():
    a = arch(state(dns={}, network={}))
    assert "route53" not in kinds(a)
    assert ("users", "alb_0") in edges(a)
    assert "vpc" not in {c["id"] for c in a["clusters"]}
    assert "nat_gateway" not in kinds(a)
    assert "network" not in a["tiers"] and "dns" not in a["tiers"]


def test_absent_or_deleted_database_pipeline_and_alarms_are_not_drawn():
    st = state(
        database={"instance_id": None, "status": "absent"}, pipeline={"pipeline_name": "fastier-unit"}, observability={"alarm_names": [], "topic_arn": ""}
    )
    st["details"]["database"] = {}
    st["details"]["pipeline"] = {"exists": False, "name": "fastier-unit"}
    a = arch(st)
    assert not {"rds_primary", "rds_standby", "secret", "codepipeline", "codebuild", "cloudwatch", "sns"} & set(kinds(a))
    assert a["tiers"] == ["network", "storage", "app", "dns", "cdn", "dr"]


def test_the_dr_region_appears_only_when_something_is_found_there():
    st = state()
    st["details"]["backup"] = {"plans": [], "dr_vaults": [], "dr_buckets": [], "replication_destinations": [], "dr_db_backups": []}
    assert "dr" not in arch(st)["tiers"]
    st["details"]["backup"]["dr_buckets"] = ["fastier-unit-backups-replica"]
    a = arch(st)
    assert "dr" in a["tiers"]
    assert ("bucket_backups", "dr_bucket_0") in edges(a)


def test_live_differences_name_what_a_converge_would_change():
    platform = model.normalize(state(), PLATFORM)
    configured = {
        "database": {"multi_az": "false", "instance_class": "db.t4g.micro", "allocated_storage": "50", "backup_retention_days": ""},
        "beanstalk": {"instance_type": "t3.small", "min_size": 2, "max_size": "4"},
    }
    assert model.live_differences(platform, configured) == [
        "database Multi-AZ: live True, inventory False",
        "database allocated storage (GiB): live 20, inventory 50",
        "fastier-unit-blue Auto Scaling max: live 6, inventory 4",
        "fastier-unit-green Auto Scaling max: live 6, inventory 4",
    ]
    assert model.live_differences(platform, {}) == []


needs_graphviz = pytest.mark.skipif(not render.HAS_DIAGRAMS or not shutil.which("dot"), reason="the diagrams package or Graphviz is missing")


@needs_graphviz
def test_the_drawing_is_byte_for_byte_the_same_each_time_and_the_svg_stands_alone():
    a = arch(state())
    svg, png = render.render_images(a, "Unit")
    again_svg, again_png = render.render_images(a, "Unit")
    assert (svg, png) == (again_svg, again_png)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert b"<svg" in svg and b"data:image/png;base64," in svg
    assert b'href="/' not in svg  # no path of this machine left in it
    dot = render.build_dot(a, "Unit").source
    for node in a["nodes"]:
        assert node["id"] in dot
    assert "fastier-unit-green" in dot and "synchronous replication" in dot


@needs_graphviz
def test_pages_hold_the_diagram_the_cost_table_and_the_resources_without_the_time_of_the_run():
    platform = model.normalize(state(), PLATFORM)
    a = model.architecture(platform)
    table = prices.PriceTable.load(PRICE_TABLE)
    est = cost.estimate(platform, {}, {}, None, table)
    notes = ["database Multi-AZ: live True, inventory False"]
    md = render.markdown_page("Unit report", platform, a, est, table, notes=notes).decode()
    assert md.startswith("# Unit report\n")
    assert "![Architecture](architecture.png)" in md
    for total in est["totals"].values():
        assert f"${float(total):,.2f}" in md
    assert "| Total (priced lines) |" in md
    assert "not priced: the price table has backup.rds_snapshot_gb_month for us-east-1 only, not for us-west-2" in md
    assert "RDS fastier-unit-db" in md and "Multi-AZ; primary us-east-1a, standby us-east-1b" in md
    assert "database Multi-AZ: live True, inventory False" in md
    assert "[aws/karpenter-provider-aws" in md and "published 2026-01-19, read 2026-11-22" in md
    page = render.html_page("Unit report", platform, a, est, table, notes=notes, png=b"\x89PNG fake").decode()
    assert page.startswith("<!DOCTYPE html>")
    assert 'src="data:image/png;base64,' in page
    assert '<a href="https://github.com/aws/karpenter-provider-aws/' in page
    assert '<tr class="total">' in page
    assert render.markdown_page("Unit report", platform, a, est, table, notes=notes) == render.markdown_page(
        "Unit report", platform, a, est, table, notes=notes
    )


def test_pages_say_what_the_price_list_api_did():
    platform = model.normalize(state(), PLATFORM)
    a = model.architecture(platform)
    table = prices.PriceTable.load(PRICE_TABLE)
    est = cost.estimate(platform, {}, {}, None, table)
    assert "AWS Price List API: " not in render.markdown_page("U", platform, a, est, table).decode()
    est["price_list_api"] = {"enabled": True, "used": [], "error": "no answer (timeout); the price table is used"}
    assert "AWS Price List API: no answer (timeout); the price table is used." in render.markdown_page("U", platform, a, est, table).decode()
    est["price_list_api"] = {"enabled": True, "used": ["ec2.instance_hour.t3.small"], "error": ""}
    assert "AWS Price List API prices used for this report: ec2.instance_hour.t3.small." in render.markdown_page("U", platform, a, est, table).decode()
