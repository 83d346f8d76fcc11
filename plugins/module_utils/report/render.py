# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Drawing the architecture (``diagrams``/Graphviz) and writing the pages (Markdown, HTML).

The diagram is built with the ``diagrams`` package's AWS node classes (its
icons) and explicit node ids, so the same model always gives the same DOT
source and therefore the same SVG and PNG bytes. Graphviz references the
icons by their path on this machine; the SVG gets them inlined as data URIs
so it stands alone (in a browser, as a mail attachment). Nothing written
carries the time of the run: a second run with nothing changed writes the
same bytes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import html
import json
import re
import shutil

try:
    from diagrams import Cluster, Diagram, Edge, setcluster, setdiagram
    from diagrams.aws.compute import ElasticBeanstalk
    from diagrams.aws.database import RDSPostgresqlInstance
    from diagrams.aws.devtools import Codebuild, Codepipeline
    from diagrams.aws.general import Users
    from diagrams.aws.integration import SNS
    from diagrams.aws.management import Cloudwatch
    from diagrams.aws.network import CloudFront, ElbApplicationLoadBalancer, NATGateway, Route53
    from diagrams.aws.security import SecretsManager
    from diagrams.aws.storage import Backup, SimpleStorageServiceS3Bucket

    HAS_DIAGRAMS = True
    DIAGRAMS_IMPORT_ERROR = None
except ImportError as e:  # the module says what to install
    HAS_DIAGRAMS = False
    DIAGRAMS_IMPORT_ERROR = e

from .model import TIER_TITLES

if HAS_DIAGRAMS:
    ICONS = {
        "users": Users,
        "route53": Route53,
        "cloudfront": CloudFront,
        "alb": ElbApplicationLoadBalancer,
        "nat_gateway": NATGateway,
        "beanstalk_environment": ElasticBeanstalk,
        "rds_primary": RDSPostgresqlInstance,
        "rds_standby": RDSPostgresqlInstance,
        "rds_backup": Backup,
        "secret": SecretsManager,
        "s3_bucket": SimpleStorageServiceS3Bucket,
        "codepipeline": Codepipeline,
        "codebuild": Codebuild,
        "cloudwatch": Cloudwatch,
        "sns": SNS,
        "backup_vault": Backup,
        "backup_plan": Backup,
    }
else:
    ICONS = {}

ICON_NAMES = {
    "users": "aws.general.Users",
    "route53": "aws.network.Route53",
    "cloudfront": "aws.network.CloudFront",
    "alb": "aws.network.ElbApplicationLoadBalancer",
    "nat_gateway": "aws.network.NATGateway",
    "beanstalk_environment": "aws.compute.ElasticBeanstalk",
    "rds_primary": "aws.database.RDSPostgresqlInstance",
    "rds_standby": "aws.database.RDSPostgresqlInstance",
    "rds_backup": "aws.storage.Backup",
    "secret": "aws.security.SecretsManager",
    "s3_bucket": "aws.storage.SimpleStorageServiceS3Bucket",
    "codepipeline": "aws.devtools.Codepipeline",
    "codebuild": "aws.devtools.Codebuild",
    "cloudwatch": "aws.management.Cloudwatch",
    "sns": "aws.integration.SNS",
    "backup_vault": "aws.storage.Backup",
    "backup_plan": "aws.storage.Backup",
}


class RenderError(Exception):
    """The diagram cannot be drawn here (library or Graphviz missing)."""


def check_tools():
    """Raise RenderError saying what to install when the diagram cannot be drawn."""
    if not HAS_DIAGRAMS:
        raise RenderError(
            "the Python package 'diagrams' is needed to draw the architecture ({0}); install it in the Python that runs "
            "Ansible's modules (pip install diagrams)".format(DIAGRAMS_IMPORT_ERROR)
        )
    if not shutil.which("dot"):
        raise RenderError("Graphviz's 'dot' is not on PATH: install Graphviz (apt-get install graphviz, or tools/ensure-graphviz.sh)")


def build_dot(model, title):
    """The Graphviz source of the architecture (a ``graphviz.Digraph``)."""
    check_tools()
    diagram = Diagram(
        title,
        filename="architecture",
        outformat="png",
        show=False,
        direction="TB",
        curvestyle="curved",
        # labels are wider than the icons they sit under: room between the nodes
        graph_attr={"fontsize": "20", "pad": "0.4", "nodesep": "1.4", "ranksep": "1.0"},
        node_attr={"fontsize": "11"},
        edge_attr={"fontsize": "10", "fontcolor": "#545B64"},
    )
    setdiagram(diagram)
    try:
        clusters = {c["id"]: c for c in model["clusters"]}
        children = {}
        for c in model["clusters"]:
            children.setdefault(c["parent"], []).append(c["id"])
        members = {}
        for node in model["nodes"]:
            members.setdefault(node["cluster"], []).append(node)
        made = {}

        def place(nodes):
            for node in nodes:
                attrs = {}
                if node["kind"] == "beanstalk_environment" and node["attrs"].get("role") == "live":
                    attrs = {"fontcolor": "#1B660F"}
                elif node["kind"] == "rds_standby":
                    attrs = {"fontcolor": "#555555"}
                made[node["id"]] = ICONS[node["kind"]](node["label"], nodeid=node["id"], **attrs)

        def open_cluster(cluster_id):
            with Cluster(clusters[cluster_id]["label"]):
                place(members.get(cluster_id, []))
                for child in children.get(cluster_id, []):
                    open_cluster(child)

        place(members.get(None, []))
        for top in children.get(None, []):
            open_cluster(top)
        for edge in model["edges"]:
            made[edge["from"]] >> Edge(label=edge["label"]) >> made[edge["to"]]
        return diagram.dot
    finally:
        setcluster(None)
        setdiagram(None)


def _inline_images(svg):
    """Replace every ``xlink:href`` to a local PNG by a data URI (a standalone SVG)."""

    def repl(match):
        path = match.group(2)
        try:
            with open(path, "rb") as handle:
                data = base64.b64encode(handle.read()).decode("ascii")
        except (IOError, OSError):
            return match.group(0)
        return '{0}="data:image/png;base64,{1}"'.format(match.group(1), data)

    return re.sub(r'(xlink:href|href)="(/[^"]+\.png)"', repl, svg)


def render_images(model, title):
    """``(svg_bytes, png_bytes)`` of the architecture."""
    dot = build_dot(model, title)
    svg = dot.pipe(format="svg", quiet=True).decode("utf-8")
    png = dot.pipe(format="png", quiet=True)
    return _inline_images(svg).encode("utf-8"), png


def model_json(model, title, platform):
    doc = {
        "title": title,
        "platform": {k: platform.get(k) for k in ("name", "env", "region", "dr_region")},
        "tiers": model["tiers"],
        "nodes": [dict(n, icon=ICON_NAMES.get(n["kind"], "")) for n in model["nodes"]],
        "edges": model["edges"],
        "clusters": model["clusters"],
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def cost_json(estimate):
    return (json.dumps(estimate, indent=2, sort_keys=True) + "\n").encode("utf-8")


# --- pages -----------------------------------------------------------------------------


def _usd(value):
    if value is None:
        return "not priced"
    amount = float(value)
    return "${0:,.2f}".format(amount)


def resource_rows(platform):
    """``(tier title, resource, details)`` of what exists."""
    rows = []
    net = platform.get("network")
    if net:
        rows.append(
            (
                TIER_TITLES["network"],
                "VPC {0}".format(net["vpc_id"]),
                "{0}; zones {1}; subnets: {2} public, {3} app, {4} db; {5} NAT gateway(s)".format(
                    net["cidr"], ", ".join(net["azs"]) or "?", net["public_subnets"], net["app_subnets"], net["db_subnets"], net["nat_gateways"]
                ),
            )
        )
    for env in platform.get("environments") or []:
        rows.append(
            (
                TIER_TITLES["app"],
                "Environment {0} ({1})".format(env["name"], env["role"]),
                "{0}/{1}, version {2}, {3} instance(s) running, Auto Scaling {4}-{5} x {6}, {7}".format(
                    env["status"] or "?",
                    env["health"] or "?",
                    env["version"] or "-",
                    "?" if env["instances"] is None else env["instances"],
                    "?" if env["min_size"] is None else env["min_size"],
                    "?" if env["max_size"] is None else env["max_size"],
                    env["instance_type"] or "?",
                    ("load balanced (" + env["load_balancer_type"] + " load balancer)") if env["load_balanced"] else "single instance",
                ),
            )
        )
    db = platform.get("database")
    if db:
        rows.append(
            (
                TIER_TITLES["database"],
                "RDS {0}".format(db["id"]),
                "{0} {1}, {2}, {3}; primary {4}{5}; {6} GiB {7}; backups kept {8} days; {9}".format(
                    db["engine"],
                    db["version"],
                    db["instance_class"],
                    "Multi-AZ" if db["multi_az"] else "Single-AZ",
                    db["az"] or "?",
                    (", standby " + db["secondary_az"]) if db["multi_az"] and db["secondary_az"] else "",
                    db["storage_gb"] if db["storage_gb"] is not None else "?",
                    db["storage_type"] or "",
                    db["backup_retention_days"] if db["backup_retention_days"] is not None else "?",
                    db["status"],
                ),
            )
        )
        if db["secret"]:
            rows.append((TIER_TITLES["database"], "Secrets Manager secret", db["secret_name"]))
    for bucket in platform.get("buckets") or []:
        rows.append((TIER_TITLES["storage"], "Bucket {0}".format(bucket["name"]), bucket["kind"]))
    dns = platform.get("dns")
    if dns:
        rows.append(
            (
                TIER_TITLES["dns"],
                "Hosted zone {0}".format(dns["domain"]),
                "{0}; {1} record(s) for the site; health check {2}; target {3}".format(
                    dns["zone_id"], dns["records"], "yes" if dns["health_check"] else "no", dns["target"] or "-"
                ),
            )
        )
    cdn = platform.get("cdn")
    if cdn:
        rows.append((TIER_TITLES["cdn"], "Distribution {0}".format(cdn["id"]), "{0}; static bucket {1}".format(cdn["domain"], cdn["static_bucket"])))
    pipe = platform.get("pipeline")
    if pipe:
        rows.append(
            (
                TIER_TITLES["pipeline"],
                "Pipeline {0}".format(pipe["name"]),
                "{0}; stages {1}; build projects {2}".format(pipe["type"], ", ".join(pipe["stages"]) or "-", ", ".join(pipe["build_projects"]) or "-"),
            )
        )
    obs = platform.get("observability")
    if obs:
        rows.append(
            (
                TIER_TITLES["observability"],
                "{0} alarm(s)".format(obs["alarms"]),
                "topic {0}; dashboard {1}".format("yes" if obs["topic"] else "no", "yes" if obs["dashboard"] else "no"),
            )
        )
    dr = platform.get("dr")
    if dr:
        parts = []
        if dr["plans"]:
            parts.append("backup plans " + ", ".join(dr["plans"]))
        if dr["vaults"]:
            parts.append("vaults " + ", ".join(dr["vaults"]))
        if dr["buckets"]:
            parts.append("replica buckets " + ", ".join(dr["buckets"]))
        if dr["replication_destinations"]:
            parts.append("replication to " + ", ".join(dr["replication_destinations"]))
        if dr["db_backups"]:
            parts.append("replicated database backups " + ", ".join(dr["db_backups"]))
        rows.append((TIER_TITLES["dr"], "DR region {0}".format(dr["region"]), "; ".join(parts)))
    return rows


def _sections(platform, model, estimate, table, notes):
    """The content shared by both pages: a list of (kind, payload)."""
    names = [s["name"] for s in estimate["scenarios"]]
    missing = [t for t in TIER_TITLES if t not in model["tiers"]]
    out = []
    summary = [
        "Region {0}; disaster-recovery region {1}.".format(platform["region"] or "?", platform["dr_region"] or "-"),
        "Found: {0}.".format(", ".join(TIER_TITLES[t] for t in model["tiers"]) or "nothing"),
    ]
    if missing:
        summary.append("Not found (not drawn, not costed): {0}.".format(", ".join(TIER_TITLES[t] for t in missing)))
    if platform.get("live_url"):
        summary.append("Live environment: {0}.".format(platform["live_url"]))
    totals = ", ".join("{0} {1}".format(n, _usd(estimate["totals"][n])) for n in names)
    summary.append(
        "Estimated monthly cost ({0}, on-demand list prices, before tax): {1}{2}.".format(
            estimate["currency"],
            totals,
            "; {0} line(s) not priced and left out of the totals".format(estimate["not_priced"]) if estimate["not_priced"] else "",
        )
    )
    out.append(("paragraphs", summary))
    out.append(("heading", "Monthly cost at a glance"))
    glance = [[TIER_TITLES[t]] + [_usd(estimate["tiers"][t][n]) for n in names] for t in model["tiers"] if t in estimate["tiers"]]
    glance.append(["Total (priced lines)"] + [_usd(estimate["totals"][n]) for n in names])
    out.append(("table", (["Tier"] + ["{0} ({1})".format(n.capitalize(), estimate["currency"]) for n in names], glance)))
    out.append(("heading", "Architecture"))
    out.append(("diagram", None))
    out.append(("heading", "Monthly cost by tier"))
    header = ["Tier", "Line", "Quantity ({0})".format(" / ".join(names)), "Unit price"] + [
        "{0} ({1})".format(n.capitalize(), estimate["currency"]) for n in names
    ]
    rows = []
    for line in estimate["lines"]:
        qty = " / ".join(line["quantity"][n] for n in names)
        if line["priced"]:
            price = "${0} per {1}".format(line["unit_price"], line.get("price_unit") or line["unit"])
            amounts = [_usd(line["monthly"][n]) for n in names]
        else:
            price = "not priced: {0}".format(line["reason"])
            amounts = ["not priced"] * len(names)
        item = line["item"] + (" ({0})".format(line["note"]) if line["note"] else "")
        rows.append([TIER_TITLES.get(line["tier"], line["tier"]), item, qty, price] + amounts)
    for tier in model["tiers"]:
        if tier in estimate["tiers"]:
            rows.append(["", "Subtotal " + TIER_TITLES[tier], "", ""] + [_usd(estimate["tiers"][tier][n]) for n in names])
    rows.append(["", "Total (priced lines)", "", ""] + [_usd(estimate["totals"][n]) for n in names])
    out.append(("table", (header, rows)))
    if estimate["not_priced"]:
        out.append(
            (
                "paragraphs",
                [
                    "Lines marked 'not priced' have no sourced price in the price table for this region; they are shown "
                    "so nothing is hidden, and they are not in the totals. Add a sourced price to the table (or turn on "
                    "report_price_list_api where the AWS Price List API is reachable) to price them."
                ],
            )
        )
    out.append(("heading", "How the cost moves with load"))
    load_rows = []
    for row in estimate["load"]:
        load_rows.append(
            [
                row["scenario"],
                "-" if row["app_instances"] is None else str(row["app_instances"]),
                "{0:,}".format(row["requests_per_month"]),
                row["data_transfer_out_gb"],
                _usd(row["total"]),
                _usd(row["per_million_requests"]) if row["per_million_requests"] is not None else "-",
            ]
        )
    out.append(
        (
            "table",
            (["Scenario", "App instances (live)", "Requests / month", "Data out (GB)", "Monthly total", "Per million requests"], load_rows),
        )
    )
    out.append(("heading", "Assumptions"))
    arows = [["hours per month", str(estimate["assumptions"]["hours_per_month"])]]
    for s in estimate["scenarios"]:
        arows.append(
            [
                "scenario " + s["name"],
                "live environment at {0} instances, {1:,} requests, {2} GB out a month".format(
                    s["app_instances"], s["requests_per_month"], s["data_transfer_out_gb"]
                ),
            ]
        )
    for key, value in sorted(estimate["assumptions"].items()):
        if key != "hours_per_month":
            arows.append([key.replace("_", " "), json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)])
    arows.append(
        [
            "sizes from",
            "the inventory where it sets them, else the live state" if estimate["cost_basis"] == "configured" else "the live state, else the inventory",
        ]
    )
    arows.append(
        [
            "not included",
            "taxes, support plans, free tiers and credits, savings plans or reserved instances, SNS e-mail notifications "
            "(first 1,000 a month free), data transfer inside the region",
        ]
    )
    out.append(("table", (["Assumption (report_* variables)", "Value"], arows)))
    out.append(("heading", "Resources"))
    out.append(("table", (["Tier", "Resource", "Details"], [list(r) for r in resource_rows(platform)])))
    if notes:
        out.append(("heading", "Live state differs from the inventory"))
        out.append(("list", notes))
    if platform.get("unreadable"):
        out.append(("heading", "Not read"))
        out.append(("list", ["{0}: {1}".format(u.get("what", "?"), u.get("error", "")) for u in platform["unreadable"]]))
    out.append(("heading", "Prices used"))
    prows = []
    for price in estimate["prices"]:
        source = table.sources.get(price["source"], {})
        prows.append(
            [
                price["price_id"],
                price["region"],
                "${0} per {1}".format(price["usd"], price["unit"]),
                "[{0}]({1})".format(source.get("title", price["source"]), source.get("url", "")),
                "published {0}, read {1}".format(source.get("published", "?"), source.get("read", "?")),
            ]
        )
    out.append(("table", (["Price", "Region", "Price", "Source", "Date"], prows)))
    out.append(
        (
            "paragraphs",
            ["Price table dated {0} (roles/report/files/aws-prices.yml); every price names its source and date.".format(table.as_of)]
            + _price_list_note(estimate),
        )
    )
    return out


def _price_list_note(estimate):
    """What the AWS Price List API look-up did, when it was asked for."""
    api = estimate.get("price_list_api") or {}
    if not api.get("enabled"):
        return []
    if api.get("error"):
        return ["AWS Price List API: {0}.".format(api["error"])]
    if api.get("used"):
        return ["AWS Price List API prices used for this report: {0}.".format(", ".join(api["used"]))]
    return ["AWS Price List API: asked, no single on-demand price found; the price table is used."]


def _md_cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_page(title, platform, model, estimate, table, *, notes=()):
    lines = ["# " + title, ""]
    for kind, payload in _sections(platform, model, estimate, table, notes):
        if kind == "heading":
            lines += ["## " + payload, ""]
        elif kind == "paragraphs":
            for p in payload:
                lines += [p, ""]
        elif kind == "diagram":
            lines += ["![Architecture](architecture.png)", "", "Vector version: [architecture.svg](architecture.svg).", ""]
        elif kind == "list":
            lines += ["- " + item for item in payload] + [""]
        elif kind == "table":
            header, rows = payload
            lines.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
            lines.append("|" + " --- |" * len(header))
            for row in rows:
                lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
            lines.append("")
    return ("\n".join(lines).rstrip() + "\n").encode("utf-8")


_LINK = re.compile(r"\[([^\]]*)\]\(([^)]*)\)")
_AMOUNT = re.compile(r"^\$[0-9,]+\.[0-9]{2}$")


def _html_cell(text):
    text = str(text)
    parts = []
    last = 0
    for match in _LINK.finditer(text):
        parts.append(html.escape(text[last : match.start()]))
        parts.append('<a href="{0}">{1}</a>'.format(html.escape(match.group(2), quote=True), html.escape(match.group(1))))
        last = match.end()
    parts.append(html.escape(text[last:]))
    return "".join(parts).replace("\n", "<br>")


STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1d2733; max-width: 1200px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.7em; border-bottom: 3px solid #ff9900; padding-bottom: .3em; }
h2 { font-size: 1.25em; margin-top: 1.8em; color: #232f3e; }
table { border-collapse: collapse; width: 100%; font-size: .88em; margin: .6em 0 1em; }
th, td { border: 1px solid #d5dbdb; padding: .35em .5em; text-align: left; vertical-align: top; }
th { background: #f2f3f3; }
tr.total td { font-weight: bold; background: #fdf7e3; }
tr.subtotal td { background: #f7f9fa; }
td.num { text-align: right; white-space: nowrap; }
td { min-width: 4em; }
img.diagram { max-width: 100%; border: 1px solid #d5dbdb; }
"""


def html_page(title, platform, model, estimate, table, *, notes=(), png=b""):
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>{0}</title>".format(html.escape(title)),
        "<style>{0}</style></head><body>".format(STYLE),
        "<h1>{0}</h1>".format(html.escape(title)),
    ]
    for kind, payload in _sections(platform, model, estimate, table, notes):
        if kind == "heading":
            out.append("<h2>{0}</h2>".format(html.escape(payload)))
        elif kind == "paragraphs":
            out += ["<p>{0}</p>".format(_html_cell(p)) for p in payload]
        elif kind == "diagram":
            out.append('<p><img class="diagram" alt="Architecture diagram" src="data:image/png;base64,{0}"></p>'.format(base64.b64encode(png).decode("ascii")))
            out.append('<p>Vector version: <a href="architecture.svg">architecture.svg</a>.</p>')
        elif kind == "list":
            out.append("<ul>" + "".join("<li>{0}</li>".format(_html_cell(i)) for i in payload) + "</ul>")
        elif kind == "table":
            header, rows = payload
            out.append("<table><thead><tr>" + "".join("<th>{0}</th>".format(_html_cell(h)) for h in header) + "</tr></thead><tbody>")
            for row in rows:
                css = ""
                if any(str(cell).startswith("Total") for cell in row[:2]):
                    css = ' class="total"'
                elif any(str(cell).startswith("Subtotal") for cell in row[:2]):
                    css = ' class="subtotal"'
                cells = []
                for cell in row:
                    cls = ' class="num"' if _AMOUNT.match(str(cell)) or str(cell) == "not priced" else ""
                    cells.append("<td{0}>{1}</td>".format(cls, _html_cell(cell)))
                out.append("<tr{0}>{1}</tr>".format(css, "".join(cells)))
            out.append("</tbody></table>")
    out.append("</body></html>")
    return ("\n".join(out) + "\n").encode("utf-8")
