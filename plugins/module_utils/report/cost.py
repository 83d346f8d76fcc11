# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The monthly cost of what exists, per tier, under stated assumptions.

Every line is ``quantity x unit price`` for each load scenario (by default
the Auto Scaling minimum, a typical month and the maximum). A line whose
price is not in the price table is kept, marked "not priced" with the
reason, and left out of the totals (which say how many lines they leave
out). Amounts are rounded to the cent per line; the totals are the sums of
the rounded lines, so a reader can add them up.

Sizes (instance type, Auto Scaling min/max, Multi-AZ, storage, backup
retention) come from the inventory where it sets them (``cost_basis:
configured``: what the platform costs once converged) or from the live
state (``cost_basis: live``); the other one fills what is missing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
from decimal import ROUND_HALF_UP, Decimal

from .model import _bool, _int

CENT = Decimal("0.01")

DEFAULT_ASSUMPTIONS = {
    "hours_per_month": 730,
    "static_share_percent": 60,
    "requests_per_connection": 10,
    "dns_queries_per_request": 0.01,
    "nat_gb_per_month": 20,
    "app_root_volume_gb": 8,
    "app_root_volume_type": "gp3",
    "db_data_gb": 10,
    "db_daily_change_percent": 5,
    "s3_gb": {"artifacts": 5, "backups": 50, "static": 2},
    "s3_put_requests_per_month": 20000,
    "s3_get_requests_per_month": 200000,
    "secret_api_calls_per_month": 10000,
    "logs_gb_per_month": 5,
    "builds_per_month": 40,
    "build_minutes": 5,
    "pipeline_action_minutes_per_release": 15,
    "dr_copy_gb_per_month": 10,
    "dr_stored_gb": 70,
}

DEFAULT_SCENARIOS = [
    {"name": "minimum", "app_instances": "min", "requests_per_month": 1000000, "data_transfer_out_gb": 50},
    {"name": "typical", "app_instances": "typical", "requests_per_month": 10000000, "data_transfer_out_gb": 500},
    {"name": "maximum", "app_instances": "max", "requests_per_month": 50000000, "data_transfer_out_gb": 2500},
]


def money(value):
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def _dec(value):
    return Decimal(str(value))


def pick(configured, live, basis):
    """The inventory's value or the live one, by ``basis``; the other when the first is unknown."""
    known = [v for v in ((configured, live) if basis == "configured" else (live, configured)) if v not in (None, "")]
    return known[0] if known else None


def instances_for(scenario_value, min_size, max_size):
    """Instances of the live environment in a scenario: min, max, typical (half-way, rounded up) or a number."""
    if isinstance(scenario_value, int) and not isinstance(scenario_value, bool):
        return scenario_value
    text = str(scenario_value).strip().lower()
    if text.isdigit():
        return int(text)
    if text == "min":
        return min_size
    if text == "max":
        return max_size
    if text == "typical":
        return int(math.ceil((min_size + max_size) / 2.0))
    raise ValueError("app_instances must be min, typical, max or a number (got {0!r})".format(scenario_value))


class Estimate:
    """Collects the lines of one estimate."""

    def __init__(self, prices, region, scenarios):
        self.prices = prices
        self.region = region
        self.scenarios = scenarios
        self.lines = []
        self.used_prices = {}

    def add(self, tier, item, unit, quantities, price_id, *, note="", region=None):
        """A line: ``quantities`` is one number per scenario (or one for all)."""
        if not isinstance(quantities, (list, tuple)):
            quantities = [quantities] * len(self.scenarios)
        quantities = [_dec(q) for q in quantities]
        price, reason = self.prices.lookup(region or self.region, price_id)
        line = {
            "tier": tier,
            "item": item,
            "unit": unit,
            "quantity": {s["name"]: _plain(q) for s, q in zip(self.scenarios, quantities)},  # noqa: B905
            "price_id": price_id,
            "note": note,
        }
        if price is None:
            line.update({"priced": False, "reason": reason, "unit_price": None, "monthly": {s["name"]: None for s in self.scenarios}})
        else:
            self.used_prices[(price.region, price.price_id)] = price
            line.update(
                {
                    "priced": True,
                    "reason": "",
                    "unit_price": str(price.usd),
                    "price_unit": price.unit,
                    "price_region": price.region,
                    "source": price.source,
                    "monthly": {s["name"]: str(money(q * price.usd)) for s, q in zip(self.scenarios, quantities)},  # noqa: B905
                }
            )
        self.lines.append(line)
        return line


def _plain(value):
    """A Decimal as a short string (no exponent, no trailing zeros)."""
    text = format(value.normalize(), "f")
    return text


def _scenarios(scenarios):
    out = []
    for scenario in scenarios or DEFAULT_SCENARIOS:
        out.append(
            {
                "name": str(scenario["name"]),
                "app_instances": scenario.get("app_instances", "min"),
                "requests_per_month": int(scenario.get("requests_per_month", 0)),
                "data_transfer_out_gb": _dec(scenario.get("data_transfer_out_gb", 0)),
            }
        )
    names = [s["name"] for s in out]
    if len(set(names)) != len(names):
        raise ValueError("scenario names must be unique (got {0})".format(names))
    return out


def estimate(platform, configured, assumptions, scenarios, prices, *, cost_basis="configured"):
    """The estimate: ``{scenarios, lines, totals, tiers, not_priced, prices, assumptions}``."""
    a = dict(DEFAULT_ASSUMPTIONS)
    a.update({k: v for k, v in (assumptions or {}).items() if v is not None})
    s3_gb = dict(DEFAULT_ASSUMPTIONS["s3_gb"])
    s3_gb.update(a.get("s3_gb") or {})
    a["s3_gb"] = s3_gb
    scen = _scenarios(scenarios)
    configured = configured or {}
    hours = _dec(a["hours_per_month"])
    region = platform.get("region") or "us-east-1"
    est = Estimate(prices, region, scen)
    static_share = _dec(a["static_share_percent"]) / 100 if platform.get("cdn") else Decimal(0)
    requests = [_dec(s["requests_per_month"]) for s in scen]
    data_out = [s["data_transfer_out_gb"] for s in scen]
    dynamic_requests = [r * (1 - static_share) for r in requests]
    dynamic_gb = [g * (1 - static_share) for g in data_out]
    static_requests = [r * static_share for r in requests]
    static_gb = [g * static_share for g in data_out]
    instance_counts = {}

    # --- network -------------------------------------------------------------------
    network = platform.get("network")
    if network:
        want = configured.get("network") or {}
        nat_mode = want.get("nat_mode")
        configured_nats = {"single": 1, "per_az": len(network["azs"]) or None, "none": 0}.get(nat_mode) if nat_mode else None
        nats = _int(pick(configured_nats, network["nat_gateways"], cost_basis), 0)
        if nats:
            est.add("network", "NAT gateway{0} x {1}".format("s" if nats > 1 else "", nats), "gateway-hours", nats * hours, "vpc.nat_gateway_hour")
            est.add(
                "network",
                "NAT data processed ({0} GB/month assumed)".format(a["nat_gb_per_month"]),
                "GB",
                a["nat_gb_per_month"],
                "vpc.nat_gateway_gb",
            )

    # --- application ---------------------------------------------------------------
    want_app = configured.get("beanstalk") or {}
    for env in platform.get("environments") or []:
        itype = pick(want_app.get("instance_type"), env["instance_type"], cost_basis)
        min_size = _int(pick(want_app.get("min_size"), env["min_size"], cost_basis), 1)
        max_size = _int(pick(want_app.get("max_size"), env["max_size"], cost_basis), min_size)
        if env["role"] == "live":
            counts = [instances_for(s["app_instances"], min_size, max_size) for s in scen]
            what = "live"
        else:
            counts = [min_size] * len(scen)
            what = "{0}, runs its minimum: no traffic".format(env["role"])
        instance_counts[env["name"]] = counts
        est.add(
            "app",
            "EC2 {0} ({1}, {2})".format(itype or "?", env["name"], what),
            "instance-hours",
            [c * hours for c in counts],
            "ec2.instance_hour.{0}".format(itype or "unknown"),
            note="Auto Scaling min {0}, max {1}".format(min_size, max_size),
        )
        volume_gb = env.get("root_volume_gb") or a["app_root_volume_gb"]
        volume_type = (env.get("root_volume_type") or a["app_root_volume_type"]).lower()
        est.add(
            "app",
            "EBS root volumes {0} GB {1} ({2})".format(volume_gb, volume_type, env["name"]),
            "GB-months",
            [c * volume_gb for c in counts],
            "ebs.{0}_gb_month".format(volume_type),
        )
        if env["load_balanced"]:
            est.add("app", "Application Load Balancer ({0})".format(env["name"]), "ALB-hours", hours, "elb.alb_hour")
        if env["role"] == "live" and env["load_balanced"]:
            lcus = []
            for req, gb in zip(dynamic_requests, dynamic_gb):  # noqa: B905 - one per scenario
                per_hour_gb = gb / hours
                new_per_second = req / _dec(a["requests_per_connection"]) / (hours * 3600)
                lcus.append(max(per_hour_gb, new_per_second / 25) * hours)
            est.add(
                "app",
                "ALB capacity units (processed bytes or new connections, whichever is higher)",
                "LCU-hours",
                [q.quantize(Decimal("0.01")) for q in lcus],
                "elb.alb_lcu_hour",
            )
    if platform.get("environments"):
        est.add(
            "app",
            "Data transfer out to the internet (dynamic pages{0})".format(", static files go through CloudFront" if platform.get("cdn") else ""),
            "GB",
            dynamic_gb,
            "data_transfer.internet_out_first_10tb_gb",
        )

    # --- database --------------------------------------------------------------------
    db = platform.get("database")
    if db:
        want_db = configured.get("database") or {}
        klass = pick(want_db.get("instance_class"), db["instance_class"], cost_basis)
        multi_az = _bool(pick(want_db.get("multi_az"), db["multi_az"], cost_basis))
        storage = _int(pick(want_db.get("allocated_storage"), db["storage_gb"], cost_basis), 20)
        storage_type = str(pick(want_db.get("storage_type"), db["storage_type"], cost_basis) or "gp3").lower()
        retention = _int(pick(want_db.get("backup_retention_days"), db["backup_retention_days"], cost_basis), 7)
        deployment = "multi_az" if multi_az else "single_az"
        label = "Multi-AZ: primary + standby" if multi_az else "Single-AZ"
        est.add(
            "database",
            "RDS {0} {1} ({2})".format(db["engine"], klass, label),
            "instance-hours",
            hours,
            "rds.{0}.instance_hour.{1}.{2}".format(db["engine"], deployment, klass),
        )
        est.add(
            "database",
            "Storage {0} GiB {1} ({2})".format(storage, storage_type, label),
            "GB-months",
            storage,
            "rds.storage_gb_month.{0}.{1}".format(deployment, storage_type),
        )
        data_gb = _dec(a["db_data_gb"])
        backup_gb = data_gb + data_gb * _dec(a["db_daily_change_percent"]) / 100 * retention
        billable = max(Decimal(0), backup_gb - storage)
        est.add(
            "database",
            "Backup storage beyond the free allowance ({0} days retention)".format(retention),
            "GB-months",
            billable.quantize(Decimal("0.01")),
            "rds.backup_storage_gb_month",
            note=(
                "backups ~ {0} GB data + {1}%/day changes x {2} days = {3} GB; RDS keeps as much backup storage as the "
                "provisioned storage ({4} GiB) free".format(a["db_data_gb"], a["db_daily_change_percent"], retention, _plain(backup_gb), storage)
            ),
        )
        if db["secret"]:
            est.add("database", "Secrets Manager secret (master credentials)", "secret-months", 1, "secretsmanager.secret_month")
            est.add(
                "database",
                "Secrets Manager API calls ({0}/month assumed)".format(a["secret_api_calls_per_month"]),
                "10k calls",
                _dec(a["secret_api_calls_per_month"]) / 10000,
                "secretsmanager.api_per_10000",
            )

    # --- storage ---------------------------------------------------------------------
    buckets = platform.get("buckets") or []
    for bucket in buckets:
        gb = a["s3_gb"].get(bucket["kind"], 0)
        est.add(
            "storage",
            "S3 {0} bucket ({1} GB assumed, priced as S3 Standard)".format(bucket["kind"], gb),
            "GB-months",
            gb,
            "s3.standard_gb_month",
        )
    if buckets:
        est.add(
            "storage",
            "S3 PUT/COPY/POST/LIST requests ({0}/month assumed)".format(a["s3_put_requests_per_month"]),
            "1k requests",
            _dec(a["s3_put_requests_per_month"]) / 1000,
            "s3.standard_put_per_1000",
        )
        est.add(
            "storage",
            "S3 GET and other requests ({0}/month assumed)".format(a["s3_get_requests_per_month"]),
            "1k requests",
            _dec(a["s3_get_requests_per_month"]) / 1000,
            "s3.standard_get_per_1000",
        )

    # --- cdn -------------------------------------------------------------------------
    if platform.get("cdn"):
        est.add(
            "cdn",
            "CloudFront data transfer out ({0}% of the bytes: static files)".format(a["static_share_percent"]),
            "GB",
            static_gb,
            "cloudfront.data_out_first_10tb_gb.us_mexico_canada",
            note="priced at the United States, Mexico, Canada edge rate",
        )
        est.add(
            "cdn",
            "CloudFront HTTPS requests ({0}% of the requests)".format(a["static_share_percent"]),
            "10k requests",
            [r / 10000 for r in static_requests],
            "cloudfront.https_requests_per_10000.us_mexico_canada",
            note="priced at the United States, Mexico, Canada edge rate",
        )

    # --- dns -------------------------------------------------------------------------
    dns = platform.get("dns")
    if dns:
        est.add("dns", "Route 53 hosted zone {0}".format(dns["domain"]), "zone-months", 1, "route53.hosted_zone_month")
        est.add(
            "dns",
            "Route 53 standard queries ({0} per request; alias queries to AWS resources are free)".format(a["dns_queries_per_request"]),
            "1M queries",
            [r * _dec(a["dns_queries_per_request"]) / 1000000 for r in requests],
            "route53.standard_queries_per_million",
        )
        if dns["health_check"]:
            want_dns = configured.get("dns") or {}
            est.add("dns", "Route 53 health check (AWS endpoint)", "health check-months", 1, "route53.health_check_aws_endpoint_month")
            protocol = str(want_dns.get("health_check_protocol") or "HTTPS").upper()
            if protocol.startswith("HTTPS"):
                est.add(
                    "dns",
                    "Route 53 health check optional feature: HTTPS",
                    "feature-months",
                    1,
                    "route53.health_check_optional_feature_aws_endpoint_month",
                )

    # --- pipeline --------------------------------------------------------------------
    pipeline = platform.get("pipeline")
    if pipeline:
        if pipeline["type"] == "V2":
            est.add(
                "pipeline",
                "CodePipeline V2 {0} ({1} releases x {2} action minutes assumed)".format(
                    pipeline["name"], a["builds_per_month"], a["pipeline_action_minutes_per_release"]
                ),
                "action minutes",
                _dec(a["builds_per_month"]) * _dec(a["pipeline_action_minutes_per_release"]),
                "codepipeline.v2_action_minute",
            )
        else:
            est.add("pipeline", "CodePipeline V1 {0} (active pipeline)".format(pipeline["name"]), "pipeline-months", 1, "codepipeline.v1_active_pipeline_month")
        compute = str((configured.get("pipeline") or {}).get("build_compute_type") or "BUILD_GENERAL1_SMALL")
        size = compute.replace("BUILD_", "").lower().replace("_", ".")
        est.add(
            "pipeline",
            "CodeBuild {0} ({1} builds x {2} min assumed)".format(size, a["builds_per_month"], a["build_minutes"]),
            "build minutes",
            _dec(a["builds_per_month"]) * _dec(a["build_minutes"]),
            "codebuild.linux.{0}_minute".format(size),
        )

    # --- observability -----------------------------------------------------------------
    obs = platform.get("observability")
    if obs:
        if obs["alarms"]:
            est.add("observability", "CloudWatch alarms x {0}".format(obs["alarms"]), "alarm-months", obs["alarms"], "cloudwatch.alarm_standard_month")
        if obs["dashboard"]:
            est.add(
                "observability",
                "CloudWatch dashboard",
                "dashboard-months",
                1,
                "cloudwatch.dashboard_month",
                note="the first 3 dashboards of an account are free (not applied)",
            )
        if obs["customer_kms_key"]:
            est.add("observability", "KMS customer managed key (alarm topic)", "key-months", 1, "kms.key_month")
    if any(env.get("log_streaming") for env in platform.get("environments") or []):
        est.add(
            "observability",
            "CloudWatch Logs ingestion ({0} GB/month assumed, Beanstalk log streaming)".format(a["logs_gb_per_month"]),
            "GB",
            a["logs_gb_per_month"],
            "cloudwatch.logs_ingest_gb",
        )
        est.add(
            "observability",
            "CloudWatch Logs storage ({0} GB kept)".format(a["logs_gb_per_month"]),
            "GB-months",
            a["logs_gb_per_month"],
            "cloudwatch.logs_storage_gb_month",
        )

    # --- backup / DR -------------------------------------------------------------------
    dr = platform.get("dr")
    if dr:
        dr_region = dr["region"] or region
        est.add(
            "dr",
            "Copy to {0} ({1} GB/month assumed)".format(dr_region, a["dr_copy_gb_per_month"]),
            "GB",
            a["dr_copy_gb_per_month"],
            "data_transfer.inter_region_gb",
        )
        if dr["vaults"] or dr["db_backups"]:
            est.add(
                "dr",
                "Database backups kept in {0} ({1} GB assumed)".format(dr_region, a["dr_stored_gb"]),
                "GB-months",
                a["dr_stored_gb"],
                "backup.rds_snapshot_gb_month",
                region=dr_region,
            )
        if dr["buckets"]:
            est.add(
                "dr",
                "S3 replica of the backups bucket in {0} ({1} GB assumed)".format(dr_region, a["s3_gb"].get("backups", 0)),
                "GB-months",
                a["s3_gb"].get("backups", 0),
                "s3.standard_gb_month",
                region=dr_region,
            )

    return _summary(est, platform, a, scen, instance_counts=instance_counts, requests=requests, data_out=data_out, cost_basis=cost_basis)


def _summary(est, platform, assumptions, scen, *, instance_counts, requests, data_out, cost_basis):
    names = [s["name"] for s in scen]
    totals = {n: Decimal(0) for n in names}
    tiers = {}
    for line in est.lines:
        if not line["priced"]:
            continue
        tier = tiers.setdefault(line["tier"], {n: Decimal(0) for n in names})
        for n in names:
            amount = Decimal(line["monthly"][n])
            totals[n] += amount
            tier[n] += amount
    live = [env for env in platform.get("environments") or [] if env["role"] == "live"]
    live_counts = instance_counts.get(live[0]["name"]) if live else None
    load = []
    for index, s in enumerate(scen):
        total = totals[s["name"]]
        per_million = (total / (requests[index] / 1000000)).quantize(CENT, rounding=ROUND_HALF_UP) if requests[index] else None
        load.append(
            {
                "scenario": s["name"],
                "app_instances": live_counts[index] if live_counts else None,
                "requests_per_month": s["requests_per_month"],
                "data_transfer_out_gb": _plain(data_out[index]),
                "total": str(total),
                "per_million_requests": str(per_million) if per_million is not None else None,
            }
        )
    not_priced = [line for line in est.lines if not line["priced"]]
    return {
        "currency": est.prices.currency,
        "region": est.region,
        "cost_basis": cost_basis,
        "scenarios": [dict(s, data_transfer_out_gb=_plain(s["data_transfer_out_gb"])) for s in scen],
        "lines": est.lines,
        "tiers": {tier: {n: str(v) for n, v in amounts.items()} for tier, amounts in tiers.items()},
        "totals": {n: str(v) for n, v in totals.items()},
        "not_priced": len(not_priced),
        "load": load,
        "assumptions": {k: assumptions[k] for k in sorted(assumptions)},
        "prices": [est.used_prices[key].as_dict() for key in sorted(est.used_prices)],
    }
