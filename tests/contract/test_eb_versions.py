"""Application versions: CreateApplicationVersion, DescribeApplicationVersions,
UpdateApplicationVersion, DeleteApplicationVersion."""

from __future__ import annotations

import time
from typing import Any

from tests.contract.ebkit import STACK, aws_error, wait_until, zip_bytes


def _status(eb: Any, app: str, label: str) -> str:
    return eb.describe_application_versions(ApplicationName=app, VersionLabels=[label])["ApplicationVersions"][0]["Status"]


def test_processed_version_goes_through_processing(eb: Any, app: str, bundle: dict[str, str]) -> None:
    created = eb.create_application_version(
        ApplicationName=app, VersionLabel="v1", SourceBundle=bundle, Process=True, Description="first", Tags=[{"Key": "commit", "Value": "abc"}]
    )["ApplicationVersion"]
    assert created["Status"] == "Unprocessed"
    assert created["SourceBundle"] == bundle
    assert created["Description"] == "first"
    assert created["ApplicationVersionArn"] == f"arn:aws:elasticbeanstalk:us-east-1:123456789012:applicationversion/{app}/v1"
    assert _status(eb, app, "v1") == "Processing"
    wait_until(lambda: _status(eb, app, "v1") == "Processed")
    assert eb.list_tags_for_resource(ResourceArn=created["ApplicationVersionArn"])["ResourceTags"] == [{"Key": "commit", "Value": "abc"}]
    [listed] = eb.describe_applications(ApplicationNames=[app])["Applications"]
    assert listed["Versions"] == ["v1"]


def test_unprocessed_version_stays_unprocessed(eb: Any, app: str, bundle: dict[str, str], stack: Any) -> None:
    eb.create_application_version(ApplicationName=app, VersionLabel="raw", SourceBundle=bundle, Process=False)
    time.sleep(stack.control("GET", "/_local/eb/settings")[1]["delay_s"] * 1.5)  # longer than processing takes
    assert _status(eb, app, "raw") == "Unprocessed"


def test_processing_a_bundle_that_is_not_a_zip_fails(eb: Any, s3: Any, app: str, bucket: str, unique: str) -> None:
    s3.put_object(Bucket=bucket, Key=f"{unique}.zip", Body=b"not a zip")
    eb.create_application_version(ApplicationName=app, VersionLabel="bad", SourceBundle={"S3Bucket": bucket, "S3Key": f"{unique}.zip"}, Process=True)
    wait_until(lambda: _status(eb, app, "bad") in ("Processed", "Failed"))
    assert _status(eb, app, "bad") == "Failed"
    [event] = eb.describe_events(ApplicationName=app, VersionLabel="bad", Severity="ERROR")["Events"]
    assert "not a valid ZIP archive" in event["Message"]
    with aws_error("InvalidParameterValue", "Application version bad failed processing and cannot be deployed."):
        eb.create_environment(ApplicationName=app, EnvironmentName=f"bad-{unique}", VersionLabel="bad", SolutionStackName=STACK)


def test_missing_bundle_is_refused_as_aws_does(eb: Any, app: str, bucket: str) -> None:
    message = f"Unable to download from S3 location (Bucket: {bucket}  Key: nope.zip). Reason: Not Found"
    with aws_error("InvalidParameterCombination", message):
        eb.create_application_version(ApplicationName=app, VersionLabel="v9", SourceBundle={"S3Bucket": bucket, "S3Key": "nope.zip"}, Process=True)
    with aws_error("InvalidParameterCombination", "Unable to download from S3 location (Bucket: no-such-bucket-x  Key: a.zip). Reason: Not Found"):
        eb.create_application_version(ApplicationName=app, VersionLabel="v9", SourceBundle={"S3Bucket": "no-such-bucket-x", "S3Key": "a.zip"})
    assert eb.describe_application_versions(ApplicationName=app)["ApplicationVersions"] == []


def test_bundle_in_another_region_is_refused(eb: Any, stack: Any, app: str, unique: str) -> None:
    s3_west = stack.client("s3", region="us-west-2")
    name = f"west-{unique}"
    s3_west.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3_west.put_object(Bucket=name, Key="b.zip", Body=zip_bytes())
    with aws_error("S3LocationNotInServiceRegionException"):
        eb.create_application_version(ApplicationName=app, VersionLabel="v1", SourceBundle={"S3Bucket": name, "S3Key": "b.zip"})


def test_duplicate_label_is_refused(eb: Any, app: str, version: str, bundle: dict[str, str]) -> None:
    with aws_error("InvalidParameterValue", f"Application Version {version} already exists."):
        eb.create_application_version(ApplicationName=app, VersionLabel=version, SourceBundle=bundle)
    [kept] = eb.describe_application_versions(ApplicationName=app, VersionLabels=[version])["ApplicationVersions"]
    assert kept["SourceBundle"] == bundle  # a label is immutable: clients compare bundles


def test_auto_create_application(eb: Any, bundle: dict[str, str], unique: str) -> None:
    name = f"auto-{unique}"
    with aws_error("InvalidParameterValue", f"No Application named '{name}' found."):
        eb.create_application_version(ApplicationName=name, VersionLabel="v1", SourceBundle=bundle)
    eb.create_application_version(ApplicationName=name, VersionLabel="v1", SourceBundle=bundle, AutoCreateApplication=True)
    try:
        [created] = eb.describe_applications(ApplicationNames=[name])["Applications"]
        assert created["Versions"] == ["v1"]
    finally:
        eb.delete_application(ApplicationName=name)


def test_describe_versions_filters_and_pages(eb: Any, app: str, bundle: dict[str, str]) -> None:
    for label in ("a1", "a2", "a3"):
        eb.create_application_version(ApplicationName=app, VersionLabel=label, SourceBundle=bundle)
    labels = [v["VersionLabel"] for v in eb.describe_application_versions(ApplicationName=app)["ApplicationVersions"]]
    assert labels == ["a3", "a2", "a1"]  # newest first
    picked = eb.describe_application_versions(ApplicationName=app, VersionLabels=["a1", "a3"])["ApplicationVersions"]
    assert {v["VersionLabel"] for v in picked} == {"a1", "a3"}
    first = eb.describe_application_versions(ApplicationName=app, MaxRecords=2)
    assert len(first["ApplicationVersions"]) == 2
    second = eb.describe_application_versions(ApplicationName=app, MaxRecords=2, NextToken=first["NextToken"])
    assert [v["VersionLabel"] for v in second["ApplicationVersions"]] == ["a1"]
    assert "NextToken" not in second
    pages = eb.get_paginator("describe_application_versions").paginate(ApplicationName=app, PaginationConfig={"PageSize": 1})
    assert [v["VersionLabel"] for page in pages for v in page["ApplicationVersions"]] == ["a3", "a2", "a1"]


def test_update_version_description(eb: Any, app: str, version: str) -> None:
    updated = eb.update_application_version(ApplicationName=app, VersionLabel=version, Description="release notes")["ApplicationVersion"]
    assert updated["Description"] == "release notes"
    with aws_error("InvalidParameterValue", "No Application Version named 'nope' found."):
        eb.update_application_version(ApplicationName=app, VersionLabel="nope", Description="x")


def test_delete_version_refused_while_an_environment_runs_it(eb: Any, app: str, version: str, make_env: Any) -> None:
    env = make_env()
    with aws_error(
        "InvalidParameterValue", f"Unable to delete application version {version} because it is being used by environment(s): {env['EnvironmentName']}"
    ):
        eb.delete_application_version(ApplicationName=app, VersionLabel=version)
    assert [v["VersionLabel"] for v in eb.describe_application_versions(ApplicationName=app)["ApplicationVersions"]] == [version]


def test_delete_version_and_its_source_bundle(eb: Any, s3: Any, app: str, bundle: dict[str, str]) -> None:
    eb.create_application_version(ApplicationName=app, VersionLabel="keep", SourceBundle=bundle)
    eb.create_application_version(ApplicationName=app, VersionLabel="drop", SourceBundle=bundle)
    eb.delete_application_version(ApplicationName=app, VersionLabel="keep")
    assert s3.head_object(Bucket=bundle["S3Bucket"], Key=bundle["S3Key"])["ContentLength"] > 0
    eb.delete_application_version(ApplicationName=app, VersionLabel="drop", DeleteSourceBundle=True)
    assert eb.describe_application_versions(ApplicationName=app)["ApplicationVersions"] == []
    listed = s3.list_objects_v2(Bucket=bundle["S3Bucket"], Prefix=bundle["S3Key"])
    assert listed["KeyCount"] == 0
    with aws_error("InvalidParameterValue", "No Application Version named 'drop' found."):
        eb.delete_application_version(ApplicationName=app, VersionLabel="drop")


def test_version_still_processing_cannot_be_deployed(eb: Any, app: str, bundle: dict[str, str], unique: str) -> None:
    eb.create_application_version(ApplicationName=app, VersionLabel="slow", SourceBundle=bundle, Process=True)
    with aws_error("InvalidParameterValue", contains="is still being processed"):
        eb.create_environment(ApplicationName=app, EnvironmentName=f"slow-{unique}", VersionLabel="slow", SolutionStackName=STACK)
