"""The observability role through ansible-playbook against the local AWS.

Four-step change test, then what an on-call engineer relies on, read back
with boto3: every alarm notifies the topic on ALARM and OK, with the
thresholds and dimensions the inventory gave; the topic is encrypted with a
key CloudWatch may use and only this account's alarms may publish; the
dashboard graphs the alarmed metrics. Then alarms of a target that is gone
are removed, the teardown, and bad inventory values rejected before any AWS
call.
"""

from __future__ import annotations

import json

import pytest

from tests.playbooks import ROOT, ensure_collection, run_playbook

PLAYBOOK = ROOT / "tests/integration/playbooks/role_observability.yml"
NO_AWS = "http://127.0.0.1:9"  # nothing listens there: an AWS call would fail to connect
ACCOUNT = "123456789012"  # moto's account


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


def test_observability_topic_alarms_and_dashboard(stack, unique):
    cloudwatch = stack.client("cloudwatch")
    sns = stack.client("sns")
    kms = stack.client("kms")
    prefix = f"it{unique}-local"
    topic_arn = f"arn:aws:sns:us-east-1:{ACCOUNT}:{prefix}-alarms"
    lb = f"app/awseb-AWSEB-{unique}/0123456789abcdef"
    extra = {
        "platform_name": f"it{unique}",
        "observability_email_subscriptions": ["oncall@fastier.example"],
        "observability_environment_name": f"{prefix}-blue",
        "observability_load_balancer": f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/{lb}",
        "observability_autoscaling_group": f"awseb-e-{unique}-stack-AWSEBAutoScalingGroup-X",
        "observability_db_instance_id": f"{prefix}-db",
        "observability_alb_5xx_threshold": 7,
        "observability_alb_latency_threshold_s": 1.5,
        "observability_eb_health_threshold": 25,
        "observability_ec2_cpu_threshold": 70,
        "observability_rds_cpu_threshold": 75,
        "observability_rds_freeable_memory_threshold_mib": 300,
        "observability_rds_free_storage_threshold_gib": 8,
        "observability_rds_connections_threshold": 150,
    }

    check = run_playbook(stack.env(), PLAYBOOK, extra, check=True)
    assert check.rc == 0, check.explain()
    assert {
        "KMS key of the alarm topic",
        f"Alarm topic that check mode cannot show {prefix}-alarms",
        "Alarms on the watched resources",
        f"Dashboard {prefix}-overview",
    } <= set(check.changed_tasks(without_role=True))
    assert topic_arn not in [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    assert cloudwatch.describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"] == []

    real = run_playbook(stack.env(), PLAYBOOK, extra)
    assert real.rc == 0, real.explain()
    out = real.outputs("observability_outputs")
    assert out["topic_arn"] == topic_arn
    assert out["dashboard_name"] == f"{prefix}-overview"
    assert out["unwatched"] == []

    alarms = {a["AlarmName"].removeprefix(prefix + "-"): a for a in cloudwatch.describe_alarms(AlarmNamePrefix=prefix + "-")["MetricAlarms"]}
    assert sorted(alarms) == sorted(
        ["alb-elb-5xx", "alb-target-5xx", "alb-latency", "eb-health", "ec2-cpu", "rds-cpu", "rds-freeable-memory", "rds-free-storage", "rds-connections"]
    )
    assert sorted(out["alarm_names"]) == sorted(f"{prefix}-{name}" for name in alarms)
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [topic_arn], alarm["AlarmName"]
        assert alarm["OKActions"] == [topic_arn], alarm["AlarmName"]
        assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (60, 5, 3)
    expected = {
        "alb-elb-5xx": ("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "LoadBalancer", lb, 7, "GreaterThanOrEqualToThreshold"),
        "alb-target-5xx": ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", lb, 7, "GreaterThanOrEqualToThreshold"),
        "alb-latency": ("AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", lb, 1.5, "GreaterThanThreshold"),
        "eb-health": ("AWS/ElasticBeanstalk", "EnvironmentHealth", "EnvironmentName", f"{prefix}-blue", 25, "GreaterThanOrEqualToThreshold"),
        "ec2-cpu": ("AWS/EC2", "CPUUtilization", "AutoScalingGroupName", extra["observability_autoscaling_group"], 70, "GreaterThanThreshold"),
        "rds-cpu": ("AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", f"{prefix}-db", 75, "GreaterThanThreshold"),
        "rds-freeable-memory": ("AWS/RDS", "FreeableMemory", "DBInstanceIdentifier", f"{prefix}-db", 300 * 2**20, "LessThanThreshold"),
        "rds-free-storage": ("AWS/RDS", "FreeStorageSpace", "DBInstanceIdentifier", f"{prefix}-db", 8 * 2**30, "LessThanThreshold"),
        "rds-connections": ("AWS/RDS", "DatabaseConnections", "DBInstanceIdentifier", f"{prefix}-db", 150, "GreaterThanThreshold"),
    }
    for name, (namespace, metric, dimension, value, threshold, comparison) in expected.items():
        alarm = alarms[name]
        assert (alarm["Namespace"], alarm["MetricName"]) == (namespace, metric), name
        assert alarm["Dimensions"] == [{"Name": dimension, "Value": value}], name
        assert alarm["Threshold"] == threshold, name
        assert alarm["ComparisonOperator"] == comparison, name
    assert alarms["alb-latency"]["ExtendedStatistic"] == "p99"
    assert alarms["alb-elb-5xx"]["TreatMissingData"] == "notBreaching"

    attributes = sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]
    assert attributes["KmsMasterKeyId"] == f"alias/{prefix}-alarms"
    statements = {s["Sid"]: s for s in json.loads(attributes["Policy"])["Statement"]}
    publish = statements["CloudWatchAlarmsOfThisAccountPublish"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert publish["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    key_id = kms.describe_key(KeyId=f"alias/{prefix}-alarms")["KeyMetadata"]["KeyId"]
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    key_policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    cloudwatch_use = [s for s in key_policy["Statement"] if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert cloudwatch_use and set(cloudwatch_use[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", "oncall@fastier.example")]

    body = json.loads(cloudwatch.get_dashboard(DashboardName=f"{prefix}-overview")["DashboardBody"])
    graphed = {tuple(w["properties"]["metrics"][0][:2]) for w in body["widgets"]}
    assert graphed == {(namespace, metric) for namespace, metric, *_ in expected.values()}

    again_check = run_playbook(stack.env(), PLAYBOOK, extra, check=True)
    assert again_check.rc == 0, again_check.explain()
    assert again_check.changed == 0, again_check.changed_tasks(without_role=True)

    again = run_playbook(stack.env(), PLAYBOOK, extra)
    assert again.rc == 0, again.explain()
    assert again.changed == 0, again.changed_tasks(without_role=True)

    # the database is gone from the inventory and the database tier: its alarms go too
    no_db = run_playbook(stack.env(), PLAYBOOK, {**extra, "observability_db_instance_id": "", "database_outputs": {}})
    assert no_db.rc == 0, no_db.explain()
    assert sorted(no_db.outputs("observability_outputs")["unwatched"]) == ["rds_connections", "rds_cpu", "rds_free_storage", "rds_freeable_memory"]
    left = [a["AlarmName"] for a in cloudwatch.describe_alarms(AlarmNamePrefix=prefix + "-")["MetricAlarms"]]
    assert not [name for name in left if "-rds-" in name] and len(left) == 5

    gone = run_playbook(stack.env(), PLAYBOOK, {**extra, "observability_state": "absent"})
    assert gone.rc == 0, gone.explain()
    assert cloudwatch.describe_alarms(AlarmNamePrefix=prefix + "-")["MetricAlarms"] == []
    assert topic_arn not in [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    assert f"{prefix}-overview" not in [d["DashboardName"] for d in cloudwatch.list_dashboards()["DashboardEntries"]]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"observability_topic_kms_key_id": "alias/aws/sns"}, "observability_topic_kms_key_id cannot be the AWS managed key alias/aws/sns"),
        ({"observability_alarm_datapoints_to_alarm": 9}, "observability_alarm_datapoints_to_alarm must be between 1 and"),
        ({"observability_email_subscriptions": ["oncall at fastier"]}, "observability_email_subscriptions must be a list of e-mail addresses"),
        ({"observability_alb_latency_statistic": "p42"}, "observability_alb_latency_statistic"),
    ],
)
def test_observability_rejects_bad_inventory_before_any_aws_call(stack, unique, bad, message):
    extra = {"platform_name": f"it{unique}", "aws_endpoint_url": NO_AWS, **bad}
    run = run_playbook(stack.env(), PLAYBOOK, extra)
    assert message in run.refusal()
