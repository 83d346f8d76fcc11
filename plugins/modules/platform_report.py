#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: platform_report
version_added: 0.1.0
short_description: Draw the platform's architecture and estimate its monthly cost
description:
  - Writes into O(dest) the architecture of what exists (C(architecture.svg), C(architecture.png) and the model it is drawn
    from, C(architecture.json)), the monthly cost estimate (C(cost.json)) and two pages that put them together with the
    resource list (C(report.md), C(report.html)).
  - The diagram is drawn with the C(diagrams) package (AWS icons) and Graphviz from O(state) - the tiers' C(<tier>_outputs)
    facts and the result of M(fastier.platform.platform_report_info). Only what exists appears.
  - The cost is one line per billable item and tier, for each load scenario of O(scenarios) (by default the Auto Scaling
    minimum, a typical month and the maximum), priced from the dated, sourced price table O(price_table). A price that is
    not in the table is shown as "not priced" with the reason and left out of the totals; none is guessed.
  - A file is written only when its content differs, and no file carries the time of the run, so a second run with nothing
    changed reports no change. In check mode nothing is written; the result says which files would change.
author:
  - Fastier platform team (@fastier)
options:
  dest:
    description: Folder the report is written to (created when missing).
    type: path
    required: true
  title:
    description: Title of the diagram and the pages.
    type: str
    default: Platform architecture and monthly cost
  platform:
    description: C(name), C(env), C(region) and C(dr_region) of the platform.
    type: dict
    required: true
  state:
    description:
      - The live state - C(network), C(storage), C(database), C(beanstalk), C(dns), C(cdn), C(pipeline), C(observability) (each
        that tier's C(<tier>_outputs)) and C(details) (the result of M(fastier.platform.platform_report_info)).
    type: dict
    required: true
  configured:
    description:
      - The inventory's sizes - C(beanstalk) (C(instance_type), C(min_size), C(max_size)), C(database) (C(instance_class),
        C(multi_az), C(allocated_storage), C(storage_type), C(backup_retention_days)), C(network) (C(nat_mode)), C(dns)
        (C(health_check_protocol)), C(pipeline) (C(build_compute_type)). Empty values mean "not set".
    type: dict
    default: {}
  cost_basis:
    description:
      - V(configured) prices the sizes the inventory sets (what the platform costs once converged), V(live) the sizes read
        from AWS; either falls back to the other where a value is unknown. Differences are listed in the pages either way.
    type: str
    choices: [configured, live]
    default: configured
  assumptions:
    description: Usage assumptions (hours per month, shares, GB, requests); see the role C(fastier.platform.report) for each key.
    type: dict
    default: {}
  scenarios:
    description:
      - Load scenarios, each with C(name), C(app_instances) (V(min), V(typical), V(max) or a number), C(requests_per_month) and
        C(data_transfer_out_gb). Empty means minimum, typical and maximum.
    type: list
    elements: dict
    default: []
  price_table:
    description: The price table (YAML; see C(roles/report/files/aws-prices.yml) for its form).
    type: path
    required: true
  price_list_api:
    description:
      - Ask the AWS Price List API (C(GetProducts)) for the instance-hour prices of the EC2 instance types and the RDS class in
        use, and use its answers instead of the table's for this run. When it cannot be reached within O(price_list_timeout)
        seconds, or answers nothing, the table is used and the pages say why.
    type: bool
    default: false
  price_list_timeout:
    description: Seconds to wait for each Price List API call.
    type: int
    default: 10
  price_list_region:
    description: Region of the Price List API endpoint (it is served from us-east-1, eu-central-1 and ap-south-1).
    type: str
    default: us-east-1
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
requirements:
  - diagrams (Python package)
  - Graphviz (the C(dot) program)
notes:
  - Supports C(check_mode) and C(diff) (the names of the files that change).
seealso:
  - module: fastier.platform.platform_report_info
"""

EXAMPLES = r"""
- name: Write the report of what exists
  fastier.platform.platform_report:
    dest: "{{ playbook_dir }}/../.local/report/fastier-production"
    title: Fastier production
    platform: {name: fastier, env: production, region: eu-west-1, dr_region: eu-central-1}
    state:
      network: "{{ network_outputs }}"
      storage: "{{ storage_outputs }}"
      database: "{{ database_outputs }}"
      beanstalk: "{{ beanstalk_outputs }}"
      details: "{{ details }}"
    configured:
      database: {instance_class: db.m6g.large, multi_az: true, allocated_storage: 100}
    price_table: "{{ role_path }}/files/aws-prices.yml"
  register: report
"""

RETURN = r"""
files:
  description: Each file of the report with its path and whether this run changed (or would change) it.
  returned: always
  type: dict
  sample: {"architecture.svg": {"path": "/srv/report/architecture.svg", "changed": false}}
tiers:
  description: The tiers that exist (and are drawn and costed).
  returned: always
  type: list
  elements: str
  sample: [network, storage, database, app, dns]
totals:
  description: Monthly total (USD, priced lines) per scenario.
  returned: always
  type: dict
  sample: {"minimum": "128.24", "typical": "182.50", "maximum": "387.06"}
not_priced:
  description: The lines without a sourced price, with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{"tier": "dr", "item": "Database backups kept in us-west-2", "reason": "the price table has ... for us-east-1 only"}]
price_list:
  description: What the Price List API look-up did (skipped, used, or why the table was used instead).
  returned: always
  type: dict
  sample: {"enabled": false, "used": [], "error": ""}
differences:
  description: Where the live state differs from the inventory's sizes.
  returned: always
  type: list
  elements: str
  sample: ["database Multi-AZ: live True, inventory False"]
report:
  description: Path of the HTML page.
  returned: always
  type: str
  sample: /srv/report/report.html
"""

import json
import os

try:
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # caught by AnsibleAWSModule

from ansible_collections.fastier.platform.plugins.module_utils.base import FastierAWSModule
from ansible_collections.fastier.platform.plugins.module_utils.report import cost
from ansible_collections.fastier.platform.plugins.module_utils.report import model
from ansible_collections.fastier.platform.plugins.module_utils.report import render
from ansible_collections.fastier.platform.plugins.module_utils.report.prices import Price
from ansible_collections.fastier.platform.plugins.module_utils.report.prices import PriceTable
from ansible_collections.fastier.platform.plugins.module_utils.report.prices import PriceTableError

# Price List API location names of the regions (the "location" attribute).
LOCATIONS = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
    "eu-west-2": "EU (London)",
    "eu-west-3": "EU (Paris)",
    "eu-central-1": "EU (Frankfurt)",
    "eu-north-1": "EU (Stockholm)",
    "ap-south-1": "Asia Pacific (Mumbai)",
    "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
    "ca-central-1": "Canada (Central)",
    "sa-east-1": "South America (Sao Paulo)",
}


def _on_demand_usd(item):
    """The hourly on-demand USD price and publication date of one GetProducts item."""
    product = json.loads(item) if isinstance(item, str) else item
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        for dimension in term.get("priceDimensions", {}).values():
            usd = dimension.get("pricePerUnit", {}).get("USD")
            if usd not in (None, "") and float(usd) > 0:
                return usd, product.get("publicationDate", "")
    return None, ""


def price_list_lookup(module, table, platform, wanted):
    """Override the table's instance-hour prices with the Price List API's; say what happened."""
    params = module.params
    result = {"enabled": bool(params["price_list_api"]), "used": [], "error": ""}
    if not params["price_list_api"]:
        return result
    region = platform.get("region")
    location = LOCATIONS.get(region)
    if not location:
        result["error"] = "no Price List location name known for {0}".format(region)
        return result
    timeout = params["price_list_timeout"]
    try:
        client = module.client(
            "pricing",
            region=params["price_list_region"],
            config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1}),
        )
    except (BotoCoreError, ClientError) as e:
        result["error"] = str(e)
        return result
    for price_id, service, filters in wanted:
        terms = [{"Type": "TERM_MATCH", "Field": "location", "Value": location}]
        terms += [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in filters]
        try:
            found = client.get_products(ServiceCode=service, Filters=terms, MaxResults=10).get("PriceList", [])
        except (BotoCoreError, ClientError) as e:
            result["error"] = "no answer ({0}); the price table is used".format(e)
            return result
        prices = sorted({usd: date for usd, date in (_on_demand_usd(item) for item in found) if usd}.items())
        if len(prices) != 1:
            continue  # none, or an ambiguous answer: keep the table's price
        usd, published = prices[0]
        source = {
            "id": "aws-price-list-api",
            "title": "AWS Price List API (GetProducts)",
            "url": "https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html",
            "published": published,
            "read": "at report time",
            "note": "",
        }
        table.override(Price(price_id, region, usd, "instance-hour", source["id"], quote="pricePerUnit USD {0}".format(usd)), source)
        result["used"].append(price_id)
    return result


def wanted_prices(platform, configured, basis):
    """The instance-hour prices the Price List API is asked for."""
    wanted = []
    app = configured.get("beanstalk") or {}
    types = set()
    for env in platform.get("environments") or []:
        itype = cost.pick(app.get("instance_type"), env["instance_type"], basis)
        if itype:
            types.add(itype)
    for itype in sorted(types):
        wanted.append(
            (
                "ec2.instance_hour.{0}".format(itype),
                "AmazonEC2",
                [
                    ("instanceType", itype),
                    ("operatingSystem", "Linux"),
                    ("tenancy", "Shared"),
                    ("preInstalledSw", "NA"),
                    ("capacitystatus", "Used"),
                ],
            )
        )
    db = platform.get("database")
    if db:
        want = configured.get("database") or {}
        klass = cost.pick(want.get("instance_class"), db["instance_class"], basis)
        multi = str(cost.pick(want.get("multi_az"), db["multi_az"], basis)).lower() in ("true", "yes", "1")
        wanted.append(
            (
                "rds.postgres.instance_hour.{0}.{1}".format("multi_az" if multi else "single_az", klass),
                "AmazonRDS",
                [("instanceType", klass), ("databaseEngine", "PostgreSQL"), ("deploymentOption", "Multi-AZ" if multi else "Single-AZ")],
            )
        )
    return wanted


def write_if_changed(path, content, check_mode):
    try:
        with open(path, "rb") as handle:
            if handle.read() == content:
                return False
    except (IOError, OSError):
        pass
    if not check_mode:
        tmp = path + ".tmp"
        with open(tmp, "wb") as handle:
            handle.write(content)
        os.replace(tmp, path)
    return True


def main():
    argument_spec = dict(
        dest=dict(type="path", required=True),
        title=dict(type="str", default="Platform architecture and monthly cost"),
        platform=dict(type="dict", required=True),
        state=dict(type="dict", required=True),
        configured=dict(type="dict", default={}),
        cost_basis=dict(type="str", choices=["configured", "live"], default="configured"),
        assumptions=dict(type="dict", default={}),
        scenarios=dict(type="list", elements="dict", default=[]),
        price_table=dict(type="path", required=True),
        price_list_api=dict(type="bool", default=False),
        price_list_timeout=dict(type="int", default=10),
        price_list_region=dict(type="str", default="us-east-1"),
    )
    module = FastierAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        table = PriceTable.load(params["price_table"])
    except PriceTableError as e:
        module.fail_json(msg="Cannot use the price table: {0}".format(e))
    try:
        render.check_tools()
    except render.RenderError as e:
        module.fail_json(msg="Cannot draw the architecture: {0}".format(e))

    platform = model.normalize(params["state"], params["platform"])
    configured = params["configured"] or {}
    basis = params["cost_basis"]
    price_list = price_list_lookup(module, table, platform, wanted_prices(platform, configured, basis))
    architecture = model.architecture(platform)
    try:
        estimate = cost.estimate(platform, configured, params["assumptions"], params["scenarios"], table, cost_basis=basis)
    except ValueError as e:
        module.fail_json(msg="Cannot estimate the cost: {0}".format(e))
    estimate["price_list_api"] = price_list
    differences = model.live_differences(platform, configured)
    title = params["title"]
    svg, png = render.render_images(architecture, title)
    contents = {
        "architecture.svg": svg,
        "architecture.png": png,
        "architecture.json": render.model_json(architecture, title, platform),
        "cost.json": render.cost_json(estimate),
        "report.md": render.markdown_page(title, platform, architecture, estimate, table, notes=differences),
        "report.html": render.html_page(title, platform, architecture, estimate, table, notes=differences, png=png),
    }
    dest = params["dest"]
    if not module.check_mode and not os.path.isdir(dest):
        os.makedirs(dest)
    files = {}
    for name in sorted(contents):
        path = os.path.join(dest, name)
        files[name] = {"path": path, "changed": write_if_changed(path, contents[name], module.check_mode or not os.path.isdir(dest))}
    changed_files = sorted(name for name, f in files.items() if f["changed"])
    module.exit_with_diff(
        bool(changed_files),
        {"files_changed": []},
        {"files_changed": changed_files},
        files=files,
        tiers=architecture["tiers"],
        totals=estimate["totals"],
        not_priced=[{"tier": line["tier"], "item": line["item"], "reason": line["reason"]} for line in estimate["lines"] if not line["priced"]],
        price_list=price_list,
        differences=differences,
        report=os.path.join(dest, "report.html"),
    )


if __name__ == "__main__":
    main()
