#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the fastier.platform collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: eb_source_bundle
version_added: 0.1.0
short_description: Build a deterministic Elastic Beanstalk source bundle (zip) from an application's source
description:
  - Packs O(source_dir) plus generated files (O(files), O(copy)) into a zip at O(dest), leaving out what O(exclude)
    and the default exclusions name (version control, caches, virtualenvs, C(node_modules), tests, and local
    environment files such as C(.env), which hold secrets).
  - The zip is deterministic - entries sorted by path, every timestamp 1980-01-01 00:00, permissions normalised
    (0755 for executables, else 0644), one compression method and level - so the same source gives the same bytes
    and the same O(label_prefix)-version-hash label whatever the files' modification times, the umask or the order
    the file system lists them in; one changed byte gives a new label.
  - The result is C(changed) only when the zip at O(dest) differs from what is already there. The new zip is written
    to a temporary file beside O(dest) and renamed over it, so O(dest) is never half written.
  - Checks that every requirement of O(requirements) is pinned to one version with C(==) and fails naming the lines
    that are not, so the instances install exactly what was tested.
  - Runs where the source is (normally the controller, C(delegate_to=localhost)). It makes no AWS call; upload the
    zip with M(amazon.aws.s3_object) and register it with M(fastier.platform.eb_application_version).
author:
  - Fastier platform team (@fastier)
options:
  source_dir:
    description: Directory of the application's source (the root of the bundle).
    type: path
    required: true
  dest:
    description:
      - Path of the zip to write. Its directory is created when missing.
      - Required unless O(build=false). When it lies inside O(source_dir) it is never packed into itself.
    type: path
  files:
    description:
      - Generated files, C(path in the bundle -> text content) (UTF-8), for example C(Procfile) or
        C(.ebextensions/10-migrate.config). They win over a file of the source at the same path and are never excluded.
      - Content that starts with C(#!) is packed executable (0755), everything else 0644.
      - A path that is absolute, contains C(..) leading out of the bundle, or a backslash is an error.
    type: dict
    default: {}
  copy:
    description:
      - Files of the controller to put in the bundle, C(path in the bundle -> path on the controller). They win over a
        file of the source at the same path and are never excluded; the mode follows the controller file's execute bit.
    type: dict
    default: {}
  exclude:
    description:
      - Globs of paths to leave out, added to the default ones (see O(default_excludes)).
      - A pattern without C(/) matches any component of a path (C(*.log) anywhere, C(docs) as a directory anywhere), a
        pattern with C(/) matches the path from the root of O(source_dir) (C(docs/*.md)), and a directory it matches
        is left out with everything under it.
    type: list
    elements: str
    default: []
  default_excludes:
    description:
      - Also leave out C(.git), C(.hg), C(.svn), C(__pycache__), C(*.pyc), C(*.pyo), C(.venv), C(venv), C(env),
        C(node_modules), C(tests), C(*.egg-info), C(.pytest_cache), C(.mypy_cache), C(.ruff_cache), C(.tox),
        C(.coverage), C(.DS_Store), C(.env), C(.env.*), C(*.env) and C(.envrc).
      - Turning this off can pack local secrets; prefer adding to O(exclude) or putting files in with O(copy).
    type: bool
    default: true
  version:
    description:
      - Version of the application, the middle part of the label. Letters, digits, C(.), C(_), C(+) and C(-).
      - When omitted it is read from O(version_file).
    type: str
  version_file:
    description: File of O(source_dir) that holds the version when O(version) is omitted (surrounding whitespace is ignored).
    type: str
    default: VERSION
  label_prefix:
    description:
      - First part of the label, C(<label_prefix>-<version>-<first 12 hex digits of the sha256>). Empty leaves it out.
      - The label must fit Elastic Beanstalk's 100 characters.
    type: str
    default: ""
  requirements:
    description:
      - Requirement files of O(source_dir) in which every requirement must be pinned with C(==) (or C(===)) to one
        version. The task fails naming each line that is not (a range, no version, an editable install, a URL that
        can change).
      - Comments, blank lines, continuation lines, global options (C(--index-url) ...) and per-requirement options
        (C(--hash)) are handled; C(-r) files are checked too; a name pinned in a C(-c) constraints file counts as
        pinned.
      - An empty list checks nothing.
    type: list
    elements: str
    default: [requirements.txt]
  compression:
    description: V(deflated) (level 9) or V(stored) (no compression, byte-identical whatever the zlib version).
    type: str
    choices: [deflated, stored]
    default: deflated
  build:
    description:
      - V(false) only checks the inputs - O(source_dir), the version and label parts, the generated paths and
        O(requirements) - without building or writing anything (no hash, no label). For a role's validation step.
    type: bool
    default: true
notes:
  - Supports C(check_mode) (the zip is built in a temporary file to compute the hash and the label, O(dest) is not
    written) and C(diff_mode) (the entries of the zip at O(dest) before and after, with mode, CRC-32 and size).
  - V(deflated) output is the same for the same zlib; use V(stored) for bytes that cannot depend on the controller's zlib.
"""

EXAMPLES = r"""
- name: Build the bundle of the application
  fastier.platform.eb_source_bundle:
    source_dir: "{{ playbook_dir }}/examples/fastier-app"
    dest: "{{ playbook_dir }}/build/fastier-app.zip"
    label_prefix: fastier
    files:
      Procfile: "web: gunicorn --bind :8000 --workers 3 wsgi:application\n"
      .ebextensions/10-migrate.config: |
        container_commands:
          10_migrate:
            command: source /var/app/venv/*/bin/activate && python -m fastier_app migrate
            leader_only: true
    copy:
      .ebextensions/https-redirect.config: "{{ beanstalk_outputs.https_redirect_config }}"
    exclude:
      - "*.log"
      - docs
  delegate_to: localhost
  run_once: true
  register: bundle

- name: Upload it and register the version
  amazon.aws.s3_object:
    bucket: fastier-production-artifacts-123456789012
    object: "bundles/fastier-production/{{ bundle.version_label }}.zip"
    src: "{{ bundle.path }}"
    mode: put
    permission: []
    metadata:
      sha256: "{{ bundle.sha256 }}"

- name: Only check the inputs (pinned requirements, version) without building
  fastier.platform.eb_source_bundle:
    source_dir: "{{ playbook_dir }}/examples/fastier-app"
    requirements: [requirements.txt, requirements-prod.txt]
    build: false
  delegate_to: localhost
"""

RETURN = r"""
path:
  description: Absolute path of the zip (O(dest)); in check mode, where it would be written.
  returned: when O(build=true)
  type: str
  sample: /home/deploy/.cache/fastier.platform/bundles/fastier-production.zip
sha256:
  description: SHA-256 of the zip's bytes.
  returned: when O(build=true)
  type: str
  sample: "3f2a9c1d0b7e4a5f60718293a4b5c6d7e8f90112233445566778899aabbccdd"
size:
  description: Size of the zip in bytes.
  returned: when O(build=true)
  type: int
  sample: 48213
files:
  description: Number of files in the bundle (generated ones included).
  returned: always
  type: int
  sample: 42
version:
  description: The version (O(version), or the content of O(version_file)).
  returned: always
  type: str
  sample: 1.4.2
version_label:
  description: C(<label_prefix>-<version>-<first 12 hex digits of sha256>), the Elastic Beanstalk version label.
  returned: when O(build=true)
  type: str
  sample: fastier-1.4.2-3f2a9c1d0b7e
generated:
  description: Paths in the bundle that came from O(files) or O(copy).
  returned: always
  type: list
  elements: str
  sample: [".ebextensions/10-migrate.config", "Procfile"]
overridden:
  description: Files of the source replaced by a generated file at the same path.
  returned: always
  type: list
  elements: str
  sample: ["Procfile"]
excluded:
  description: Paths left out (a directory left out is listed once, with a trailing C(/), not its content).
  returned: always
  type: list
  elements: str
  sample: [".env", ".git/", "fastier_app/__pycache__/", "tests/"]
unpinned_requirements:
  description: The requirement lines not pinned with C(==), as C(<file>:<line> <text> (<why>)); the task fails when there is one.
  returned: on failure because of them
  type: list
  elements: str
  sample: ["requirements.txt:3: flask>=3.0 (>=3.0 is a range, not one version)"]
"""

import os
import tempfile

from ansible_collections.fastier.platform.plugins.module_utils.common import FastierModule
from ansible_collections.fastier.platform.plugins.module_utils.source_bundle import BundleError
from ansible_collections.fastier.platform.plugins.module_utils.source_bundle import plan_entries
from ansible_collections.fastier.platform.plugins.module_utils.source_bundle import read_version_file
from ansible_collections.fastier.platform.plugins.module_utils.source_bundle import sha256_of
from ansible_collections.fastier.platform.plugins.module_utils.source_bundle import unpinned_requirements
from ansible_collections.fastier.platform.plugins.module_utils.source_bundle import version_label
from ansible_collections.fastier.platform.plugins.module_utils.source_bundle import write_zip
from ansible_collections.fastier.platform.plugins.module_utils.source_bundle import zip_listing


def listing_text(lines):
    return "".join(line + "\n" for line in lines)


def inspect(module):
    """Everything that can fail before writing: the plan of entries, the version, the requirements."""
    params = module.params
    source_dir = params["source_dir"]
    if not os.path.isdir(source_dir):
        module.fail_json(msg="source_dir {0} is not a directory (or does not exist); point it at the application's source".format(source_dir))
    skip = [params["dest"]] if params["dest"] else []
    try:
        version = params["version"] if params["version"] else read_version_file(source_dir, params["version_file"])
        version_label(params["label_prefix"], version, "0" * 64)  # the parts are valid before hashing anything
        entries, excluded, overridden = plan_entries(
            source_dir, params["files"], params["copy"], exclude=params["exclude"], default_excludes=params["default_excludes"], skip=skip
        )
    except BundleError as e:
        module.fail_json(msg="Cannot build the bundle of {0}: {1}".format(source_dir, e))
    except (IOError, OSError) as e:
        module.fail_json(msg="Cannot read the source {0}: {1}".format(source_dir, e))
    if not entries:
        module.fail_json(msg="Nothing to pack: {0} holds no file that is not excluded".format(source_dir), excluded=excluded)
    unpinned = unpinned_requirements(source_dir, params["requirements"])
    if unpinned:
        module.fail_json(
            msg="Requirements of {0} not pinned to one version with '==': {1}. Pin each one (pip freeze shows what is installed) "
            "so the instances install exactly what was tested.".format(source_dir, "; ".join(unpinned)),
            unpinned_requirements=unpinned,
        )
    summary = {
        "version": version,
        "files": len(entries),
        "excluded": excluded,
        "overridden": overridden,
        "generated": sorted(e.path for e in entries if e.origin != "source"),
    }
    return entries, summary


def write_temporary(module, entries, directory):
    """Write the zip to a new temporary file (in ``directory``, or the system's when None); returns its path."""
    handle = tempfile.NamedTemporaryFile(prefix=".eb-source-bundle-", suffix=".zip.tmp", dir=directory, delete=False)  # noqa: SIM115 - kept
    try:
        with handle:
            write_zip(entries, handle, module.params["compression"])
            handle.flush()
            os.fsync(handle.fileno())
    except (IOError, OSError) as e:
        os.unlink(handle.name)
        module.fail_json(msg="Cannot write the bundle: {0}".format(e))
    except Exception:
        os.unlink(handle.name)
        raise
    return handle.name


def main():
    module = FastierModule(
        argument_spec=dict(
            source_dir=dict(type="path", required=True),
            dest=dict(type="path"),
            files=dict(type="dict", default={}),
            copy=dict(type="dict", default={}),
            exclude=dict(type="list", elements="str", default=[]),
            default_excludes=dict(type="bool", default=True),
            version=dict(type="str"),
            version_file=dict(type="str", default="VERSION"),
            label_prefix=dict(type="str", default=""),
            requirements=dict(type="list", elements="str", default=["requirements.txt"]),
            compression=dict(type="str", default="deflated", choices=["deflated", "stored"]),
            build=dict(type="bool", default=True),
        ),
        required_if=[["build", True, ["dest"]]],
        supports_check_mode=True,
    )
    params = module.params
    entries, summary = inspect(module)
    if not params["build"]:
        module.exit_json(changed=False, **summary)

    dest = os.path.abspath(params["dest"])
    if os.path.isdir(dest):
        module.fail_json(msg="dest {0} is a directory; give the path of the zip file to write".format(dest))
    directory = os.path.dirname(dest)
    if not module.check_mode:
        try:
            if not os.path.isdir(directory):
                os.makedirs(directory)
        except (IOError, OSError) as e:
            module.fail_json(msg="Cannot create the directory of dest {0}: {1}".format(directory, e))
    # Check mode builds in the system's temporary directory and deletes it: nothing is left beside dest.
    temporary = write_temporary(module, entries, None if module.check_mode else directory)
    try:
        digest = sha256_of(temporary)
        size = os.path.getsize(temporary)
        before_sha = sha256_of(dest) if os.path.isfile(dest) else None
        changed = before_sha != digest
        diff_before = listing_text(zip_listing(dest)) if module._diff and changed else ""
        diff_after = listing_text(zip_listing(temporary)) if module._diff and changed else ""
        if changed and not module.check_mode:
            os.chmod(temporary, 0o644)
            os.replace(temporary, dest)
            module.progress("wrote {0} ({1} files, {2} bytes, sha256 {3})".format(dest, summary["files"], size, digest))
    except (IOError, OSError) as e:
        module.fail_json(msg="Cannot write the bundle to {0}: {1}".format(dest, e))
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)

    result = dict(
        summary,
        path=dest,
        sha256=digest,
        size=size,
        version_label=version_label(params["label_prefix"], summary["version"], digest),
    )
    if module._diff:
        result["diff"] = {
            "before_header": "{0} (sha256 {1})".format(dest, before_sha or "none"),
            "after_header": "{0} (sha256 {1})".format(dest, digest),
            "before": diff_before,
            "after": diff_after,
        }
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
