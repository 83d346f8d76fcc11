"""The storage role through ansible-playbook against the local AWS.

Four-step change test, every security setting of the three buckets read back
with boto3, the bucket policy shared with the cdn role, SSE-KMS, deletion
guarded by confirmations, and bad inventory values refused before any AWS call.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.playbooks import ROOT, ensure_collection, run_playbook

PLAYBOOK = ROOT / "tests/integration/playbooks/role_storage.yml"
NO_AWS = "http://127.0.0.1:9"
KINDS = ("artifacts", "backups", "static")
# Every knob explicit, so the local inventory's values do not matter here.
BASE = {
    "storage_encryption": "AES256",
    "storage_kms_key_id": "",
    "storage_versioning": True,
    "storage_artifacts_expiration_days": 180,
    "storage_artifacts_noncurrent_expiration_days": 30,
    "storage_backups_transitions": [{"days": 30, "storage_class": "standard_ia"}, {"days": 90, "storage_class": "glacier"}],
    "storage_backups_expiration_days": 0,
    "storage_backups_noncurrent_expiration_days": 90,
    "storage_static_noncurrent_expiration_days": 30,
    "storage_abort_incomplete_multipart_days": 7,
    "storage_artifacts_extra_policy_statements": [],
    "storage_backups_extra_policy_statements": [],
    "storage_static_extra_policy_statements": [],
    "storage_policy_keep_sid_prefixes": ["Cdn"],
}


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


def _policy(s3: Any, bucket: str) -> dict[str, Any]:
    return json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])


def _sids(s3: Any, bucket: str) -> list[str]:
    return [statement.get("Sid") for statement in _policy(s3, bucket)["Statement"]]


def _buckets(s3: Any, prefix: str) -> list[str]:
    return sorted(b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(prefix + "-"))


@pytest.fixture(scope="module")
def converged(stack) -> dict[str, Any]:
    """One environment through the four steps; the tests below read it."""
    env = f"s{uuid.uuid4().hex[:8]}"
    extra = {**BASE, "platform_env": env}
    s3 = stack.client("s3")
    runs = {"first_check": run_playbook(stack.env(), PLAYBOOK, extra, check=True)}
    runs["buckets_after_check"] = _buckets(s3, f"fastier-{env}")
    runs["real"] = run_playbook(stack.env(), PLAYBOOK, extra)
    runs["second_check"] = run_playbook(stack.env(), PLAYBOOK, extra, check=True)
    runs["second"] = run_playbook(stack.env(), PLAYBOOK, extra)
    return {"env": env, "prefix": f"fastier-{env}", "extra": extra, **runs}


def assert_bucket_protected(s3: Any, bucket: str) -> dict[str, str]:
    """The storage role's protections of a bucket, read back: public access blocked, SSE-S3 by default,
    versioning, owner-enforced objects. Returns the bucket's tags."""
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    [rule] = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    return {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}


def test_storage_four_step_change_test(converged):
    first_check = converged["first_check"]
    assert first_check.rc == 0, first_check.explain()
    # amazon.aws.s3_bucket and community.aws.s3_lifecycle have no check mode: skipped.
    assert first_check.task("fastier.platform.storage : Present | Buckets - private, encrypted, versioned, TLS only, owner-enforced [S3.1 S3.5 S3.8 S3.14]")[
        "skipped"
    ]
    assert converged["buckets_after_check"] == []
    assert not any(first_check.outputs("storage_outputs")[kind]["exists"] for kind in KINDS)

    real = converged["real"]
    assert real.rc == 0, real.explain()
    assert real.changed == 2, real.changed_tasks()  # the buckets, then their lifecycle rules

    for step in ("second_check", "second"):
        run = converged[step]
        assert run.rc == 0, run.explain()
        assert run.changed == 0, (step, run.changed_tasks())


def test_buckets_are_private_encrypted_versioned_tls_only_with_lifecycles(stack, converged):
    prefix = converged["prefix"]
    s3 = stack.client("s3")
    account = stack.client("sts").get_caller_identity()["Account"]
    out = converged["second"].outputs("storage_outputs")
    assert _buckets(s3, prefix) == sorted(f"{prefix}-{kind}-{account}" for kind in KINDS)
    assert out["account_id"] == account

    for kind in KINDS:
        bucket = f"{prefix}-{kind}-{account}"
        assert (
            out[kind]
            == out["buckets"][kind]
            == {
                "name": bucket,
                "arn": f"arn:aws:s3:::{bucket}",
                "regional_domain_name": f"{bucket}.s3.{stack.region}.amazonaws.com",
                "exists": True,
            }
        )
        tags = assert_bucket_protected(s3, bucket)
        assert tags["Name"] == bucket
        assert tags["managed-by"] == "fastier.platform"

        resources = sorted([f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"])
        statements = {s["Sid"]: s for s in _policy(s3, bucket)["Statement"]}
        assert sorted(statements) == ["StorageDenyInsecureTransport", "StorageDenyOutdatedTls"]
        insecure = statements["StorageDenyInsecureTransport"]
        assert (insecure["Effect"], insecure["Principal"], insecure["Action"]) == ("Deny", "*", "s3:*")
        assert sorted(insecure["Resource"]) == resources
        assert insecure["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        old_tls = statements["StorageDenyOutdatedTls"]
        assert (old_tls["Effect"], old_tls["Principal"], old_tls["Action"]) == ("Deny", "*", "s3:*")
        assert sorted(old_tls["Resource"]) == resources
        assert old_tls["Condition"] == {"NumericLessThan": {"s3:TlsVersion": "1.2"}}

    def lifecycle(kind: str) -> dict[str, Any]:
        [rule] = s3.get_bucket_lifecycle_configuration(Bucket=f"{prefix}-{kind}-{account}")["Rules"]
        assert rule["Status"] == "Enabled"
        assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
        return rule

    artifacts, backups, static = lifecycle("artifacts"), lifecycle("backups"), lifecycle("static")
    assert artifacts["Expiration"] == {"Days": 180}
    assert artifacts["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert backups["Transitions"] == [{"Days": 30, "StorageClass": "STANDARD_IA"}, {"Days": 90, "StorageClass": "GLACIER"}]
    assert backups["NoncurrentVersionExpiration"] == {"NoncurrentDays": 90}
    assert "Expiration" not in backups
    assert static["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert "Expiration" not in static


def test_policy_keeps_cdn_statements_drops_foreign_ones_and_adds_extra_ones(stack, converged):
    prefix = converged["prefix"]
    s3 = stack.client("s3")
    account = stack.client("sts").get_caller_identity()["Account"]
    static = f"{prefix}-static-{account}"
    # What the cdn role writes once its distribution exists, and a statement nobody manages.
    cdn = {
        "Sid": "CdnOacRead",
        "Effect": "Allow",
        "Principal": {"Service": "cloudfront.amazonaws.com"},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{static}/*",
        "Condition": {"StringEquals": {"AWS:SourceArn": f"arn:aws:cloudfront::{account}:distribution/E2EXAMPLE"}},
    }
    drift = {
        "Sid": "SomebodyElse",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
        "Action": "s3:*",
        "Resource": f"arn:aws:s3:::{static}/*",
    }
    policy = _policy(s3, static)
    s3.put_bucket_policy(Bucket=static, Policy=json.dumps({**policy, "Statement": [*policy["Statement"], cdn, drift]}))
    audit = {
        "Sid": "AuditRead",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:role/audit"},
        "Action": "s3:ListBucket",
        "Resource": f"arn:aws:s3:::{static}",
    }

    run = run_playbook(stack.env(), PLAYBOOK, {**converged["extra"], "storage_static_extra_policy_statements": [audit]})
    assert run.rc == 0, run.explain()
    assert sorted(_sids(s3, static)) == ["AuditRead", "CdnOacRead", "StorageDenyInsecureTransport", "StorageDenyOutdatedTls"]
    assert next(s for s in _policy(s3, static)["Statement"] if s["Sid"] == "CdnOacRead") == cdn

    again = run_playbook(stack.env(), PLAYBOOK, {**converged["extra"], "storage_static_extra_policy_statements": [audit]})
    assert again.rc == 0, again.explain()
    assert again.changed == 0, again.changed_tasks()

    # the extra statement leaves with the variable; the cdn one stays
    back = run_playbook(stack.env(), PLAYBOOK, converged["extra"])
    assert back.rc == 0, back.explain()
    assert sorted(_sids(s3, static)) == ["CdnOacRead", "StorageDenyInsecureTransport", "StorageDenyOutdatedTls"]


def test_sse_kms_and_deletion_only_with_confirmations(stack, unique):
    env = f"s{unique}"
    prefix = f"fastier-{env}"
    s3 = stack.client("s3")
    account = stack.client("sts").get_caller_identity()["Account"]
    key_arn = stack.client("kms").create_key(Description=f"storage test {env}")["KeyMetadata"]["Arn"]
    extra = {**BASE, "platform_env": env, "storage_encryption": "aws:kms", "storage_kms_key_id": key_arn}

    made = run_playbook(stack.env(), PLAYBOOK, extra)
    assert made.rc == 0, made.explain()
    for kind in KINDS:
        [rule] = s3.get_bucket_encryption(Bucket=f"{prefix}-{kind}-{account}")["ServerSideEncryptionConfiguration"]["Rules"]
        assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}
        assert rule["BucketKeyEnabled"] is True
    s3.put_object(Bucket=f"{prefix}-backups-{account}", Key="db/2026-01-01.dump", Body=b"backup")

    refused = run_playbook(stack.env(), PLAYBOOK, {**extra, "storage_state": "absent"})
    assert refused.rc != 0
    assert "storage_confirm_delete" in next(t for t in refused.tasks() if t.get("failed"))["msg"]
    assert len(_buckets(s3, prefix)) == 3

    not_empty = run_playbook(stack.env(), PLAYBOOK, {**extra, "storage_state": "absent", "storage_confirm_delete": True})
    assert not_empty.rc != 0
    message = [t for t in not_empty.tasks() if t.get("failed")][-1]["msg"]
    assert "storage_delete_objects" in message, message
    # the empty buckets went, the one holding a backup stayed
    assert _buckets(s3, prefix) == [f"{prefix}-backups-{account}"]

    # teardown.yml's default: every bucket but the backups one, whatever it holds
    kept = run_playbook(
        stack.env(),
        PLAYBOOK,
        {**extra, "storage_state": "absent", "storage_confirm_delete": True, "storage_delete_objects": True, "storage_delete_kinds": ["artifacts", "static"]},
    )
    assert kept.rc == 0, kept.explain()
    assert _buckets(s3, prefix) == [f"{prefix}-backups-{account}"]
    assert s3.get_object(Bucket=f"{prefix}-backups-{account}", Key="db/2026-01-01.dump")["Body"].read() == b"backup"

    gone = run_playbook(stack.env(), PLAYBOOK, {**extra, "storage_state": "absent", "storage_confirm_delete": True, "storage_delete_objects": True})
    assert gone.rc == 0, gone.explain()
    assert _buckets(s3, prefix) == []
    assert not any(gone.outputs("storage_outputs")[kind]["exists"] for kind in KINDS)


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"storage_versioning": "maybe"}, "storage_versioning"),
        ({"storage_encryption": "des"}, "storage_encryption"),
        ({"storage_kms_key_id": "alias/backups"}, "storage_kms_key_id"),
        ({"storage_backups_transitions": [{"days": 10, "storage_class": "standard_ia"}]}, "storage_backups_transitions"),
        ({"storage_backups_transitions": [{"days": 30, "storage_class": "tape"}]}, "storage_class"),
        ({"storage_static_extra_policy_statements": [{"Sid": "StorageMine", "Effect": "Allow"}]}, "storage_static_extra_policy_statements"),
        ({"platform_env": "a-very-long-environment-name-that-breaks-s3"}, "platform_env"),
    ],
)
def test_bad_storage_values_are_refused_before_any_aws_call(stack, bad, named):
    env = {**stack.env(), "LOCAL_AWS_ENDPOINT": NO_AWS}
    run = run_playbook(env, PLAYBOOK, {**BASE, "platform_env": "refused", **bad})
    assert run.rc != 0
    failed = [t for t in run.tasks() if t.get("failed")]
    assert len(failed) == 1, run.explain()
    assert named in failed[0]["msg"], failed[0]["msg"]
    ran = [t["name"] for t in run.tasks() if not t.get("skipped")]
    assert all(name == "Storage role" or " : Validat" in name for name in ran), ran
