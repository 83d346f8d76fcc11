"""The pipeline role through ansible-playbook against the local AWS.

Check mode on an empty account; then the four-step change test and what a
reviewer of a release pipeline checks, read back with boto3: the stages in
order (source, build and test, deploy to the idle environment, approval,
promote), the deploy and promote steps running the deploy playbook with the
built version label, logs in CloudWatch, artifacts encrypted, and roles that
reach only the artifacts bucket, the three projects, their log groups and the
Elastic Beanstalk application. Then the teardown, and bad inventory values
rejected before any AWS call.
"""

from __future__ import annotations

import json

import pytest

from tests.playbooks import ROOT, ensure_collection, run_playbook

PLAYBOOK = ROOT / "tests/integration/playbooks/role_pipeline.yml"
NO_AWS = "http://127.0.0.1:9"  # nothing listens there: an AWS call would fail to connect
ACCOUNT = "123456789012"  # moto's account


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


@pytest.fixture
def inputs(stack, unique) -> dict:
    """The artifacts bucket (versioned, as the storage role makes it) and the inventory knobs."""
    bucket = f"it{unique}-local-artifacts"
    s3 = stack.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return {
        "platform_name": f"it{unique}",
        "pipeline_artifacts_bucket": bucket,
        "pipeline_eb_application": f"it{unique}-local",
        "pipeline_manual_approval": True,
        "pipeline_build_compute_type": "BUILD_GENERAL1_MEDIUM",
        "pipeline_test_commands": ["python -m pytest -q tests"],
        "pipeline_log_retention_days": 14,  # not the default (30) nor inventories/local's (7)
    }


def test_pipeline_check_mode_on_an_empty_account_creates_nothing(stack, unique, inputs):
    prefix = f"it{unique}-local"
    check = run_playbook(stack.env(), PLAYBOOK, inputs, check=True)
    assert check.rc == 0, check.explain()
    assert {
        "Log group of each CodeBuild project",
        "Roles of CodePipeline and CodeBuild",
        f"CodeBuild project {prefix}-build",
        f"CodeBuild project {prefix}-deploy",
        f"CodeBuild project {prefix}-promote",
        f"Pipeline {prefix}-release",
    } <= set(check.changed_tasks(without_role=True))
    assert stack.client("codebuild").batch_get_projects(names=[f"{prefix}-build"])["projects"] == []
    assert f"{prefix}-release" not in [p["name"] for p in stack.client("codepipeline").list_pipelines()["pipelines"]]
    roles = [r["RoleName"] for r in stack.client("iam").list_roles()["Roles"]]
    assert not [r for r in roles if r.startswith(prefix)]


def test_pipeline_release_stages_least_privilege_and_idempotence(stack, unique, inputs):
    prefix = f"it{unique}-local"
    bucket = inputs["pipeline_artifacts_bucket"]
    codebuild = stack.client("codebuild")
    codepipeline = stack.client("codepipeline")
    iam = stack.client("iam")
    logs = stack.client("logs")

    real = run_playbook(stack.env(), PLAYBOOK, inputs)
    assert real.rc == 0, real.explain()
    out = real.outputs("pipeline_outputs")
    assert out["pipeline_name"] == f"{prefix}-release"
    assert out["project_names"] == {"build": f"{prefix}-build", "deploy": f"{prefix}-deploy", "promote": f"{prefix}-promote"}

    # the stages, in order, and what moves between them
    pipeline = codepipeline.get_pipeline(name=f"{prefix}-release")["pipeline"]
    assert pipeline["roleArn"] == out["role_arns"]["pipeline"]
    assert pipeline["artifactStore"]["location"] == bucket
    assert pipeline["artifactStore"]["encryptionKey"] == {"id": f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/aws/s3", "type": "KMS"}
    stages = {s["name"]: s["actions"][0] for s in pipeline["stages"]}
    assert list(stages) == ["Source", "BuildAndTest", "DeployToIdle", "Approval", "Promote"]
    assert stages["Source"]["actionTypeId"]["provider"] == "S3"
    assert stages["Source"]["configuration"]["S3Bucket"] == bucket
    assert stages["Source"]["configuration"]["S3ObjectKey"] == f"source/{prefix}.zip"
    assert stages["BuildAndTest"]["configuration"]["ProjectName"] == f"{prefix}-build"
    assert stages["Approval"]["actionTypeId"]["provider"] == "Manual"
    for stage, project in (("DeployToIdle", "deploy"), ("Promote", "promote")):
        configuration = stages[stage]["configuration"]
        assert configuration["ProjectName"] == f"{prefix}-{project}"
        variables = {v["name"]: v["value"] for v in json.loads(configuration["EnvironmentVariables"])}
        assert variables["VERSION_LABEL"] == "#{BuildVariables.VERSION_LABEL}"
    assert stages["BuildAndTest"]["namespace"] == "BuildVariables"

    # the projects: CloudWatch logs, encrypted artifacts, image and size from the inventory
    projects = {p["name"]: p for p in codebuild.batch_get_projects(names=list(out["project_names"].values()))["projects"]}
    for name, project in projects.items():
        assert project["logsConfig"]["cloudWatchLogs"] == {"status": "ENABLED", "groupName": f"/aws/codebuild/{name}"}
        assert project["encryptionKey"] == f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/aws/s3"
        assert project["environment"]["computeType"] == "BUILD_GENERAL1_MEDIUM"
        assert project["environment"]["privilegedMode"] is False
    assert "python -m pytest -q tests" in projects[f"{prefix}-build"]["source"]["buildspec"]
    assert "exported-variables" in projects[f"{prefix}-build"]["source"]["buildspec"]
    promote = projects[f"{prefix}-promote"]["source"]["buildspec"]
    assert "ansible-playbook fastier.platform.deploy" in promote and 'deploy_version_label="$VERSION_LABEL"' in promote
    assert "deploy_promote=true" in promote
    assert "blue_green_ledger_bucket=" in promote and "blue_green_started_by=" in promote
    assert "deploy_promote=false" in projects[f"{prefix}-deploy"]["source"]["buildspec"]
    groups = {g["logGroupName"]: g for g in logs.describe_log_groups(logGroupNamePrefix=f"/aws/codebuild/{prefix}-")["logGroups"]}
    assert {g: groups[g].get("retentionInDays") for g in groups} == {f"/aws/codebuild/{name}": 14 for name in projects}

    # least privilege
    def policy(role: str) -> list[dict]:
        document = iam.get_role_policy(RoleName=role, PolicyName=role)["PolicyDocument"]
        return document["Statement"]

    def trust(role: str) -> dict:
        return iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]["Statement"][0]

    assert trust(f"{prefix}-codepipeline")["Principal"] == {"Service": "codepipeline.amazonaws.com"}
    assert trust(f"{prefix}-codebuild-release")["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    for role in (f"{prefix}-codepipeline", f"{prefix}-codebuild-build", f"{prefix}-codebuild-release"):
        for statement in policy(role):
            if statement["Sid"].startswith("Artifacts"):
                resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                assert all(r in (f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*") for r in resources), (role, statement)
    pipeline_policy = {s["Sid"]: s for s in policy(f"{prefix}-codepipeline")}
    assert sorted(pipeline_policy["RunTheProjects"]["Resource"]) == sorted(f"arn:aws:codebuild:us-east-1:{ACCOUNT}:project/{name}" for name in projects)
    build_policy = {s["Sid"]: s for s in policy(f"{prefix}-codebuild-build")}
    assert build_policy["BuildLogs"]["Resource"] == f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/codebuild/{prefix}-build:*"
    assert not [s for s in build_policy.values() if "elasticbeanstalk" in json.dumps(s)]  # the build cannot deploy
    release_policy = {s["Sid"]: s for s in policy(f"{prefix}-codebuild-release")}
    assert release_policy["TheApplicationOnly"]["Resource"] == [
        f"arn:aws:elasticbeanstalk:us-east-1:{ACCOUNT}:application/{prefix}",
        f"arn:aws:elasticbeanstalk:us-east-1:{ACCOUNT}:applicationversion/{prefix}/*",
        f"arn:aws:elasticbeanstalk:us-east-1:{ACCOUNT}:environment/{prefix}/*",
        f"arn:aws:elasticbeanstalk:us-east-1:{ACCOUNT}:configurationtemplate/{prefix}/*",
    ]
    assert release_policy["PassOnlyTheEnvironmentRoles"]["Resource"] == [
        f"arn:aws:iam::{ACCOUNT}:role/{prefix}-eb-service",
        f"arn:aws:iam::{ACCOUNT}:role/{prefix}-eb-ec2",
    ]

    for check in (True, False):
        again = run_playbook(stack.env(), PLAYBOOK, inputs, check=check)
        assert again.rc == 0, again.explain()
        assert again.changed == 0, again.changed_tasks(without_role=True)

    gone = run_playbook(stack.env(), PLAYBOOK, {**inputs, "pipeline_state": "absent"})
    assert gone.rc == 0, gone.explain()
    assert f"{prefix}-release" not in [p["name"] for p in codepipeline.list_pipelines()["pipelines"]]
    assert codebuild.batch_get_projects(names=list(projects))["projects"] == []
    assert not [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(prefix)]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"pipeline_source_provider": "codestar"}, "pipeline_codestar_connection_arn must be the ARN of a CodeStar"),
        ({"pipeline_artifacts_kms_key": "alias/my-key"}, "pipeline_artifacts_kms_key must be alias/aws/s3"),
        ({"pipeline_log_retention_days": 42}, "pipeline_log_retention_days must be one of"),
        ({"pipeline_build_compute_type": "HUGE"}, "pipeline_build_compute_type"),
    ],
)
def test_pipeline_rejects_bad_inventory_before_any_aws_call(stack, unique, bad, message):
    extra = {"platform_name": f"it{unique}", "pipeline_artifacts_bucket": f"it{unique}-local-artifacts", "aws_endpoint_url": NO_AWS, **bad}
    run = run_playbook(stack.env(), PLAYBOOK, extra)
    assert message in run.refusal()
