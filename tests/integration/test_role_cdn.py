"""The cdn role through ansible-playbook against the local AWS.

The test makes the private static bucket (as the storage role would: Block
Public Access, a TLS-only statement) with boto3, then runs the role: check
mode on an empty account, a real run, and reads back with boto3 what keeps the
bucket private and the viewers on HTTPS - the origin access control (SigV4,
always), redirect-to-https, TLS 1.2 with a certificate, the bucket policy
that lets only this distribution read and keeps the storage role's
statements. Then the re-runs (check, real: no change) and the teardown, and
bad inventory values rejected before any AWS call.
"""

from __future__ import annotations

import json

import pytest

from tests.playbooks import ROOT, ensure_collection, run_playbook

PLAYBOOK = ROOT / "tests/integration/playbooks/role_cdn.yml"
NO_AWS = "http://127.0.0.1:9"  # nothing listens there: an AWS call would fail to connect
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0f3c5e2a-1111-4222-8333-444455556666"


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


def private_bucket(s3, name: str) -> dict:
    """The static bucket as the storage role leaves it: private, TLS-only policy."""
    s3.create_bucket(Bucket=name)
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={k: True for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")},
    )
    tls_only = {
        "Sid": "StorageDenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [tls_only]}))
    return tls_only


def distribution(cloudfront, comment: str) -> tuple[dict, dict] | None:
    for item in cloudfront.list_distributions()["DistributionList"].get("Items", []):
        if item["Comment"] == comment:
            found = cloudfront.get_distribution(Id=item["Id"])["Distribution"]
            return found, found["DistributionConfig"]
    return None


def oacs(cloudfront) -> dict[str, dict]:
    items = cloudfront.list_origin_access_controls()["OriginAccessControlList"].get("Items", [])
    return {item["Name"]: item for item in items}


@pytest.fixture
def converged(stack, unique):
    """A first real run of the role on a fresh private bucket (and the check run before it)."""
    s3 = stack.client("s3")
    cloudfront = stack.client("cloudfront")
    prefix = f"it{unique}-local"
    bucket = f"{prefix}-static"
    tls_only = private_bucket(s3, bucket)
    extra = {
        "platform_name": f"it{unique}",
        "cdn_static_bucket": bucket,
        "cdn_acm_certificate_arn": CERT,
        "cdn_aliases": [f"static.it{unique}.fastier.example"],
    }

    check = run_playbook(stack.env(), PLAYBOOK, extra, check=True)
    assert check.rc == 0, check.explain()
    assert {f"Origin access control {prefix}-static-oac", f"Distribution {prefix}-static"} <= set(check.changed_tasks(without_role=True))
    assert distribution(cloudfront, f"{prefix}-static") is None
    assert f"{prefix}-static-oac" not in oacs(cloudfront)

    real = run_playbook(stack.env(), PLAYBOOK, extra)
    assert real.rc == 0, real.explain()
    assert set(real.changed_tasks(without_role=True)) == {
        f"Origin access control {prefix}-static-oac",
        f"Distribution {prefix}-static",
        "Static bucket policy with the distribution's read statement",
    }
    return {"prefix": prefix, "bucket": bucket, "extra": extra, "run": real, "tls_only": tls_only}


def test_cdn_serves_the_private_bucket_over_https_only(stack, converged):
    s3 = stack.client("s3")
    cloudfront = stack.client("cloudfront")
    prefix, bucket = converged["prefix"], converged["bucket"]

    oac = oacs(cloudfront)[f"{prefix}-static-oac"]
    assert (oac["SigningProtocol"], oac["SigningBehavior"], oac["OriginAccessControlOriginType"]) == ("sigv4", "always", "s3")

    dist, config = distribution(cloudfront, f"{prefix}-static")
    out = converged["run"].outputs("cdn_outputs")
    assert out["distribution_id"] == dist["Id"]
    assert out["domain_name"] == dist["DomainName"]
    assert out["oac_id"] == oac["Id"]

    [origin] = config["Origins"]["Items"]
    assert origin["DomainName"] == f"{bucket}.s3.us-east-1.amazonaws.com"
    behavior = config["DefaultCacheBehavior"]
    assert behavior["TargetOriginId"] == origin["Id"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["Compress"] is True
    assert sorted(behavior["AllowedMethods"]["Items"]) == ["GET", "HEAD"]
    assert config["DefaultRootObject"] == "index.html"
    assert config["PriceClass"] == "PriceClass_100"
    assert config["ViewerCertificate"]["ACMCertificateArn"] == CERT
    assert config["ViewerCertificate"]["MinimumProtocolVersion"] == "TLSv1.2_2021"
    assert config["ViewerCertificate"]["SSLSupportMethod"] == "sni-only"
    assert config["CacheBehaviors"]["Quantity"] == 0  # no app origin unless asked

    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    # the storage role's statement is kept as it was
    assert statements["StorageDenyInsecureTransport"] == converged["tls_only"]
    read = statements["CdnOacRead"]
    assert read["Effect"] == "Allow"
    assert read["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert read["Action"] == "s3:GetObject"
    assert read["Resource"] == f"arn:aws:s3:::{bucket}/*"
    assert read["Condition"] == {"StringEquals": {"AWS:SourceArn": dist["ARN"]}}
    # nothing else may read: no other Allow in the policy, and the bucket stays private
    assert [s["Sid"] for s in policy["Statement"] if s["Effect"] == "Allow"] == ["CdnOacRead"]
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    assert out["static_bucket_policy_statements"] == [read]

    # Re-runs (check, real): nothing changes.
    for check in (True, False):
        again = run_playbook(stack.env(), PLAYBOOK, converged["extra"], check=check)
        assert again.rc == 0, again.explain()
        assert again.changed == 0, again.changed_tasks(without_role=True)
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == policy

    gone = run_playbook(stack.env(), PLAYBOOK, {**converged["extra"], "cdn_state": "absent"})
    assert gone.rc == 0, gone.explain()
    assert distribution(cloudfront, f"{prefix}-static") is None
    assert f"{prefix}-static-oac" not in oacs(cloudfront)
    left = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert left == [converged["tls_only"]]


def test_cdn_origin_keeps_its_oac_and_reruns_change_nothing(stack, converged):
    cloudfront = stack.client("cloudfront")
    prefix = converged["prefix"]
    oac = oacs(cloudfront)[f"{prefix}-static-oac"]
    _, config = distribution(cloudfront, f"{prefix}-static")
    [origin] = config["Origins"]["Items"]
    assert origin.get("OriginAccessControlId") == oac["Id"]
    assert origin.get("S3OriginConfig") == {"OriginAccessIdentity": ""}  # no legacy OAI

    again = run_playbook(stack.env(), PLAYBOOK, converged["extra"], check=True)
    assert again.rc == 0, again.explain()
    assert again.changed == 0, again.changed_tasks(without_role=True)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"cdn_aliases": ["static.fastier.example"]}, "cdn_acm_certificate_arn is required when cdn_aliases are set"),
        (
            {"cdn_acm_certificate_arn": "arn:aws:acm:eu-west-1:123456789012:certificate/abc"},
            "cdn_acm_certificate_arn must be the ARN of an ACM certificate in us-east-1",
        ),
        ({"cdn_static_bucket": "Not_A_Bucket"}, "cdn_static_bucket must be an S3 bucket name"),
        ({"cdn_price_class": "PriceClass_Cheapest"}, "cdn_price_class"),
    ],
)
def test_cdn_rejects_bad_inventory_before_any_aws_call(stack, unique, bad, message):
    extra = {"platform_name": f"it{unique}", "cdn_static_bucket": f"it{unique}-local-static", "aws_endpoint_url": NO_AWS, **bad}
    run = run_playbook(stack.env(), PLAYBOOK, extra)
    assert message in run.refusal()
