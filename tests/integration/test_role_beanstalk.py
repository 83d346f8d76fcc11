"""The beanstalk role through ansible-playbook against the local AWS.

Converge (check mode first, then real), an idempotent second run (check and
real), boto3 assertions of every security setting the role promises, a bad
inventory value rejected before any AWS call, and teardown.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.playbooks import ROOT, PlaybookRun, ensure_collection, run_playbook

PLAYBOOK = ROOT / "tests/integration/playbooks/role_beanstalk.yml"
ENV_NS = "aws:elasticbeanstalk:application:environment"


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


@pytest.fixture
def network(stack, unique) -> dict[str, Any]:
    """What the network role would publish: a VPC, public and app subnets, ALB and app security groups."""
    ec2 = stack.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnets = {}
    for kind, cidrs in (("public", ("10.42.0.0/24", "10.42.1.0/24")), ("app", ("10.42.10.0/24", "10.42.11.0/24"))):
        subnets[kind] = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=f"us-east-1{zone}")["Subnet"]["SubnetId"]
            for cidr, zone in zip(cidrs, "ab", strict=True)
        ]
    alb = ec2.create_security_group(GroupName=f"alb-{unique}", Description="alb", VpcId=vpc)["GroupId"]
    app = ec2.create_security_group(GroupName=f"app-{unique}", Description="app", VpcId=vpc)["GroupId"]
    return {"vpc": vpc, "public": subnets["public"], "app": subnets["app"], "alb_sg": alb, "app_sg": app}


@pytest.fixture
def secret(stack, unique) -> dict[str, str]:
    password = f"pw-{unique}-never-in-the-environment"
    created = stack.client("secretsmanager").create_secret(Name=f"it-db-{unique}", SecretString=json.dumps({"username": "fastier", "password": password}))
    return {"arn": created["ARN"], "password": password}


@pytest.fixture
def prereqs(network, secret) -> tuple[dict[str, Any], dict[str, str]]:
    return network, secret


def role_vars(unique: str, network: dict[str, Any], secret: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "platform_env": f"it{unique}",
        "beanstalk_vpc_id": network["vpc"],
        "beanstalk_app_subnet_ids": network["app"],
        "beanstalk_public_subnet_ids": network["public"],
        "beanstalk_alb_security_group_id": network["alb_sg"],
        "beanstalk_app_security_group_id": network["app_sg"],
        "beanstalk_database_secret_arn": secret["arn"],
        "beanstalk_environment_variables": {"LOG_LEVEL": "info", "FEATURE_X": "on"},
        **extra,
    }


def outputs(run: PlaybookRun) -> dict[str, Any]:
    return run.task("Show beanstalk_outputs")["beanstalk_outputs"]


def settings_of(eb: Any, app: str, env: str) -> dict[str, dict[str, str]]:
    found = eb.describe_configuration_settings(ApplicationName=app, EnvironmentName=env)["ConfigurationSettings"][0]
    out: dict[str, dict[str, str]] = {}
    for setting in found["OptionSettings"]:
        out.setdefault(setting["Namespace"], {})[setting["OptionName"]] = setting.get("Value")
    return out


def test_role_converges_securely_idempotently_and_tears_down(stack, unique, network, secret):
    eb, iam, acm = stack.client("elasticbeanstalk"), stack.client("iam"), stack.client("acm")
    extra = role_vars(unique, network, secret)
    prefix = f"fastier-it{unique}"
    blue = f"{prefix}-blue"

    check = run_playbook(stack.env(), PLAYBOOK, extra, check=True)
    assert check.rc == 0, check.explain()
    assert check.changed > 0
    assert eb.describe_applications(ApplicationNames=[prefix])["Applications"] == []
    assert [e for e in eb.describe_environments(EnvironmentNames=[blue])["Environments"] if e["Status"] != "Terminated"] == []

    first = run_playbook(stack.env(), PLAYBOOK, extra)
    assert first.rc == 0, first.explain()
    out = outputs(first)
    assert out["application_name"] == prefix
    assert out["live_environment"] == blue
    assert out["live_cname"] == f"{prefix}.us-east-1.elasticbeanstalk.com"
    assert out["live_url"] == f"https://{prefix}.us-east-1.elasticbeanstalk.com"
    assert out["idle_environment"] == ""  # green is the deploy job's
    assert out["environments"][blue]["status"] == "Ready" and out["environments"][blue]["health"] == "Green"
    assert out["https_redirect_config"].endswith("roles/beanstalk/files/https-redirect.config")

    # -- the environment and every security setting, read back with boto3 --
    env = [e for e in eb.describe_environments(ApplicationName=prefix)["Environments"] if e["Status"] != "Terminated"]
    assert [e["EnvironmentName"] for e in env] == [blue]
    assert (env[0]["Status"], env[0]["Health"]) == ("Ready", "Green")
    assert env[0]["SolutionStackName"] == "64bit Amazon Linux 2023 v4.6.0 running Python 3.11"
    live = settings_of(eb, prefix, blue)
    assert live["aws:autoscaling:launchconfiguration"]["DisableIMDSv1"] == "true"
    assert live["aws:autoscaling:launchconfiguration"]["IamInstanceProfile"] == f"{prefix}-eb-ec2"
    assert live["aws:autoscaling:launchconfiguration"]["SecurityGroups"] == network["app_sg"]
    assert live["aws:elasticbeanstalk:healthreporting:system"]["SystemType"] == "enhanced"
    assert live["aws:elasticbeanstalk:cloudwatch:logs"]["StreamLogs"] == "true"
    assert live["aws:elasticbeanstalk:cloudwatch:logs"]["DeleteOnTerminate"] == "false"
    assert live["aws:elasticbeanstalk:cloudwatch:logs:health"]["HealthStreamingEnabled"] == "true"
    assert live["aws:elasticbeanstalk:managedactions"]["ManagedActionsEnabled"] == "true"
    assert live["aws:elasticbeanstalk:managedactions"]["PreferredStartTime"] == "Sun:03:00"
    assert live["aws:elasticbeanstalk:managedactions:platformupdate"]["UpdateLevel"] == "minor"
    assert live["aws:elasticbeanstalk:environment"]["LoadBalancerType"] == "application"
    assert live["aws:elasticbeanstalk:environment"]["ServiceRole"] == f"{prefix}-eb-service"
    https = live["aws:elbv2:listener:443"]
    assert https["Protocol"] == "HTTPS" and https["ListenerEnabled"] == "true"
    assert https["SSLPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    certificate = acm.describe_certificate(CertificateArn=https["SSLCertificateArns"])["Certificate"]
    assert certificate["Type"] == "IMPORTED" and certificate["DomainName"] == f"{prefix}.us-east-1.elasticbeanstalk.com"
    assert out["certificate_arn"] == https["SSLCertificateArns"]
    assert live["aws:elbv2:loadbalancer"]["SecurityGroups"] == network["alb_sg"]
    vpc = live["aws:ec2:vpc"]
    assert vpc["VPCId"] == network["vpc"] and vpc["AssociatePublicIpAddress"] == "false" and vpc["ELBScheme"] == "public"
    assert sorted(vpc["Subnets"].split(",")) == sorted(network["app"])
    assert sorted(vpc["ELBSubnets"].split(",")) == sorted(network["public"])
    assert live["aws:elasticbeanstalk:environment:process:default"]["HealthCheckPath"] == "/healthz"
    assert (live["aws:autoscaling:asg"]["MinSize"], live["aws:autoscaling:asg"]["MaxSize"]) == ("1", "2")
    assert live["aws:ec2:instances"]["InstanceTypes"] == "t3.micro"
    assert live["aws:autoscaling:trigger"]["MeasureName"] == "CPUUtilization"
    assert live["aws:elasticbeanstalk:command"]["DeploymentPolicy"] == "Immutable"
    assert live[ENV_NS] == {"PLATFORM_ENV": f"it{unique}", "DATABASE_SECRET_ARN": secret["arn"], "LOG_LEVEL": "info", "FEATURE_X": "on"}
    assert secret["password"] not in first.stdout + first.stderr
    assert secret["password"] not in json.dumps(live)

    # -- IAM: least privilege --
    service = iam.list_attached_role_policies(RoleName=f"{prefix}-eb-service")["AttachedPolicies"]
    assert sorted(p["PolicyName"] for p in service) == ["AWSElasticBeanstalkEnhancedHealth", "AWSElasticBeanstalkManagedUpdatesCustomerRolePolicy"]
    trust = iam.get_role(RoleName=f"{prefix}-eb-service")["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "elasticbeanstalk.amazonaws.com"}
    instance = iam.list_attached_role_policies(RoleName=f"{prefix}-eb-ec2")["AttachedPolicies"]
    assert [p["PolicyName"] for p in instance] == ["AWSElasticBeanstalkWebTier"]
    inline = iam.get_role_policy(RoleName=f"{prefix}-eb-ec2", PolicyName=f"{prefix}-read-database-secret")["PolicyDocument"]
    assert inline["Statement"] == [
        {
            "Sid": "ReadTheDatabaseSecret",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            "Resource": secret["arn"],
        }
    ]
    profile = iam.get_instance_profile(InstanceProfileName=f"{prefix}-eb-ec2")["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == [f"{prefix}-eb-ec2"]

    # -- idempotence: check mode and a real run change nothing --
    again_check = run_playbook(stack.env(), PLAYBOOK, extra, check=True)
    assert again_check.rc == 0, again_check.explain()
    assert again_check.changed == 0, again_check.changed_tasks()
    again = run_playbook(stack.env(), PLAYBOOK, extra)
    assert again.rc == 0, again.explain()
    assert again.changed == 0, again.changed_tasks()

    # -- the facts entry point alone (as the dns and observability roles call it) finds the same --
    facts = run_playbook(stack.env(), PLAYBOOK, {**extra, "it_entry": "facts"}, check=True)
    assert facts.rc == 0, facts.explain()
    assert facts.changed == 0
    assert {k: v for k, v in outputs(facts).items() if k != "environments"} == {k: v for k, v in out.items() if k != "environments"}

    # -- an inventory change: one more instance allowed, a variable dropped --
    grown = run_playbook(stack.env(), PLAYBOOK, {**extra, "beanstalk_max_size": 3, "beanstalk_environment_variables": {"LOG_LEVEL": "info"}}, diff=True)
    assert grown.rc == 0, grown.explain()
    assert grown.changed_tasks() == [f"fastier.platform.beanstalk : Live environment {blue}"]
    diff = grown.task(f"fastier.platform.beanstalk : Live environment {blue}")["diff"]
    assert diff["before"]["option_settings"] == {"aws:autoscaling:asg": {"MaxSize": "2"}, ENV_NS: {"FEATURE_X": "on"}}
    assert diff["after"]["option_settings"] == {"aws:autoscaling:asg": {"MaxSize": "3"}, ENV_NS: {"FEATURE_X": None}}
    live = settings_of(eb, prefix, blue)
    assert live["aws:autoscaling:asg"]["MaxSize"] == "3" and "FEATURE_X" not in live[ENV_NS]

    # -- teardown --
    gone = run_playbook(stack.env(), PLAYBOOK, {**extra, "beanstalk_state": "absent"})
    assert gone.rc == 0, gone.explain()
    assert eb.describe_applications(ApplicationNames=[prefix])["Applications"] == []
    assert [e for e in eb.describe_environments(EnvironmentNames=[blue])["Environments"] if e["Status"] != "Terminated"] == []
    roles = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert f"{prefix}-eb-service" not in roles and f"{prefix}-eb-ec2" not in roles
    assert certificate["CertificateArn"] not in [c["CertificateArn"] for c in acm.list_certificates()["CertificateSummaryList"]]
    gone_again = run_playbook(stack.env(), PLAYBOOK, {**extra, "beanstalk_state": "absent"})
    assert gone_again.rc == 0, gone_again.explain()
    assert gone_again.changed == 0, gone_again.changed_tasks()


@pytest.mark.parametrize(
    ("bad", "names"),
    [
        ({"beanstalk_min_size": 5, "beanstalk_max_size": 2}, ["beanstalk_min_size (5)", "beanstalk_max_size (2)"]),
        ({"beanstalk_instance_type": "large"}, ["beanstalk_instance_type", "'large'"]),
        ({"beanstalk_environment_variables": {"DB_PASSWORD": "hunter2"}}, ["beanstalk_environment_variables", "DB_PASSWORD"]),
        ({"beanstalk_deployment_policy": "YOLO"}, ["beanstalk_deployment_policy", "YOLO"]),
    ],
)
def test_a_bad_inventory_value_is_rejected_before_any_aws_call(stack, unique, prereqs, bad, names):
    eb = stack.client("elasticbeanstalk")
    run = run_playbook(stack.env(), PLAYBOOK, role_vars(unique, *prereqs, **bad))
    assert run.rc != 0
    failed = [t for t in run.tasks() if t.get("failed")]
    assert len(failed) == 1, [t["name"] for t in failed]
    text = json.dumps(failed[0])
    for name in names:
        assert name in text, text[:2000]
    # nothing reached AWS: no task before the failure talked to it, and nothing exists
    assert [t["name"] for t in run.tasks() if t.get("changed")] == []
    assert eb.describe_applications(ApplicationNames=[f"fastier-it{unique}"])["Applications"] == []
    assert "hunter2" not in run.stdout + run.stderr  # the refused value is not echoed


def test_facts_on_an_empty_account_publish_no_live_environment(stack, unique, prereqs):
    run = run_playbook(stack.env(), PLAYBOOK, {**role_vars(unique, *prereqs), "it_entry": "facts"})
    assert run.rc == 0, run.explain()
    assert run.changed == 0
    out = outputs(run)
    assert out["application_name"] == f"fastier-it{unique}"
    assert (out["live_environment"], out["live_url"], out["environments"]) == ("", "", {})
