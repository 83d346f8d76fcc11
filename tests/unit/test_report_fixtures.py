"""Shared inputs of the report unit tests (no test here): the module_utils imported from this work tree and a full platform's state."""

from __future__ import annotations

import copy
import importlib
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PRICE_TABLE = ROOT / "roles/report/files/aws-prices.yml"


def import_report(name: str) -> Any:
    """Import plugins/module_utils/report/<name>.py of this work tree as ansible_collections.fastier.platform."""
    if "ansible_collections.fastier.platform" not in sys.modules:
        tree = Path(tempfile.mkdtemp(prefix="fastier-unit-")) / "ansible_collections" / "fastier"
        tree.mkdir(parents=True)
        (tree / "platform").symlink_to(ROOT)
        sys.path.insert(0, str(tree.parent.parent))
    return importlib.import_module(f"ansible_collections.fastier.platform.plugins.module_utils.report.{name}")


PLATFORM = {"name": "fastier", "env": "unit", "region": "us-east-1", "dr_region": "us-west-2"}

FULL_STATE: dict[str, Any] = {
    "network": {
        "vpc_id": "vpc-1",
        "vpc_cidr": "10.20.0.0/16",
        "azs": ["us-east-1a", "us-east-1b"],
        "public_subnet_ids": ["s1", "s2"],
        "app_subnet_ids": ["s3", "s4"],
        "db_subnet_ids": ["s5", "s6"],
        "nat_gateway_ids": ["nat-1"],
    },
    "storage": {
        "artifacts": {"name": "fastier-unit-artifacts-1", "exists": True},
        "backups": {"name": "fastier-unit-backups-1", "exists": True},
        "static": {"name": "fastier-unit-static-1", "exists": True},
    },
    "database": {
        "instance_id": "fastier-unit-db",
        "status": "available",
        "multi_az": True,
        "instance_class": "db.t4g.micro",
        "engine_version": "15",
        "secret_arn": "arn:aws:secretsmanager:us-east-1:1:secret:x",
        "secret_name": "fastier-unit/database/master",
    },
    "beanstalk": {
        "application_name": "fastier-unit",
        "live_environment": "fastier-unit-blue",
        "idle_environment": "fastier-unit-green",
        "live_url": "https://fastier-unit.us-east-1.elasticbeanstalk.com",
    },
    "dns": {"zone_id": "Z1", "domain": "unit.example", "www": "www.unit.example", "records": [{}, {}], "health_check_id": "hc-1"},
    "cdn": {"distribution_id": "E1", "domain_name": "d1.cloudfront.net", "aliases": [], "static_bucket": "fastier-unit-static-1"},
    "pipeline": {"pipeline_name": "fastier-unit", "project_names": {"test": "fastier-unit-test", "deploy": "fastier-unit-deploy"}},
    "observability": {
        "topic_arn": "arn:aws:sns:us-east-1:1:fastier-unit-alarms",
        "topic_kms_key": "alias/fastier-unit-alarms",
        "alarm_names": ["a", "b", "c"],
        "dashboard_name": "fastier-unit-overview",
    },
    "details": {
        "environments": [
            {
                "name": "fastier-unit-blue",
                "status": "Ready",
                "health": "Green",
                "version_label": "v7",
                "instances": 2,
                "min_size": 2,
                "max_size": 6,
                "instance_type": "t3.small",
                "environment_type": "LoadBalanced",
                "stream_logs": True,
            },
            {"name": "fastier-unit-green", "status": "Ready", "health": "Green", "instances": 2, "min_size": 2, "max_size": 6, "instance_type": "t3.small"},
            {"name": "fastier-unit-old", "status": "Terminated", "instances": 0},
        ],
        "database": {
            "identifier": "fastier-unit-db",
            "status": "available",
            "engine": "postgres",
            "engine_version": "15.8",
            "instance_class": "db.t4g.micro",
            "multi_az": True,
            "availability_zone": "us-east-1a",
            "secondary_availability_zone": "us-east-1b",
            "allocated_storage": 20,
            "storage_type": "gp3",
            "backup_retention_period": 7,
        },
        "pipeline": {"exists": True, "name": "fastier-unit", "pipeline_type": "V1", "stages": ["Source", "Build", "Deploy"]},
        "backup": {"dr_vaults": ["fastier-unit-dr"]},
    },
}


def state(**changes: Any) -> dict[str, Any]:
    """A deep copy of FULL_STATE with top-level keys replaced (None removes the key)."""
    out = copy.deepcopy(FULL_STATE)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out
