"""The app_bundle role through ansible-playbook against the local AWS.

A small application (made here, not the sample app) goes through the four
steps: check mode on a fresh stack writes nothing (no object, no version, no
zip), the real run uploads the bundle and registers a version that
``describe_application_versions`` shows under the right S3 key, and check and
real runs again change nothing. The bundle's content is read back from S3
(Procfile sized to the instance, .ebextensions, nginx settings, no secrets).
Bad inputs are refused by validation before any AWS call, naming the variable.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.playbooks import ROOT, ensure_collection, run_playbook

PLAYBOOK = ROOT / "tests/integration/playbooks/role_app_bundle.yml"
NO_AWS = "http://127.0.0.1:9"  # nothing listens there: an AWS call would fail to connect
ROLE = "fastier.platform.app_bundle : "
APP = {
    "VERSION": "2.3.0\n",
    "wsgi.py": "from fastier_app import create_app\n\napplication = create_app()\n",
    "gunicorn.conf.py": "accesslog = '-'\n",
    "requirements.txt": "# pinned\nflask==3.0.3\ngunicorn==23.0.0 --hash=sha256:0000\n",
    "fastier_app/__init__.py": "def create_app():\n    return None\n",
    "fastier_app/__main__.py": "print('migrate')\n",
    "migrations/0001_init.sql": "create table items (id serial primary key);\n",
    # never in a bundle
    ".env": "DATABASE_PASSWORD=local-only\n",
    "tests/test_app.py": "def test():\n    pass\n",
    "fastier_app/__pycache__/x.pyc": "compiled",
}


@pytest.fixture(scope="module", autouse=True)
def _collection() -> None:
    ensure_collection()


def write_app(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def bundle_keys(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


@pytest.fixture(scope="module")
def runs(stack, tmp_path_factory) -> dict[str, Any]:
    """A fresh artifacts bucket and application; the role's four steps against them."""
    env = f"ab{uuid.uuid4().hex[:8]}"
    account = stack.client("sts").get_caller_identity()["Account"]
    bucket, application = f"fastier-{env}-artifacts-{account}", f"fastier-{env}"
    s3, eb = stack.client("s3"), stack.client("elasticbeanstalk")
    s3.create_bucket(Bucket=bucket)
    eb.create_application(ApplicationName=application)
    tmp = tmp_path_factory.mktemp("app_bundle")
    source = write_app(tmp / "app", APP)
    build_dir = tmp / "build"
    extra = {"platform_env": env, "app_bundle_source_dir": str(source), "app_bundle_build_dir": str(build_dir)}

    out: dict[str, Any] = {"env": env, "bucket": bucket, "application": application, "extra": extra, "build_dir": build_dir, "s3": s3, "eb": eb}
    out["first_check"] = run_playbook(stack.env(), PLAYBOOK, extra, check=True, diff=True)
    out["after_check"] = {
        "keys": bundle_keys(s3, bucket),
        "versions": eb.describe_application_versions(ApplicationName=application)["ApplicationVersions"],
        "build_dir": sorted(p.name for p in build_dir.glob("*")) if build_dir.exists() else [],
    }
    out["real"] = run_playbook(stack.env(), PLAYBOOK, extra, diff=True)
    out["second_check"] = run_playbook(stack.env(), PLAYBOOK, extra, check=True)
    out["second"] = run_playbook(stack.env(), PLAYBOOK, extra)
    # the facts entry point alone, with a build directory nobody wrote to
    out["facts_dir"] = tmp / "facts-build"
    out["facts"] = run_playbook(stack.env(), PLAYBOOK, {**extra, "app_bundle_build_dir": str(out["facts_dir"]), "it_entry_point": "facts"})
    return out


def test_check_mode_on_a_fresh_stack_writes_nothing_but_says_what_it_would_do(runs):
    check = runs["first_check"]
    assert check.rc == 0, check.explain()
    assert runs["after_check"] == {"keys": [], "versions": [], "build_dir": []}
    assert check.changed_tasks(without_role=True) == [
        f"Build the bundle {runs['build_dir']}/{runs['application']}.zip",
        f"Upload the bundle to s3://{runs['bucket']}/bundles/{runs['application']}/{check.outputs('app_bundle_outputs')['version_label']}.zip",
        f"Register version {check.outputs('app_bundle_outputs')['version_label']}",
    ]
    assert check.task(f"{ROLE}Register version {check.outputs('app_bundle_outputs')['version_label']}")["would_upload"] is True


def test_real_run_registers_the_version_at_the_right_key_and_reruns_change_nothing(runs):
    real, check = runs["real"], runs["first_check"]
    assert real.rc == 0, real.explain()
    out = real.outputs("app_bundle_outputs")
    # check mode predicted exactly what the real run did
    assert out == check.outputs("app_bundle_outputs")
    label = out["version_label"]
    assert label == f"fastier-2.3.0-{out['sha256'][:12]}"
    key = f"bundles/{runs['application']}/{label}.zip"
    assert out == {
        "version_label": label,
        "version": "2.3.0",
        "sha256": out["sha256"],
        "path": f"{runs['build_dir']}/{runs['application']}.zip",
        "s3_bucket": runs["bucket"],
        "s3_key": key,
        "application_name": runs["application"],
        "workers": 2,  # t3.micro (local inventory): (1024 - 512) // 192
        "threads": 2,
        "instance_type": "t3.micro",
        "memory_mib": 1024,
        "vcpus": 2,
    }
    [version] = runs["eb"].describe_application_versions(ApplicationName=runs["application"])["ApplicationVersions"]
    assert version["VersionLabel"] == label
    assert version["SourceBundle"] == {"S3Bucket": runs["bucket"], "S3Key": key}
    assert version["Status"] == "Processed"
    assert out["sha256"] in version["Description"]
    assert runs["s3"].head_object(Bucket=runs["bucket"], Key=key)["Metadata"]["sha256"] == out["sha256"]
    assert bundle_keys(runs["s3"], runs["bucket"]) == [key]
    # the local zip is the uploaded one
    assert Path(out["path"]).read_bytes() == runs["s3"].get_object(Bucket=runs["bucket"], Key=key)["Body"].read()

    for step in ("second_check", "second"):
        run = runs[step]
        assert run.rc == 0, run.explain()
        assert run.changed == 0, (step, run.changed_tasks())
        assert run.outputs("app_bundle_outputs") == out
    assert len(runs["eb"].describe_application_versions(ApplicationName=runs["application"])["ApplicationVersions"]) == 1


def test_facts_entry_point_computes_the_same_outputs_and_writes_nothing(runs):
    facts = runs["facts"]
    assert facts.rc == 0, facts.explain()
    assert facts.changed == 0, facts.changed_tasks()
    out = runs["second"].outputs("app_bundle_outputs")
    assert facts.outputs("app_bundle_outputs") == {**out, "path": f"{runs['facts_dir']}/{runs['application']}.zip"}
    assert not runs["facts_dir"].exists()


def test_bundle_holds_the_app_sized_procfile_and_platform_config_and_no_secrets(runs):
    out = runs["second"].outputs("app_bundle_outputs")
    body = runs["s3"].get_object(Bucket=out["s3_bucket"], Key=out["s3_key"])["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        names = archive.namelist()
        assert names == sorted(
            [
                ".ebextensions/10-migrate.config",
                ".ebextensions/20-healthcheck.config",
                ".ebextensions/https-redirect.config",
                ".platform/nginx/conf.d/fastier-proxy.conf",
                "Procfile",
                "VERSION",
                "fastier_app/__init__.py",
                "fastier_app/__main__.py",
                "gunicorn.conf.py",
                "migrations/0001_init.sql",
                "requirements.txt",
                "wsgi.py",
            ]
        )
        procfile = archive.read("Procfile").decode()
        migrate = archive.read(".ebextensions/10-migrate.config").decode()
        health = archive.read(".ebextensions/20-healthcheck.config").decode()
        nginx = archive.read(".platform/nginx/conf.d/fastier-proxy.conf").decode()
        redirect = archive.read(".ebextensions/https-redirect.config")
    assert procfile == (
        "web: gunicorn --bind 127.0.0.1:8000 --workers 2 --threads 2 --max-requests 1000 --max-requests-jitter 100 "
        "--timeout 30 --graceful-timeout 30 wsgi:application\n"
    )
    assert 'command: "source /var/app/venv/*/bin/activate && python -m fastier_app migrate"' in migrate
    assert "leader_only: true" in migrate
    assert 'HealthCheckPath: "/healthz"' in health
    assert "client_max_body_size 10m;" in nginx and "proxy_read_timeout 30s;" in nginx
    assert redirect == (ROOT / "roles/beanstalk/files/https-redirect.config").read_bytes()


@pytest.mark.parametrize("with_bucket", [False, True], ids=["empty-account", "bucket-without-application"])
def test_check_mode_before_the_other_tiers_exist_plans_what_it_can_and_fails_nothing(stack, tmp_path, with_bucket):
    """site.yml --check on a new account: no artifacts bucket (storage) and no application (beanstalk) yet."""
    env = f"ab{uuid.uuid4().hex[:8]}"
    if with_bucket:
        stack.client("s3").create_bucket(Bucket=f"fastier-{env}-artifacts-{stack.client('sts').get_caller_identity()['Account']}")
    source = write_app(tmp_path / "app", APP)
    extra = {"platform_env": env, "app_bundle_source_dir": str(source), "app_bundle_build_dir": str(tmp_path / "build")}
    run = run_playbook(stack.env(), PLAYBOOK, extra, check=True)
    assert run.rc == 0, run.explain()
    label = run.outputs("app_bundle_outputs")["version_label"]
    changed = [name.split(" ")[0] for name in run.changed_tasks(without_role=True)]
    if with_bucket:
        assert changed == ["Build", "Upload"]
        said = run.task(f"{ROLE}Check mode | Say what could not be planned")["msg"]
        assert f"the application fastier-{env} does not exist yet" in said and label in said
        assert run.task(f"{ROLE}Register version {label}")["skipped"]
    else:
        assert changed == ["Build"]
        said = run.task(f"{ROLE}Say what check mode could not plan")["msg"]
        assert "does not exist yet" in said and label in said
    assert not (tmp_path / "build").exists()


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"app_bundle_instance_type": "x9.huge"}, "app_bundle_instance_type"),
        ({"app_bundle_instance_type": "t3.nano"}, "app_bundle_reserved_memory_mb"),
        ({"requirements.txt": "flask==3.0.3\nrequests>=2.31\n"}, "app_bundle_requirements_files"),
    ],
)
def test_bad_input_is_refused_before_any_aws_call_naming_the_variable(stack, tmp_path, bad, named):
    files = {**APP, **{k: v for k, v in bad.items() if not k.startswith("app_bundle_")}}
    source = write_app(tmp_path / "app", files)
    extra = {
        "platform_env": "refused",
        "app_bundle_source_dir": str(source),
        "app_bundle_build_dir": str(tmp_path / "build"),
        **{k: v for k, v in bad.items() if k.startswith("app_bundle_")},
    }
    run = run_playbook({**stack.env(), "LOCAL_AWS_ENDPOINT": NO_AWS}, PLAYBOOK, extra)
    message = run.refusal()
    assert named in message, message
    if "requirements.txt" in bad:
        assert "requirements.txt:2: requests>=2.31" in message
    assert not (tmp_path / "build").exists()
