"""amazon.aws modules run through ansible-playbook against the local endpoint.

The four-step change test of amazon.aws's integration targets: check mode
(reports a change, creates nothing), real run, check mode again and a real run
again (both report no change).
"""

from __future__ import annotations

import secrets

import pytest

from tests.playbooks import ROOT, ensure_collection, run_playbook

PLAYBOOK = ROOT / "tests/integration/playbooks/aws_modules.yml"


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


def test_s3_bucket_and_rds_instance_converge_idempotently(stack, unique):
    extra = {"it_suffix": unique, "it_db_password": secrets.token_urlsafe(18)}
    s3 = stack.client("s3")
    rds = stack.client("rds")
    name = f"fastier-it-{unique}"

    first_check = run_playbook(stack.env(), PLAYBOOK, extra, check=True)
    assert first_check.rc == 0, first_check.explain()
    # amazon.aws.s3_bucket has no check mode: Ansible skips it under --check.
    assert first_check.task("Bucket").get("skipped") is True
    assert first_check.changed_tasks() == ["Database instance"]
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert name not in [d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]]

    real = run_playbook(stack.env(), PLAYBOOK, extra)
    assert real.rc == 0, real.explain()
    assert set(real.changed_tasks()) == {"Bucket", "Database instance"}
    assert real.task("Connect to the instance with the master credentials")["is_available"] is True
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    db = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
    assert db["MultiAZ"] is True and db["StorageEncrypted"] is True

    second_check = run_playbook(stack.env(), PLAYBOOK, extra, check=True)
    assert second_check.rc == 0, second_check.explain()
    assert second_check.changed == 0, second_check.changed_tasks()

    second = run_playbook(stack.env(), PLAYBOOK, extra)
    assert second.rc == 0, second.explain()
    assert second.changed == 0, second.changed_tasks()
    # the password never reaches the output
    assert extra["it_db_password"] not in real.stdout + real.stderr + second.stdout
