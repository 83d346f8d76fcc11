"""playbooks/site.yml and teardown.yml refuse bad input before any AWS call.

A bad inventory value (``database_multi_az: maybe``, a min size above the max
size, an instance class of an unknown format, ...) must fail in the first play's
validation of every tier, with a message naming the variable, before any task
that talks to AWS. The values reach the playbook the three ways users give
them: typed extra vars (JSON), ``-e key=value`` (every value a string) and an
inventory's group_vars file. AWS is an endpoint nothing listens on, so a run
that got past validation fails to connect instead of touching anything; the
controls show that the shipped inventory does get that far.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from pathlib import Path

import pytest

from tests.playbooks import INCLUDE_ACTIONS, ROOT, PlaybookRun, ensure_collection, is_validation, messages, run_playbook

SITE = ROOT / "playbooks/site.yml"
TEARDOWN = ROOT / "playbooks/teardown.yml"
INVENTORY = ROOT / "inventories/local"
TIERS = ("network", "storage", "database", "backup", "beanstalk", "dns", "cdn", "pipeline", "observability")
# An endpoint nothing listens on: a run that reaches AWS fails with a connection error.
NO_AWS_PORT = 9
NO_AWS = f"http://127.0.0.1:{NO_AWS_PORT}"
REFUSE_TASK = "Refuse without an explicit confirmation"
HOW_TO_CONFIRM = "-e teardown_confirm=fastier-local"  # platform_name-platform_env of inventories/local


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", NO_AWS_PORT), timeout=2).close()
    return {**os.environ, "LOCAL_AWS_ENDPOINT": NO_AWS}


def _inventory_with(tmp_path: Path, file: str, **lines: str) -> Path:
    """A copy of inventories/local whose group_vars/all/<file> sets each key to the given YAML text."""
    inventory = tmp_path / "inventory"
    shutil.copytree(INVENTORY, inventory)
    path = inventory / "group_vars" / "all" / file
    text = path.read_text()
    for key, value in lines.items():
        text, count = re.subn(rf"^{key}:.*$", f"{key}: {value}", text, flags=re.MULTILINE)
        assert count == 1, f"{key} is not a one-line setting of {path.relative_to(tmp_path)}"
    path.write_text(text)
    return inventory


def _assert_reached_aws_after_validating_every_tier(run: PlaybookRun) -> None:
    """The run passed every tier's validation, then failed on its first AWS call (NO_AWS)."""
    tasks = [t for t in run.tasks() if not t.get("skipped")]
    failed = [t for t in tasks if t.get("failed")]
    assert run.rc != 0 and len(failed) == 1, run.explain()
    assert not is_validation(failed[0]), run.explain()
    assert "Could not connect" in "\n".join(messages(failed[0])), run.explain()
    first_beyond = next(i for i, t in enumerate(tasks) if t.get("action") not in INCLUDE_ACTIONS and not is_validation(t))
    validated = {t["name"].split(" : ", 1)[0] for t in tasks[:first_beyond] if t.get("action") == "ansible.builtin.validate_argument_spec"}
    assert validated == {f"fastier.platform.{tier}" for tier in TIERS}, validated


def test_the_local_inventory_passes_validation_and_only_then_reaches_aws(env):
    _assert_reached_aws_after_validating_every_tier(run_playbook(env, SITE))


def test_good_values_typed_as_strings_on_the_command_line_pass_validation(env):
    """``-e key=value`` makes every value a string: validation compares numbers and booleans by value."""
    good = [
        "dns_ttl=60",
        "database_backup_retention_days=3",
        "database_allow_short_backup_retention=true",
        "backup_rds_retention_days_min=3",
        "observability_topic_encrypted=false",
        "observability_topic_kms_key_id=not-checked-when-unencrypted",
        "observability_alb_latency_threshold_s=1.5",
        "pipeline_log_retention_days=14",
        "cdn_wait_timeout=600",
        "storage_artifacts_expiration_days=0",
        "beanstalk_min_size=2",
        "network_db_port=15441",
    ]
    _assert_reached_aws_after_validating_every_tier(run_playbook(env, SITE, cli_vars=good))


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        pytest.param({"database_multi_az": "maybe"}, "argument 'database_multi_az'", id="multi-az-maybe"),
        pytest.param(
            {"beanstalk_min_size": 5, "beanstalk_max_size": 2},
            "beanstalk_min_size (5) must be less than or equal to beanstalk_max_size (2)",
            id="min-size-above-max",
        ),
        pytest.param({"database_instance_class": "m5.large"}, "database_instance_class must be an RDS instance class", id="class-without-db"),
        pytest.param({"database_instance_class": "db.huge"}, "database_instance_class must be an RDS instance class", id="class-db-huge"),
        pytest.param({"beanstalk_instance_type": "nonsense"}, "beanstalk_instance_type must be an EC2 instance type", id="instance-type"),
        pytest.param({"dns_ttl": -5}, "dns_ttl must be between 1 and 172800", id="ttl-negative"),
        pytest.param({"storage_artifacts_expiration_days": "nonsense"}, "argument 'storage_artifacts_expiration_days'", id="lifecycle-days-word"),
        pytest.param(
            {"storage_backups_transitions": [{"days": 10, "storage_class": "standard_ia"}]},
            "storage_backups_transitions must have increasing",
            id="lifecycle-transition-too-early",
        ),
        pytest.param(
            {"observability_email_subscriptions": ["oncall at fastier.example"]},
            "observability_email_subscriptions must be a list of e-mail addresses",
            id="email",
        ),
        pytest.param({"database_state": "gone"}, "database_state must be one of: present, absent", id="tier-state"),
        pytest.param({"network_nat_mode": "double"}, "network_nat_mode must be one of", id="tier-enum"),
    ],
)
def test_site_refuses_a_bad_extra_var_before_any_aws_call(env, bad, named):
    run = run_playbook(env, SITE, bad)
    assert named in run.refusal()


@pytest.mark.parametrize(
    ("cli_vars", "named"),
    [
        pytest.param(["database_multi_az=maybe"], "argument 'database_multi_az'", id="multi-az-maybe"),
        pytest.param(["beanstalk_min_size=5"], "beanstalk_min_size (5) must be less than or equal to beanstalk_max_size (2)", id="min-above-inventory-max"),
        pytest.param(["dns_ttl=-5"], "dns_ttl must be between 1 and 172800", id="ttl-negative"),
        pytest.param(["storage_artifacts_expiration_days=-3"], "storage_artifacts_expiration_days (-3) must be 0", id="lifecycle-days-negative"),
        # "false" as a string is truthy: it must not allow a short retention
        pytest.param(
            ["database_backup_retention_days=3", "database_allow_short_backup_retention=false"],
            "database_backup_retention_days must be 7 to 35 days (got 3)",
            id="short-retention-not-allowed",
        ),
        pytest.param(["storage_state=absent", "storage_confirm_delete=false"], "set storage_confirm_delete: true to confirm", id="delete-not-confirmed"),
        pytest.param(["network_db_port=70000"], "must be TCP ports 1-65535 (got [80, 443], 80, 70000, 5432)", id="port"),
        pytest.param(["cdn_wait_timeout=5"], "cdn_wait_timeout must be at least 60", id="cdn-timeout"),
        pytest.param(["pipeline_log_retention_days=42"], "pipeline_log_retention_days must be one of", id="log-retention"),
        pytest.param(["observability_kms_key_deletion_days=3"], "observability_kms_key_deletion_days must be between 7 and 30", id="key-deletion-days"),
    ],
)
def test_site_refuses_a_bad_command_line_value_before_any_aws_call(env, cli_vars, named):
    run = run_playbook(env, SITE, cli_vars=cli_vars)
    assert named in run.refusal()


@pytest.mark.parametrize(
    ("file", "lines", "named"),
    [
        pytest.param("database.yml", {"database_multi_az": "maybe"}, "argument 'database_multi_az'", id="multi-az-maybe"),
        pytest.param(
            "beanstalk.yml",
            {"beanstalk_min_size": "5", "beanstalk_max_size": "2"},
            "beanstalk_min_size (5) must be less than or equal to beanstalk_max_size (2)",
            id="min-size-above-max",
        ),
        pytest.param("database.yml", {"database_instance_class": "m5.large"}, "database_instance_class must be an RDS instance class", id="class"),
        pytest.param("dns.yml", {"dns_ttl": '"-5"'}, "dns_ttl must be between 1 and 172800", id="ttl-quoted"),
        pytest.param("storage.yml", {"storage_artifacts_expiration_days": "thirty"}, "argument 'storage_artifacts_expiration_days'", id="lifecycle-days"),
    ],
)
def test_site_refuses_a_bad_group_vars_value_before_any_aws_call(env, tmp_path, file, lines, named):
    run = run_playbook(env, SITE, inventory=_inventory_with(tmp_path, file, **lines))
    assert named in run.refusal()


@pytest.mark.parametrize(
    "cli_vars",
    [pytest.param([], id="none"), pytest.param(["teardown_confirm=yes"], id="yes"), pytest.param(["teardown_confirm=fastier-production"], id="other-env")],
)
def test_teardown_refuses_without_the_confirmation_before_any_aws_call(env, cli_vars):
    run = run_playbook(env, TEARDOWN, cli_vars=cli_vars)
    assert run.rc != 0
    assert [t["name"] for t in run.tasks() if not t.get("skipped")] == [REFUSE_TASK], run.explain()
    assert HOW_TO_CONFIRM in run.task(REFUSE_TASK)["msg"]


def test_teardown_with_the_confirmation_gets_past_the_refusal(env):
    """The control: the right value passes the check; the run then fails on its first AWS call."""
    run = run_playbook(env, TEARDOWN, cli_vars=[HOW_TO_CONFIRM.removeprefix("-e ")])
    assert run.rc != 0
    assert not run.task(REFUSE_TASK).get("failed"), run.explain()
    [failed] = [t for t in run.tasks() if t.get("failed")]
    assert "Could not connect" in "\n".join(messages(failed)), run.explain()
