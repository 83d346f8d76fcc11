# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What exists, read from the tiers' outputs, and the architecture drawn from it.

``normalize()`` turns the raw ``<tier>_outputs`` facts and the details of
``platform_report_info`` into one plain ``platform`` dict: a tier that does
not exist is ``None`` (or an empty list), so nothing downstream has to know
the facts' shapes. ``architecture()`` turns that into nodes, edges and
clusters: only what exists appears.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

TIERS = ("network", "storage", "database", "app", "dns", "cdn", "pipeline", "observability", "dr")
TIER_TITLES = {
    "network": "Network",
    "storage": "S3 buckets",
    "database": "Database",
    "app": "Application (Elastic Beanstalk)",
    "dns": "DNS (Route 53)",
    "cdn": "CDN (CloudFront)",
    "pipeline": "Release pipeline",
    "observability": "Monitoring",
    "dr": "Backup and disaster recovery",
}
BUCKET_KINDS = ("artifacts", "backups", "static")
GONE = ("Terminated", "Terminating")


def _dict(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return value if isinstance(value, list) else []


def _text(value):
    return "" if value is None else str(value)


def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _bool(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1", "on")
    return bool(value)


def _network(outputs):
    out = _dict(outputs)
    if not out.get("vpc_id"):
        return None
    return {
        "vpc_id": _text(out.get("vpc_id")),
        "cidr": _text(out.get("vpc_cidr")),
        "azs": [_text(az) for az in _list(out.get("azs"))],
        "public_subnets": len(_list(out.get("public_subnet_ids"))),
        "app_subnets": len(_list(out.get("app_subnet_ids"))),
        "db_subnets": len(_list(out.get("db_subnet_ids"))),
        "nat_gateways": len(_list(out.get("nat_gateway_ids"))),
    }


def _buckets(outputs):
    out = _dict(outputs)
    found = []
    for kind in BUCKET_KINDS:
        bucket = _dict(out.get(kind) or _dict(out.get("buckets")).get(kind))
        if bucket.get("exists") and bucket.get("name"):
            found.append({"kind": kind, "name": _text(bucket["name"])})
    return found


def _database(outputs, details):
    out = _dict(outputs)
    det = _dict(details)
    identifier = det.get("identifier") or out.get("instance_id")
    status = det.get("status") or out.get("status")
    if not identifier or status in (None, "", "absent", "deleting"):
        return None
    return {
        "id": _text(identifier),
        "engine": _text(det.get("engine") or "postgres"),
        "version": _text(det.get("engine_version") or out.get("engine_version")),
        "instance_class": _text(det.get("instance_class") or out.get("instance_class")),
        "multi_az": _bool(det.get("multi_az") if det.get("multi_az") is not None else out.get("multi_az")),
        "az": _text(det.get("availability_zone")),
        "secondary_az": _text(det.get("secondary_availability_zone")),
        "storage_gb": _int(det.get("allocated_storage")),
        "max_storage_gb": _int(det.get("max_allocated_storage")),
        "storage_type": _text(det.get("storage_type")),
        "backup_retention_days": _int(det.get("backup_retention_period")),
        "status": _text(status),
        "endpoint": _text(out.get("endpoint_address")),
        "secret": bool(out.get("secret_arn")),
        "secret_name": _text(out.get("secret_name")) if out.get("secret_arn") else "",
    }


def _environments(outputs, details):
    out = _dict(outputs)
    live = _text(out.get("live_environment"))
    idle = _text(out.get("idle_environment"))
    envs = []
    for item in _list(details):
        env = _dict(item)
        if not env.get("name") or env.get("status") in GONE:
            continue
        name = _text(env["name"])
        envs.append(
            {
                "name": name,
                "role": "live" if name == live else "idle" if name == idle else "other",
                "status": _text(env.get("status")),
                "health": _text(env.get("health")),
                "version": _text(env.get("version_label")),
                "cname": _text(env.get("cname")),
                "instances": _int(env.get("instances")),
                "min_size": _int(env.get("min_size")),
                "max_size": _int(env.get("max_size")),
                "instance_type": _text(env.get("instance_type")),
                "load_balanced": _text(env.get("environment_type") or "LoadBalanced") == "LoadBalanced",
                "load_balancer_type": _text(env.get("load_balancer_type") or "application"),
                "root_volume_gb": _int(env.get("root_volume_size")),
                "root_volume_type": _text(env.get("root_volume_type")),
                "log_streaming": _bool(env.get("stream_logs")),
            }
        )
    order = {"live": 0, "idle": 1, "other": 2}
    return sorted(envs, key=lambda e: (order[e["role"]], e["name"]))


def _dns(outputs):
    out = _dict(outputs)
    if not out.get("zone_id"):
        return None
    return {
        "zone_id": _text(out["zone_id"]),
        "domain": _text(out.get("domain")),
        "www": _text(out.get("www")),
        "target": _text(out.get("target")),
        "records": len(_list(out.get("records"))),
        "health_check": bool(out.get("health_check_id")),
    }


def _cdn(outputs):
    out = _dict(outputs)
    if not out.get("distribution_id"):
        return None
    return {
        "id": _text(out["distribution_id"]),
        "domain": _text(out.get("domain_name")),
        "aliases": [_text(a) for a in _list(out.get("aliases"))],
        "static_bucket": _text(out.get("static_bucket")),
    }


def _pipeline(outputs, details):
    det = _dict(details)
    if not det.get("exists"):
        return None
    out = _dict(outputs)
    return {
        "name": _text(det.get("name") or out.get("pipeline_name")),
        "type": _text(det.get("pipeline_type") or "V1"),
        "stages": [_text(s) for s in _list(det.get("stages"))],
        "build_projects": sorted(_text(p) for p in _dict(out.get("project_names")).values()),
    }


def _observability(outputs):
    out = _dict(outputs)
    alarms = [_text(a) for a in _list(out.get("alarm_names"))]
    topic = _text(out.get("topic_arn"))
    if not alarms and not topic:
        return None
    kms = _text(out.get("topic_kms_key"))
    return {
        "alarms": len(alarms),
        "alarm_names": alarms,
        "topic": bool(topic),
        "dashboard": bool(out.get("dashboard_name")) and bool(alarms),
        "customer_kms_key": bool(topic) and bool(kms) and not kms.startswith("alias/aws/"),
    }


def _dr(details, dr_region):
    det = _dict(details)
    plans = [_text(p) for p in _list(det.get("plans"))]
    vaults = [_text(v) for v in _list(det.get("dr_vaults"))]
    buckets = [_text(b) for b in _list(det.get("dr_buckets"))]
    replication = [_text(r) for r in _list(det.get("replication_destinations"))]
    replicated_backups = [_text(r) for r in _list(det.get("dr_db_backups"))]
    if not (plans or vaults or buckets or replication or replicated_backups):
        return None
    return {
        "region": _text(dr_region),
        "plans": plans,
        "vaults": vaults,
        "buckets": buckets,
        "replication_destinations": replication,
        "db_backups": replicated_backups,
    }


def normalize(state, platform):
    """The ``platform`` dict (see the module docstring) from the role's ``state`` option."""
    state = _dict(state)
    platform = _dict(platform)
    details = _dict(state.get("details"))
    beanstalk = _dict(state.get("beanstalk"))
    return {
        "name": _text(platform.get("name")),
        "env": _text(platform.get("env")),
        "region": _text(platform.get("region")),
        "dr_region": _text(platform.get("dr_region")),
        "network": _network(state.get("network")),
        "buckets": _buckets(state.get("storage")),
        "database": _database(state.get("database"), details.get("database")),
        "application": _text(beanstalk.get("application_name")),
        "live_url": _text(beanstalk.get("live_url")),
        "environments": _environments(beanstalk, details.get("environments")),
        "dns": _dns(state.get("dns")),
        "cdn": _cdn(state.get("cdn")),
        "pipeline": _pipeline(state.get("pipeline"), details.get("pipeline")),
        "observability": _observability(state.get("observability")),
        "dr": _dr(details.get("backup"), platform.get("dr_region")),
        "unreadable": [_dict(u) for u in _list(details.get("unreadable"))],
    }


def tiers_present(platform):
    """The tiers that exist, in TIERS order."""
    present = {
        "network": platform.get("network") is not None,
        "storage": bool(platform.get("buckets")),
        "database": platform.get("database") is not None,
        "app": bool(platform.get("environments")),
        "dns": platform.get("dns") is not None,
        "cdn": platform.get("cdn") is not None,
        "pipeline": platform.get("pipeline") is not None,
        "observability": platform.get("observability") is not None,
        "dr": platform.get("dr") is not None,
    }
    return [tier for tier in TIERS if present[tier]]


def _env_label(env):
    role = {"live": "LIVE", "idle": "idle (next deploy)", "other": ""}[env["role"]]
    lines = [env["name"]]
    lines.append(", ".join(part for part in (role, env["version"] and "version " + env["version"]) if part))
    if env["instances"] is not None:
        size = "{0} running".format(env["instances"])
    else:
        size = "instances unknown"
    if env["min_size"] is not None and env["max_size"] is not None:
        size += " (min {0}, max {1})".format(env["min_size"], env["max_size"])
    if env["instance_type"]:
        size += " x " + env["instance_type"]
    lines.append(size)
    lines.append("{0} / {1}".format(env["status"] or "?", env["health"] or "?"))
    return "\n".join(line for line in lines if line)


def architecture(platform):
    """Nodes, edges and clusters of what exists. Every id is stable (no random ids)."""
    nodes = []
    edges = []
    clusters = {}

    def node(node_id, kind, label, tier, cluster=None, **attrs):
        nodes.append({"id": node_id, "kind": kind, "label": label, "tier": tier, "cluster": cluster, "attrs": attrs})
        return node_id

    def edge(source, target, label=""):
        edges.append({"from": source, "to": target, "label": label})

    def cluster(cluster_id, label, parent=None):
        clusters[cluster_id] = {"id": cluster_id, "label": label, "parent": parent}
        return cluster_id

    region = platform.get("region") or "region"
    node("users", "users", "Users", "edge")
    region_cluster = cluster("region", "AWS {0}".format(region))

    dns = platform.get("dns")
    cdn = platform.get("cdn")
    network = platform.get("network")
    database = platform.get("database")
    envs = platform.get("environments") or []
    buckets = {b["kind"]: b for b in platform.get("buckets") or []}

    if dns:
        label = "Route 53\n{0}".format(dns["domain"])
        if dns["health_check"]:
            label += "\nhealth check on /healthz"
        node("route53", "route53", label, "dns")
        edge("users", "route53", "DNS")
    if cdn:
        node("cloudfront", "cloudfront", "CloudFront\n{0}".format(cdn["domain"] or cdn["id"]), "cdn")
        edge("users", "cloudfront", "static files (HTTPS)")
        if dns and any(alias.endswith(dns["domain"]) for alias in cdn["aliases"]):
            edge("route53", "cloudfront", "alias")

    inner = region_cluster
    if network:
        inner = cluster(
            "vpc",
            "VPC {0} ({1}) over {2}".format(network["vpc_id"], network["cidr"], ", ".join(network["azs"]) or "?"),
            region_cluster,
        )
        if network["nat_gateways"]:
            node(
                "nat",
                "nat_gateway",
                "NAT gateway{0}\n{1} (app subnets' egress)".format("s" if network["nat_gateways"] > 1 else "", network["nat_gateways"]),
                "network",
                inner,
            )

    app_cluster = None
    if envs:
        app_cluster = cluster("app", "Elastic Beanstalk {0}".format(platform.get("application") or ""), inner)
    live_alb = None
    for index, env in enumerate(envs):
        env_id = "env_{0}".format(index)
        node(env_id, "beanstalk_environment", _env_label(env), "app", app_cluster, role=env["role"], name=env["name"])
        if env["load_balanced"]:
            alb_id = "alb_{0}".format(index)
            node(alb_id, "alb", "Application Load Balancer\n{0}{1}".format(env["name"], " (live)" if env["role"] == "live" else ""), "app", app_cluster)
            edge(alb_id, env_id, "HTTP :80")
            if env["role"] == "live":
                live_alb = alb_id
        if network and network["nat_gateways"]:
            edge(env_id, "nat", "egress")
    entry = live_alb or (("env_0") if envs else None)
    if entry:
        if dns:
            edge("route53", entry, "alias to live CNAME")
        else:
            edge("users", entry, "HTTPS")

    if database:
        db_cluster = cluster("db", "RDS {0} {1}".format(database["engine"], database["version"]).strip(), inner)
        primary_label = "{0}\n{1}\nprimary{2}".format(database["id"], database["instance_class"], (" in " + database["az"]) if database["az"] else "")
        if database["storage_gb"]:
            primary_label += "\n{0} GiB {1}".format(database["storage_gb"], database["storage_type"]).rstrip()
        node("db_primary", "rds_primary", primary_label, "database", db_cluster)
        if database["multi_az"]:
            node(
                "db_standby",
                "rds_standby",
                "standby (Multi-AZ){0}".format((" in " + database["secondary_az"]) if database["secondary_az"] else ""),
                "database",
                db_cluster,
            )
            edge("db_primary", "db_standby", "synchronous replication")
        for index in range(len(envs)):
            edge("env_{0}".format(index), "db_primary", "SQL (TLS)")
        if database["secret"]:
            node("secret", "secret", "Secrets Manager\n{0}".format(database["secret_name"]), "database", region_cluster)
            for index in range(len(envs)):
                edge("env_{0}".format(index), "secret", "reads credentials")

    if buckets:
        s3_cluster = cluster("s3", "S3", region_cluster)
        for kind in BUCKET_KINDS:
            if kind in buckets:
                node("bucket_" + kind, "s3_bucket", "{0}\n{1}".format(kind, buckets[kind]["name"]), "storage", s3_cluster, bucket_kind=kind)
        if cdn and "static" in buckets:
            edge("cloudfront", "bucket_static", "origin access control")

    pipeline = platform.get("pipeline")
    if pipeline:
        node("pipeline", "codepipeline", "CodePipeline {0}\n{1}".format(pipeline["name"], pipeline["type"]), "pipeline", region_cluster)
        if pipeline["build_projects"]:
            node("codebuild", "codebuild", "CodeBuild\n" + "\n".join(pipeline["build_projects"]), "pipeline", region_cluster)
            edge("pipeline", "codebuild", "test, build, deploy")
        if "artifacts" in buckets:
            edge("bucket_artifacts", "pipeline", "source bundle")
        idle = [i for i, env in enumerate(envs) if env["role"] == "idle"]
        live = [i for i, env in enumerate(envs) if env["role"] == "live"]
        target = idle or live
        if target:
            edge("pipeline", "env_{0}".format(target[0]), "deploys to the idle environment" if idle else "deploys")

    observability = platform.get("observability")
    if observability:
        label = "CloudWatch\n{0} alarm{1}{2}".format(
            observability["alarms"], "" if observability["alarms"] == 1 else "s", ", dashboard" if observability["dashboard"] else ""
        )
        node("cloudwatch", "cloudwatch", label, "observability", region_cluster)
        if observability["topic"]:
            node("sns", "sns", "SNS alarm topic{0}".format(" (KMS)" if observability["customer_kms_key"] else ""), "observability", region_cluster)
            edge("cloudwatch", "sns", "alarm")
        if envs:
            edge("env_0", "cloudwatch", "metrics, health")
        if database:
            edge("db_primary", "cloudwatch", "metrics")

    dr = platform.get("dr")
    if dr:
        dr_cluster = cluster("dr", "DR region {0}".format(dr["region"] or "?"))
        for index, vault in enumerate(dr["vaults"]):
            node("dr_vault_{0}".format(index), "backup_vault", "AWS Backup vault\n{0}".format(vault), "dr", dr_cluster)
            if database:
                edge("db_primary", "dr_vault_{0}".format(index), "backup copy")
        for index, bucket in enumerate(dr["buckets"]):
            node("dr_bucket_{0}".format(index), "s3_bucket", "replica bucket\n{0}".format(bucket), "dr", dr_cluster)
            if "backups" in buckets:
                edge("bucket_backups", "dr_bucket_{0}".format(index), "replication")
        for index, backup in enumerate(dr["db_backups"]):
            node("dr_db_backup_{0}".format(index), "rds_backup", "replicated automated backups\n{0}".format(backup), "dr", dr_cluster)
            if database:
                edge("db_primary", "dr_db_backup_{0}".format(index), "backup replication")
        if dr["plans"] and not dr["vaults"]:
            node("backup_plan", "backup_plan", "AWS Backup plan\n" + "\n".join(dr["plans"]), "dr", region_cluster)
            if database:
                edge("db_primary", "backup_plan", "backups")

    used = {n["cluster"] for n in nodes if n["cluster"]}
    # a cluster appears when it (or one inside it) holds a node
    for cluster_id in list(used):
        parent = clusters[cluster_id]["parent"]
        while parent:
            used.add(parent)
            parent = clusters[parent]["parent"]
    return {
        "tiers": tiers_present(platform),
        "nodes": nodes,
        "edges": edges,
        "clusters": [clusters[c] for c in clusters if c in used],
    }


def live_differences(platform, configured):
    """Where the live state differs from the inventory (what a converge would change)."""
    notes = []
    configured = _dict(configured)
    db = platform.get("database")
    want_db = _dict(configured.get("database"))
    if db:
        for key, live_key, label in (
            ("instance_class", "instance_class", "instance class"),
            ("multi_az", "multi_az", "Multi-AZ"),
            ("allocated_storage", "storage_gb", "allocated storage (GiB)"),
            ("backup_retention_days", "backup_retention_days", "backup retention (days)"),
        ):
            want = want_db.get(key)
            have = db.get(live_key)
            if want in (None, "") or have in (None, ""):
                continue
            if key == "multi_az":
                want = _bool(want)
            elif key in ("allocated_storage", "backup_retention_days"):
                want = _int(want)
            if want != have:
                notes.append("database {0}: live {1}, inventory {2}".format(label, have, want))
    want_app = _dict(configured.get("beanstalk"))
    for env in platform.get("environments") or []:
        for key, live_key, label in (
            ("instance_type", "instance_type", "instance type"),
            ("min_size", "min_size", "Auto Scaling min"),
            ("max_size", "max_size", "Auto Scaling max"),
        ):
            want = want_app.get(key)
            have = env.get(live_key)
            if want in (None, "") or have in (None, ""):
                continue
            if live_key != "instance_type":
                want = _int(want)
            if want != have:
                notes.append("{0} {1}: live {2}, inventory {3}".format(env["name"], label, have, want))
    return notes
