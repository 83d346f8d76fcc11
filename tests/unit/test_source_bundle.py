"""Deterministic source bundles (plugins/module_utils/source_bundle.py) and the
app_bundle role's gunicorn sizing (roles/app_bundle/vars/main.yml), no endpoint.

The same source must give the same bytes whatever the mtimes, the umask or the
order files were created in; one changed byte must give a new label; excluded
files (secrets above all) must stay out; generated files must be in; unpinned
requirements must be refused, naming the line.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import zipfile
from pathlib import Path

import pytest
import yaml

from plugins.module_utils.source_bundle import (
    DEFAULT_EXCLUDES,
    BundleError,
    build,
    bundle_path,
    is_excluded,
    plan_entries,
    read_version_file,
    requirement_pin,
    unpinned_requirements,
    version_label,
    zip_listing,
)

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "app_bundle"

APP = {
    "VERSION": "1.4.2\n",
    "wsgi.py": "from fastier_app import create_app\napplication = create_app()\n",
    "gunicorn.conf.py": "accesslog = '-'\n",
    "requirements.txt": "flask==3.0.3\ngunicorn==23.0.0\n",
    "fastier_app/__init__.py": "def create_app():\n    return None\n",
    "fastier_app/__main__.py": "print('migrate')\n",
    "migrations/0001_init.sql": "create table t (id int);\n",
    "bin/start.sh": "#!/bin/sh\nexec gunicorn wsgi:application\n",
}
NOISE = {
    ".env": "DATABASE_PASSWORD=hunter2\n",
    ".env.production": "SECRET_KEY=abc\n",
    "local.env": "TOKEN=xyz\n",
    ".git/HEAD": "ref: refs/heads/main\n",
    "fastier_app/__pycache__/__init__.cpython-311.pyc": "compiled",
    "fastier_app/stale.pyc": "compiled",
    ".venv/bin/python": "binary",
    "venv/lib/site.py": "x",
    "node_modules/left-pad/index.js": "x",
    "tests/test_app.py": "def test(): pass\n",
    "fastier_app.egg-info/PKG-INFO": "x",
    ".pytest_cache/v/cache": "x",
}


def make_app(root: Path, files: dict[str, str], order: list[str] | None = None, mtime: int | None = None) -> Path:
    for rel in order or sorted(files):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[rel])
        if files[rel].startswith("#!"):
            path.chmod(path.stat().st_mode | stat.S_IXUSR)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
    return root


def zip_of(source: Path, **kwargs) -> bytes:
    buf = io.BytesIO()
    build(str(source), buf, **kwargs)
    return buf.getvalue()


def names(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.namelist()


# -- determinism -------------------------------------------------------------------------


def test_same_source_gives_the_same_bytes_whatever_mtimes_umask_and_creation_order(tmp_path):
    files = {**APP, **NOISE}
    old = os.umask(0o022)
    try:
        first = make_app(tmp_path / "a", files, mtime=1_600_000_000)
        os.umask(0o077)  # files 0600, directories 0700
        second = make_app(tmp_path / "b", files, order=sorted(files, reverse=True), mtime=1_700_000_000)
    finally:
        os.umask(old)
    assert (first / "wsgi.py").stat().st_mode & 0o777 != (second / "wsgi.py").stat().st_mode & 0o777
    generated = {"Procfile": "web: gunicorn wsgi:application\n", ".ebextensions/10-migrate.config": "container_commands: {}\n"}
    one, two = zip_of(first, files=generated), zip_of(second, files=generated)
    assert one == two
    assert hashlib.sha256(one).hexdigest() == hashlib.sha256(two).hexdigest()

    with zipfile.ZipFile(io.BytesIO(one)) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in infos}
    assert modes["bin/start.sh"] == 0o755
    assert {m for name, m in modes.items() if name != "bin/start.sh"} == {0o644}
    assert {i.compress_type for i in infos} == {zipfile.ZIP_DEFLATED}
    assert {i.create_system for i in infos} == {3}


def test_a_changed_byte_changes_the_hash_and_the_label(tmp_path):
    source = make_app(tmp_path / "app", APP)
    before = hashlib.sha256(zip_of(source)).hexdigest()
    (source / "fastier_app" / "__init__.py").write_text(APP["fastier_app/__init__.py"].replace("None", "Nonf"))
    after = hashlib.sha256(zip_of(source)).hexdigest()
    assert before != after
    assert version_label("fastier", "1.4.2", before) != version_label("fastier", "1.4.2", after)
    # an excluded file does not change anything
    (source / ".env").write_text("SECRET=1\n")
    assert hashlib.sha256(zip_of(source)).hexdigest() == after


def test_mode_change_alone_changes_the_bundle(tmp_path):
    source = make_app(tmp_path / "app", APP)
    before = zip_of(source)
    (source / "wsgi.py").chmod(0o755)
    assert zip_of(source) != before


def test_stored_compression_is_also_deterministic_and_differs_from_deflated(tmp_path):
    source = make_app(tmp_path / "app", APP)
    stored = zip_of(source, compression="stored")
    assert stored == zip_of(source, compression="stored")
    assert stored != zip_of(source)
    with zipfile.ZipFile(io.BytesIO(stored)) as archive:
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}


# -- what goes in ------------------------------------------------------------------------------


def test_excluded_files_are_absent_and_source_files_present(tmp_path):
    source = make_app(tmp_path / "app", {**APP, **NOISE})
    packed = names(zip_of(source))
    assert packed == sorted(APP)
    for secret in (".env", ".env.production", "local.env"):
        assert secret not in packed
    _, excluded, _ = plan_entries(str(source))
    # a directory left out is listed once, not its content
    assert ".git/" in excluded and ".venv/" in excluded and "fastier_app/__pycache__/" in excluded
    assert ".venv/bin/python" not in excluded


def test_extra_exclude_globs_by_name_and_by_path(tmp_path):
    source = make_app(tmp_path / "app", {**APP, "docs/a.md": "a", "docs/sub/b.md": "b", "notes.log": "x", "fastier_app/x.log": "y"})
    packed = names(zip_of(source, exclude=["*.log", "docs/sub"]))
    assert "docs/a.md" in packed
    assert "docs/sub/b.md" not in packed
    assert "notes.log" not in packed and "fastier_app/x.log" not in packed
    assert is_excluded("a/b/c.txt", ["a/b"]) and not is_excluded("x/a/b/c.txt", ["a/b"])
    assert is_excluded("x/node_modules/y.js", DEFAULT_EXCLUDES)


def test_default_excludes_can_be_turned_off(tmp_path):
    source = make_app(tmp_path / "app", {**APP, "tests/test_x.py": "x"})
    assert "tests/test_x.py" in names(zip_of(source, default_excludes=False))


def test_generated_and_copied_files_are_present_and_win_over_the_source(tmp_path):
    source = make_app(tmp_path / "app", {**APP, "Procfile": "web: python app.py\n"})
    redirect = tmp_path / "https-redirect.config"
    redirect.write_text("Resources: {}\n")
    files = {"Procfile": "web: gunicorn --workers 2 wsgi:application\n", ".platform/hooks/predeploy/01.sh": "#!/bin/sh\ntrue\n", "tests/keep.txt": "x"}
    data = zip_of(source, files=files, copy={".ebextensions/https-redirect.config": str(redirect)})
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("Procfile") == files["Procfile"].encode()
        assert archive.read(".ebextensions/https-redirect.config") == b"Resources: {}\n"
        # generated files are never excluded, and a script is executable
        assert archive.read("tests/keep.txt") == b"x"
        assert (archive.getinfo(".platform/hooks/predeploy/01.sh").external_attr >> 16) & 0o777 == 0o755
    _, _, overridden = plan_entries(str(source), files=files)
    assert overridden == ["Procfile"]


@pytest.mark.parametrize("bad", ["../outside", "/etc/passwd", "a/../../b", "", ".", "a\\b"])
def test_generated_paths_that_escape_the_bundle_are_refused(tmp_path, bad):
    source = make_app(tmp_path / "app", APP)
    with pytest.raises(BundleError):
        plan_entries(str(source), files={bad: "x"})
    assert bundle_path("a/./b//c") == "a/b/c"


def test_missing_source_copy_file_and_symlink_out_of_the_source_are_clear_errors(tmp_path):
    with pytest.raises(BundleError, match="is not a directory"):
        plan_entries(str(tmp_path / "nowhere"))
    source = make_app(tmp_path / "app", APP)
    with pytest.raises(BundleError, match="is not a file on the controller"):
        plan_entries(str(source), copy={"x.config": str(tmp_path / "missing")})
    secret = tmp_path / "id_rsa"
    secret.write_text("key")
    (source / "key").symlink_to(secret)
    with pytest.raises(BundleError, match="outside source_dir"):
        plan_entries(str(source))
    (source / "key").unlink()
    (source / "alias.py").symlink_to(source / "wsgi.py")
    with zipfile.ZipFile(io.BytesIO(zip_of(source))) as archive:
        assert archive.read("alias.py") == APP["wsgi.py"].encode()


def test_the_bundle_being_written_inside_the_source_is_not_packed(tmp_path):
    source = make_app(tmp_path / "app", APP)
    dest = source / "build.zip"
    dest.write_bytes(b"old bundle")
    entries, _, _ = plan_entries(str(source), skip=[str(dest)])
    assert "build.zip" not in [e.path for e in entries]


def test_zip_listing_shows_path_mode_crc_and_size(tmp_path):
    source = make_app(tmp_path / "app", {"a.txt": "hello"})
    path = tmp_path / "b.zip"
    path.write_bytes(zip_of(source, default_excludes=False))
    assert zip_listing(str(path)) == ["a.txt 0644 crc32=3610a686 size=5"]
    assert zip_listing(str(tmp_path / "none.zip")) == []


# -- version labels ------------------------------------------------------------------------------


def test_version_label_is_prefix_version_and_twelve_hex_digits(tmp_path):
    sha = hashlib.sha256(b"x").hexdigest()
    assert version_label("fastier", "1.4.2", sha) == f"fastier-1.4.2-{sha[:12]}"
    assert version_label("", "1.4.2", sha) == f"1.4.2-{sha[:12]}"
    with pytest.raises(BundleError, match="version"):
        version_label("fastier", "1.4 beta", sha)
    with pytest.raises(BundleError, match="100"):
        version_label("p" * 90, "1.0.0", sha)
    source = make_app(tmp_path / "app", APP)
    assert read_version_file(str(source)) == "1.4.2"
    (source / "VERSION").write_text("  \n")
    with pytest.raises(BundleError, match="empty"):
        read_version_file(str(source))


# -- pinned requirements ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "pinned"),
    [
        ("flask==3.0.3", True),
        ("Flask[async] == 3.0.3", True),
        ("flask===3.0.3", True),
        ("flask==3.0.3 ; python_version >= '3.8'", True),
        ("flask==3.0.3 --hash=sha256:abcd", True),
        ("pkg @ https://example.com/pkg-1.0-py3-none-any.whl", True),
        ("pkg @ git+https://github.com/o/pkg@0123456789abcdef0123456789abcdef01234567", True),
        ("flask", False),
        ("flask>=3.0", False),
        ("flask~=3.0", False),
        ("flask==3.*", False),
        ("flask==3.0,<4", False),
        ("pkg @ git+https://github.com/o/pkg@main", False),
        ("https://example.com/pkg.tar.gz", False),
        ("./vendor/pkg", False),
    ],
)
def test_requirement_pin(line, pinned):
    assert (requirement_pin(line)[1] is None) is pinned


def test_unpinned_requirements_name_the_lines_and_handle_comments_includes_and_constraints(tmp_path):
    source = make_app(
        tmp_path / "app",
        {
            "requirements.txt": (
                "# the app\n"
                "--index-url https://pypi.org/simple\n"
                "\n"
                "flask==3.0.3  # web\n"
                "gunicorn==23.0.0 \\\n"
                "    --hash=sha256:aaaa\n"
                "requests>=2.31\n"
                "-r requirements-extra.txt\n"
                "-c constraints.txt\n"
                "psycopg\n"
                "-e git+https://github.com/o/lib.git#egg=lib\n"
            ),
            "requirements-extra.txt": "boto3\nbotocore==1.35.0\n",
            "constraints.txt": "psycopg==3.2.3\n",
        },
    )
    problems = unpinned_requirements(str(source), ["requirements.txt"])
    assert problems == [
        "requirements.txt:11: -e git+https://github.com/o/lib.git#egg=lib (an editable install is not reproducible)",
        "requirements.txt:7: requests>=2.31 (>=2.31 is a range, not one version)",
        "requirements-extra.txt:1: boto3 (no version)",
    ]
    assert unpinned_requirements(str(source), ["requirements-extra.txt"]) == ["requirements-extra.txt:1: boto3 (no version)"]
    assert unpinned_requirements(str(source), []) == []
    assert unpinned_requirements(str(source), ["missing.txt"]) == ["requirements: missing.txt does not exist"]


def test_a_fully_pinned_file_passes(tmp_path):
    source = make_app(tmp_path / "app", APP)
    assert unpinned_requirements(str(source), ["requirements.txt"]) == []


# -- the role's gunicorn sizing (its own Jinja, rendered by Ansible) --------------------------------


def _role_vars() -> dict:
    return {
        **yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()),
        **yaml.safe_load((ROLE / "vars" / "main.yml").read_text()),
    }


def _trusted(value):
    """Role files are templates Ansible trusts; mark the loaded strings the same way."""
    from ansible.template import trust_as_template

    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: _trusted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    return value


def workers(**overrides) -> tuple[int, dict]:
    """Render the role's own ``__app_bundle_workers`` with Ansible's templar (as a play would)."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    variables = _trusted(_role_vars())
    variables.update(platform_name="fastier", platform_env="unit", **overrides)
    templar = Templar(loader=DataLoader(), variables=variables)
    return int(templar.template(variables["__app_bundle_workers"])), templar.template(variables["__app_bundle_instance"])


@pytest.mark.parametrize(
    ("instance_type", "expected"),
    [
        ("t3.micro", 2),  # (1024 - 512) // 192
        ("t3.small", 5),  # min(2 * 2 + 1, 8)
        ("t3.medium", 5),  # the legacy server's size: CPU-bound, not memory-bound
        ("t4g.xlarge", 9),
        ("c5.xlarge", 9),
        ("m5.large", 5),
        ("m6i.2xlarge", 17),
    ],
)
def test_workers_are_sized_to_memory_and_vcpus(instance_type, expected):
    count, instance = workers(app_bundle_instance_type=instance_type)
    assert count == expected, instance


def test_workers_follow_the_memory_per_worker_and_explicit_sizes():
    assert workers(app_bundle_instance_type="t3.medium", app_bundle_worker_memory_mb=1024)[0] == 3  # (4096 - 512) // 1024
    count, instance = workers(app_bundle_instance_type="x9.custom", app_bundle_instance_memory_mib=3072, app_bundle_instance_vcpus=1)
    assert (count, instance) == (3, {"vcpus": 1, "memory_mib": 3072})
    count, _ = workers(app_bundle_instance_type="x9.custom", app_bundle_instance_types={"x9.custom": {"vcpus": 4, "memory_mib": 1536}})
    assert count == 5  # (1536 - 512) // 192
    assert workers(app_bundle_instance_type="t3.nano")[0] == 1  # never 0 (validation refuses it first)


def test_the_instance_table_covers_the_families_with_consistent_sizes():
    catalog = _role_vars()["__app_bundle_instance_catalog"]
    for family in ("t3", "t3a", "t4g"):
        assert [catalog[f"{family}.{size}"]["memory_mib"] for size in ("micro", "small", "medium", "large", "xlarge")] == [1024, 2048, 4096, 8192, 16384]
    for family, per_vcpu in (("m5", 4096), ("m6i", 4096), ("c5", 2048)):
        for size, vcpus in (("large", 2), ("xlarge", 4)):
            assert catalog[f"{family}.{size}"] == {"vcpus": vcpus, "memory_mib": vcpus * per_vcpu}


# -- the module, run in-process ---------------------------------------------------------------------


def _module():
    """plugins/modules/eb_source_bundle.py imported as the collection's (a symlink tree -> this work tree)."""
    import importlib
    import sys
    import tempfile

    tree = Path(tempfile.mkdtemp(prefix="fastier-unit-")) / "ansible_collections" / "fastier"
    tree.mkdir(parents=True)
    (tree / "platform").symlink_to(ROOT)
    sys.path.insert(0, str(tree.parent.parent))
    return importlib.import_module("ansible_collections.fastier.platform.plugins.modules.eb_source_bundle")


def run_module(capsys, args: dict, *, check: bool = False, diff: bool = False) -> dict:
    import json

    from ansible.module_utils.testing import patch_module_args

    module = _module()
    with patch_module_args({**args, "_ansible_check_mode": check, "_ansible_diff": diff}), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def test_module_writes_only_when_the_zip_differs_and_check_mode_writes_nothing(tmp_path, capsys):
    source = make_app(tmp_path / "app", {**APP, **NOISE})
    dest = tmp_path / "build" / "app.zip"
    args = {"source_dir": str(source), "dest": str(dest), "label_prefix": "fastier", "files": {"Procfile": "web: gunicorn wsgi:application\n"}}

    planned = run_module(capsys, args, check=True, diff=True)
    assert planned["changed"] is True
    assert not dest.parent.exists()  # nothing written, not even the directory
    assert planned["diff"]["before"] == "" and "Procfile 0644" in planned["diff"]["after"]

    made = run_module(capsys, args)
    assert made["changed"] is True
    assert (made["version_label"], made["sha256"], made["path"]) == (planned["version_label"], planned["sha256"], str(dest))
    assert made["version_label"] == f"fastier-1.4.2-{made['sha256'][:12]}"
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == made["sha256"]
    assert made["size"] == dest.stat().st_size and dest.stat().st_mode & 0o777 == 0o644
    assert made["files"] == len(APP) + 1 and made["generated"] == ["Procfile"]
    assert ".env" in made["excluded"] and ".git/" in made["excluded"]
    assert [p.name for p in dest.parent.iterdir()] == ["app.zip"]  # no temporary file left

    inode = dest.stat().st_ino
    os.utime(source / "wsgi.py", (1, 1))  # a touched file is the same source
    again = run_module(capsys, args, check=True)
    assert (again["changed"], again["version_label"]) == (False, made["version_label"])
    again = run_module(capsys, args)
    assert (again["changed"], again["version_label"]) == (False, made["version_label"])
    assert dest.stat().st_ino == inode  # not rewritten

    (source / "wsgi.py").write_text(APP["wsgi.py"] + "\n")
    changed = run_module(capsys, args, diff=True)
    assert changed["changed"] is True and changed["version_label"] != made["version_label"]
    assert "wsgi.py 0644" in changed["diff"]["before"] and "wsgi.py 0644" in changed["diff"]["after"]
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == changed["sha256"]


def test_module_refuses_bad_inputs_with_clear_messages(tmp_path, capsys):
    source = make_app(tmp_path / "app", {**APP, "requirements.txt": "flask>=3\n"})
    base = {"source_dir": str(source), "build": False}

    unpinned = run_module(capsys, base)
    assert unpinned["failed"] is True
    assert unpinned["unpinned_requirements"] == ["requirements.txt:1: flask>=3 (>=3 is a range, not one version)"]
    assert "not pinned to one version" in unpinned["msg"]

    inspected = run_module(capsys, {**base, "requirements": []})
    assert inspected["changed"] is False and inspected["version"] == "1.4.2" and "sha256" not in inspected

    missing = run_module(capsys, {**base, "source_dir": str(tmp_path / "nowhere")})
    assert "is not a directory" in missing["msg"]
    escape = run_module(capsys, {**base, "requirements": [], "files": {"../x": "y"}})
    assert "escapes the bundle" in escape["msg"]
    no_version = run_module(capsys, {**base, "requirements": [], "version_file": "NOPE"})
    assert "NOPE does not exist" in no_version["msg"]
    bad_version = run_module(capsys, {**base, "requirements": [], "version": "1.0 final"})
    assert "cannot go in a version label" in bad_version["msg"]
