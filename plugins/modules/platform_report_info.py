#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: platform_report_info
version_added: 0.1.0
short_description: Read what the platform report needs beyond the tiers' facts
description:
  - Read-only look-ups for C(fastier.platform.report) that the tier roles' C(facts) entry points do not give.
  - Per Elastic Beanstalk environment of the application (not terminated) - its instance count (C(DescribeEnvironmentResources)),
    Auto Scaling minimum and maximum, instance type, environment and load balancer type, root volume and log streaming
    (C(DescribeConfigurationSettings)).
  - The database instance's zones (primary and standby), storage, storage type and backup retention.
  - Whether the pipeline exists, its type (V1 or V2) and stages.
  - Backup and disaster recovery - AWS Backup plans in the region and vaults in the DR region whose names start with
    O(name_prefix), replication rules of the backups bucket, buckets in the DR region whose names start with O(name_prefix),
    and database automated backups replicated to the DR region.
  - A look-up the endpoint cannot answer (for example an API the local AWS does not implement) is listed in RV(unreadable)
    with the error; the others still run.
author:
  - Fastier platform team (@fastier)
options:
  application_name:
    description: Elastic Beanstalk application whose environments are read. Empty skips them.
    type: str
    default: ""
  db_instance_identifier:
    description: RDS instance to describe. Empty skips it.
    type: str
    default: ""
  pipeline_name:
    description: CodePipeline pipeline to look for. Empty skips it.
    type: str
    default: ""
  name_prefix:
    description: Prefix of the platform's resource names (C(<platform_name>-<platform_env>)), used to find backup plans, vaults and buckets.
    type: str
    default: ""
  backups_bucket:
    description: The backups bucket whose replication rules are read. Empty skips them.
    type: str
    default: ""
  dr_region:
    description: The disaster-recovery region. Empty skips every look-up there.
    type: str
    default: ""
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - Read-only; supports C(check_mode).
seealso:
  - module: fastier.platform.platform_report
  - module: fastier.platform.eb_environment_info
"""

EXAMPLES = r"""
- name: Read the details of the fastier-production platform
  fastier.platform.platform_report_info:
    application_name: fastier-production
    db_instance_identifier: fastier-production-db
    pipeline_name: fastier-production
    name_prefix: fastier-production
    backups_bucket: fastier-production-backups-123456789012
    dr_region: eu-central-1
  register: details
"""

RETURN = r"""
environments:
  description: The application's environments that are not terminated, sorted by name.
  returned: always
  type: list
  elements: dict
  sample:
    - name: fastier-production-blue
      status: Ready
      health: Green
      version_label: "2025.01.15-3f2a9c1"
      cname: fastier-production.eu-west-1.elasticbeanstalk.com
      instances: 2
      min_size: 2
      max_size: 6
      instance_type: t3.medium
      environment_type: LoadBalanced
      load_balancer_type: application
      root_volume_size: null
      root_volume_type: ""
      stream_logs: true
database:
  description: The database instance, or an empty dict when it does not exist.
  returned: always
  type: dict
  sample:
    identifier: fastier-production-db
    status: available
    engine: postgres
    engine_version: "15.8"
    instance_class: db.m6g.large
    multi_az: true
    availability_zone: eu-west-1a
    secondary_availability_zone: eu-west-1b
    allocated_storage: 100
    max_allocated_storage: 500
    storage_type: gp3
    backup_retention_period: 14
pipeline:
  description: Whether the pipeline exists, its type and stages.
  returned: always
  type: dict
  sample: {"exists": true, "name": "fastier-production", "pipeline_type": "V1", "stages": ["Source", "Build", "Deploy"]}
backup:
  description: Backup plans, DR-region vaults, replication destinations, DR-region buckets and replicated database backups found.
  returned: always
  type: dict
  sample:
    plans: ["fastier-production-daily"]
    dr_vaults: ["fastier-production-dr"]
    replication_destinations: ["arn:aws:s3:::fastier-production-backups-dr-123456789012"]
    dr_buckets: ["fastier-production-backups-dr-123456789012"]
    dr_db_backups: []
unreadable:
  description: Look-ups the endpoint could not answer, with the error.
  returned: always
  type: list
  elements: dict
  sample: [{"what": "AWS Backup plans in us-east-1", "error": "InvalidAction: ..."}]
"""

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # caught by AnsibleAWSModule

from ansible_collections.fastier.platform.plugins.module_utils.base import FastierAWSModule
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import describe_environments
from ansible_collections.fastier.platform.plugins.module_utils.elasticbeanstalk import get_option_settings

NOT_FOUND = (
    "DBInstanceNotFound",
    "DBInstanceNotFoundFault",
    "PipelineNotFoundException",
    "ReplicationConfigurationNotFoundError",
    "NoSuchBucket",
    "ResourceNotFoundException",
    "InvalidParameterValue",
)


def _error_text(error):
    if isinstance(error, ClientError):
        err = error.response.get("Error", {})
        return "{0}: {1}".format(err.get("Code", "?"), err.get("Message", ""))
    return str(error)


def _code(error):
    return error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""


class Reader:
    def __init__(self, module):
        self.module = module
        self.unreadable = []

    def attempt(self, what, function, default):
        """``function()``; a not-found error gives ``default``, any other error is recorded and gives ``default``."""
        try:
            return function()
        except ClientError as e:
            if _code(e) in NOT_FOUND:
                return default
            self.unreadable.append({"what": what, "error": _error_text(e)})
        except BotoCoreError as e:
            self.unreadable.append({"what": what, "error": _error_text(e)})
        return default


def _first(value):
    return (value or "").split(",")[0].strip()


def read_environments(module, reader, application):
    client = module.client("elasticbeanstalk")
    found = reader.attempt("Elastic Beanstalk environments of {0}".format(application), lambda: describe_environments(client, application), [])
    out = []
    for env in sorted(found, key=lambda e: e.get("EnvironmentName", "")):
        name = env.get("EnvironmentName")
        if env.get("Status") in ("Terminated", "Terminating"):
            continue
        resources = reader.attempt(
            "resources of environment {0}".format(name),
            lambda n=name: client.describe_environment_resources(EnvironmentName=n, aws_retry=True).get("EnvironmentResources", {}),
            None,
        )
        settings = reader.attempt("option settings of environment {0}".format(name), lambda n=name: get_option_settings(client, application, n), {})
        asg = settings.get("aws:autoscaling:asg", {})
        launch = settings.get("aws:autoscaling:launchconfiguration", {})
        environment = settings.get("aws:elasticbeanstalk:environment", {})
        logs = settings.get("aws:elasticbeanstalk:cloudwatch:logs", {})

        def number(value):
            try:
                return int(value)
            except (TypeError, ValueError):
                return None

        out.append(
            {
                "name": name,
                "status": env.get("Status", ""),
                "health": env.get("Health", ""),
                "health_status": env.get("HealthStatus", ""),
                "version_label": env.get("VersionLabel", ""),
                "cname": env.get("CNAME", ""),
                "instances": None if resources is None else len(resources.get("Instances", [])),
                "load_balancers": [] if resources is None else [lb.get("Name", "") for lb in resources.get("LoadBalancers", [])],
                "min_size": number(asg.get("MinSize")),
                "max_size": number(asg.get("MaxSize")),
                "instance_type": _first(settings.get("aws:ec2:instances", {}).get("InstanceTypes")) or launch.get("InstanceType", ""),
                "environment_type": environment.get("EnvironmentType", ""),
                "load_balancer_type": environment.get("LoadBalancerType", ""),
                "root_volume_size": number(launch.get("RootVolumeSize")),
                "root_volume_type": launch.get("RootVolumeType", ""),
                "stream_logs": str(logs.get("StreamLogs", "")).lower() == "true",
            }
        )
    return out


def read_database(module, reader, identifier):
    client = module.client("rds")
    found = reader.attempt(
        "RDS instance {0}".format(identifier),
        lambda: client.describe_db_instances(DBInstanceIdentifier=identifier, aws_retry=True).get("DBInstances", []),
        [],
    )
    if not found:
        return {}
    db = found[0]
    return {
        "identifier": db.get("DBInstanceIdentifier", ""),
        "status": db.get("DBInstanceStatus", ""),
        "engine": db.get("Engine", ""),
        "engine_version": db.get("EngineVersion", ""),
        "instance_class": db.get("DBInstanceClass", ""),
        "multi_az": bool(db.get("MultiAZ")),
        "availability_zone": db.get("AvailabilityZone", ""),
        "secondary_availability_zone": db.get("SecondaryAvailabilityZone", ""),
        "allocated_storage": db.get("AllocatedStorage"),
        "max_allocated_storage": db.get("MaxAllocatedStorage"),
        "storage_type": db.get("StorageType", ""),
        "backup_retention_period": db.get("BackupRetentionPeriod"),
        "arn": db.get("DBInstanceArn", ""),
    }


def read_pipeline(module, reader, name):
    client = module.client("codepipeline")
    found = reader.attempt("CodePipeline pipeline {0}".format(name), lambda: client.get_pipeline(name=name, aws_retry=True).get("pipeline"), None)
    if not found:
        return {"exists": False, "name": name}
    return {
        "exists": True,
        "name": found.get("name", name),
        "pipeline_type": found.get("pipelineType") or "V1",
        "stages": [stage.get("name", "") for stage in found.get("stages", [])],
    }


def read_backup(module, reader, prefix, *, backups_bucket, dr_region, database):
    out = {"plans": [], "dr_vaults": [], "replication_destinations": [], "dr_buckets": [], "dr_db_backups": []}
    if prefix:
        backup = module.client("backup")

        def plans():
            names = []
            for page in backup.get_paginator("list_backup_plans").paginate():
                names += [p.get("BackupPlanName", "") for p in page.get("BackupPlansList", [])]
            return sorted(n for n in names if n.startswith(prefix))

        out["plans"] = reader.attempt("AWS Backup plans in {0}".format(module.region), plans, [])
    if backups_bucket:
        s3 = module.client("s3")
        rules = reader.attempt(
            "replication rules of {0}".format(backups_bucket),
            lambda: s3.get_bucket_replication(Bucket=backups_bucket, aws_retry=True).get("ReplicationConfiguration", {}).get("Rules", []),
            [],
        )
        out["replication_destinations"] = sorted({r.get("Destination", {}).get("Bucket", "") for r in rules if r.get("Status") == "Enabled"} - {""})
    if dr_region and prefix:
        vaults_client = module.client("backup", region=dr_region)

        def vaults():
            names = []
            for page in vaults_client.get_paginator("list_backup_vaults").paginate():
                names += [v.get("BackupVaultName", "") for v in page.get("BackupVaultList", [])]
            return sorted(n for n in names if n.startswith(prefix))

        out["dr_vaults"] = reader.attempt("AWS Backup vaults in {0}".format(dr_region), vaults, [])
        s3 = module.client("s3")

        def dr_buckets():
            names = []
            for bucket in s3.list_buckets(aws_retry=True).get("Buckets", []):
                name = bucket.get("Name", "")
                if not name.startswith(prefix):
                    continue
                location = s3.get_bucket_location(Bucket=name, aws_retry=True).get("LocationConstraint") or "us-east-1"
                if location == dr_region:
                    names.append(name)
            return sorted(names)

        out["dr_buckets"] = reader.attempt("buckets in {0}".format(dr_region), dr_buckets, [])
        if database.get("arn"):
            rds = module.client("rds", region=dr_region)
            backups = reader.attempt(
                "replicated automated backups in {0}".format(dr_region),
                lambda: rds.describe_db_instance_automated_backups(aws_retry=True).get("DBInstanceAutomatedBackups", []),
                [],
            )
            out["dr_db_backups"] = sorted(
                b.get("DBInstanceAutomatedBackupsArn", b.get("DBInstanceIdentifier", "")) for b in backups if b.get("DBInstanceArn") == database["arn"]
            )
    return out


def main():
    argument_spec = dict(
        application_name=dict(type="str", default=""),
        db_instance_identifier=dict(type="str", default=""),
        pipeline_name=dict(type="str", default=""),
        name_prefix=dict(type="str", default=""),
        backups_bucket=dict(type="str", default=""),
        dr_region=dict(type="str", default=""),
    )
    module = FastierAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    reader = Reader(module)
    environments = read_environments(module, reader, params["application_name"]) if params["application_name"] else []
    database = read_database(module, reader, params["db_instance_identifier"]) if params["db_instance_identifier"] else {}
    pipeline = read_pipeline(module, reader, params["pipeline_name"]) if params["pipeline_name"] else {"exists": False, "name": ""}
    backup = read_backup(module, reader, params["name_prefix"], backups_bucket=params["backups_bucket"], dr_region=params["dr_region"], database=database)
    module.exit_json(changed=False, environments=environments, database=database, pipeline=pipeline, backup=backup, unreadable=reader.unreadable)


if __name__ == "__main__":
    main()
