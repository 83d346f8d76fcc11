"""playbooks/awx_configure.yml against a stand-in controller: check mode on an empty one, a real run, and check mode again.

No AWX runs here (it needs Kubernetes or containers). ``FakeController`` answers the part of the
AWX API v2 that the awx.awx modules call - list with filters, create, update, delete, surveys,
associations, project and inventory updates - and checks what AWX checks on the way in: names
unique per organization, references that exist, a job template's playbook and an inventory
source's path present in the project (this repository), survey specs AWX would accept, secrets
write-only (``$encrypted$`` on read). It proves what the playbook sends and that a second run
sends nothing; it does not prove AWX's own behaviour beyond those checks.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml

from tests.playbooks import ROOT, VENV_BIN, run_playbook

PLAYBOOK = ROOT / "playbooks/awx_configure.yml"
DEFINITIONS = yaml.safe_load((ROOT / "playbooks/vars/awx.yml").read_text())
# One template of each kind keeps the runs short (each template is one module run per environment):
# check mode with a tags prompt, a text survey, job tags, a multiple-choice survey and a schedule, the
# workflow's three steps (extra vars, no survey). tests/unit/test_awx_templates.py checks every template.
KINDS_OF_TEMPLATE = ["site preview", "deploy", "migrate cutover", "dr_drill", "deploy stage", "deploy smoke", "deploy swap"]
SOME_TEMPLATES = [t for t in DEFINITIONS["awx_job_templates"] if t["name"] in KINDS_OF_TEMPLATE]
TOKEN = "fake-controller-token"
AWS_SECRET = "aws-secret-for-the-fake-controller-only"
API = "/api/v2/"

# collection -> (object type, fields that make a name unique, foreign keys -> collection)
KINDS: dict[str, tuple[str, tuple[str, ...], dict[str, str]]] = {
    "organizations": ("organization", (), {}),
    "credential_types": ("credential_type", (), {}),
    "execution_environments": ("execution_environment", ("organization",), {"organization": "organizations", "credential": "credentials"}),
    "projects": (
        "project",
        ("organization",),
        {"organization": "organizations", "credential": "credentials", "default_environment": "execution_environments"},
    ),
    "credentials": ("credential", ("organization", "credential_type"), {"organization": "organizations", "credential_type": "credential_types"}),
    "inventories": ("inventory", ("organization",), {"organization": "organizations"}),
    "inventory_sources": (
        "inventory_source",
        ("inventory",),
        {"inventory": "inventories", "source_project": "projects", "execution_environment": "execution_environments"},
    ),
    "job_templates": (
        "job_template",
        ("organization",),
        {"organization": "organizations", "project": "projects", "inventory": "inventories", "execution_environment": "execution_environments"},
    ),
    "workflow_job_templates": ("workflow_job_template", ("organization",), {"organization": "organizations", "inventory": "inventories"}),
    "workflow_job_template_nodes": (
        "workflow_job_template_node",
        ("workflow_job_template",),
        {"workflow_job_template": "workflow_job_templates", "unified_job_template": "unified_job_templates"},
    ),
    "schedules": ("schedule", ("unified_job_template",), {"unified_job_template": "unified_job_templates"}),
    "project_updates": ("project_update", (), {}),
    "inventory_updates": ("inventory_update", (), {}),
}
UNIFIED = ("job_templates", "workflow_job_templates", "projects", "inventory_sources")
ASSOCIATIONS = {"credentials": "credentials", "success_nodes": "workflow_job_template_nodes", "failure_nodes": "workflow_job_template_nodes"}
ASSOCIATIONS |= {"always_nodes": "workflow_job_template_nodes", "labels": "labels", "instance_groups": "instance_groups"}
SECRET_INPUTS = ("password", "security_token")
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}


class Rejected(Exception):
    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(body)
        self.status, self.body = status, body


class FakeController:
    """An in-memory AWX API v2 (the subset awx.awx's modules use), with AWX's input checks."""

    def __init__(self, project_root: Path):
        self.root = project_root
        self.store: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in KINDS}
        self.links: dict[tuple[str, int, str], list[int]] = {}
        self.surveys: dict[tuple[str, int], dict[str, Any]] = {}
        self.ids = itertools.count(1)
        self.writes: list[tuple[str, str, Any]] = []
        self.received: list[bytes] = []
        self.lock = threading.Lock()
        self._create("credential_types", {"name": "Amazon Web Services", "kind": "cloud", "managed": True})
        self._create("organizations", {"name": "Default"})

    # --- objects -------------------------------------------------------------------
    def _url(self, collection: str, oid: int) -> str:
        return f"{API}{collection}/{oid}/"

    def _find(self, collection: str, oid: int) -> tuple[str, dict[str, Any]]:
        if collection == "unified_job_templates":
            for name in UNIFIED:
                if oid in self.store[name]:
                    return name, self.store[name][oid]
        elif oid in self.store.get(collection, {}):
            return collection, self.store[collection][oid]
        raise Rejected(404, {"detail": "Not found."})

    def _check(self, collection: str, data: dict[str, Any], oid: int | None = None) -> None:
        kind, unique, refs = KINDS[collection]
        for field, target in refs.items():
            if data.get(field) is not None:
                self._find(target, int(data[field]))
        if "name" in data and kind not in ("project_update", "inventory_update"):
            if not str(data["name"]).strip():
                raise Rejected(400, {"name": ["This field may not be blank."]})
            for other_id, other in self.store[collection].items():
                if other_id != oid and other.get("name") == data["name"] and all(other.get(f) == data.get(f) for f in unique):
                    raise Rejected(400, {"__all__": [f"{kind} with this name already exists."]})
        if collection == "job_templates" and "playbook" in data:
            if data.get("job_type", "run") not in ("run", "check"):
                raise Rejected(400, {"job_type": [f'"{data["job_type"]}" is not a valid choice.']})
            if not (self.root / data["playbook"]).is_file():
                raise Rejected(400, {"playbook": ["Playbook not found for project."]})
        scm_source = collection == "inventory_sources" and data.get("source") == "scm"
        if scm_source and (not data.get("source_project") or not (self.root / data.get("source_path", "")).is_file()):
            raise Rejected(400, {"source_path": [f"Cannot find {data.get('source_path')} in the project."]})
        if collection == "schedules" and not ("DTSTART" in data.get("rrule", "") and "RRULE:" in data.get("rrule", "")):
            raise Rejected(400, {"rrule": ["DTSTART and RRULE are required."]})

    def _create(self, collection: str, data: dict[str, Any]) -> dict[str, Any]:
        self._check(collection, data)
        oid = next(self.ids)
        kind = KINDS[collection][0]
        obj = {**data, "id": oid, "type": kind, "url": self._url(collection, oid), "summary_fields": {}}
        obj["related"] = {name: f"{obj['url']}{name}/" for name in (*ASSOCIATIONS, "survey_spec", "update", "schedules")}
        if collection == "projects":
            obj |= {"scm_revision": "", "status": "successful"}
            self._project_update(obj)
        self.store[collection][oid] = obj
        return obj

    def _project_update(self, project: dict[str, Any]) -> None:
        update = self._create("project_updates", {"name": project["name"], "status": "successful", "failed": False, "finished": "now"})
        project["summary_fields"]["current_update"] = {"id": update["id"], "status": "successful"}
        project["scm_revision"] = "0" * 40

    def _inventory_update(self, source: dict[str, Any]) -> dict[str, Any]:
        # What AWX runs to import an inventory from a project: ansible-inventory --list --export on the file.
        proc = subprocess.run(
            [str(VENV_BIN / "ansible-inventory"), "-i", str(self.root / source["source_path"]), "--list", "--export"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        failed = proc.returncode != 0 or "legacy" not in json.loads(proc.stdout or "{}")
        return self._create("inventory_updates", {"name": source["name"], "status": "failed" if failed else "successful", "failed": failed, "finished": "now"})

    def _view(self, obj: dict[str, Any]) -> dict[str, Any]:
        out = json.loads(json.dumps(obj))
        if isinstance(out.get("inputs"), dict):
            out["inputs"] = {k: ("$encrypted$" if k in SECRET_INPUTS and v else v) for k, v in out["inputs"].items()}
        return out

    # --- HTTP ----------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        with self.lock:
            if method != "GET":
                self.writes.append((method, path, body))
            parts = [p for p in path[len(API) :].split("/") if p]
            if parts in (["ping"], ["me"]):
                return 200, {"version": "24.6.1"}
            collection = parts[0]
            if collection not in KINDS and collection != "unified_job_templates":
                return 404, {"detail": "Not found."}
            if len(parts) == 1:
                if method == "GET":
                    return 200, self._list(collection, query)
                if method == "POST":
                    return 201, self._view(self._create(collection, body))
            oid = int(parts[1])
            collection, obj = self._find(collection, oid)
            if len(parts) == 2:
                return self._item(collection, obj, method, body)
            return self._sub(collection, obj, parts[2], method, body)

    def _list(self, collection: str, query: dict[str, str]) -> dict[str, Any]:
        names = UNIFIED if collection == "unified_job_templates" else (collection,)
        found = []
        for name in names:
            for obj in self.store[name].values():
                wanted = {k: v for k, v in query.items() if k not in ("page_size", "page")}
                either = {k[4:]: v for k, v in wanted.items() if k.startswith("or__")}
                exact = {k: v for k, v in wanted.items() if not k.startswith("or__")}
                if all(str(obj.get(k)) == v for k, v in exact.items()) and (not either or any(str(obj.get(k)) == v for k, v in either.items())):
                    found.append(self._view(obj))
        return {"count": len(found), "next": None, "previous": None, "results": found}

    def _item(self, collection: str, obj: dict[str, Any], method: str, body: Any) -> tuple[int, Any]:
        if method == "GET":
            return 200, self._view(obj)
        if method == "PATCH":
            data = dict(body)
            if isinstance(data.get("inputs"), dict):  # "$encrypted$" keeps the stored secret, as AWX does
                data["inputs"] = {k: obj.get("inputs", {}).get(k) if v == "$encrypted$" else v for k, v in data["inputs"].items()}
            self._check(collection, {**obj, **data}, obj["id"])
            obj.update(data)
            if collection == "projects" and {"scm_url", "scm_branch"} & set(data):
                self._project_update(obj)
            return 200, self._view(obj)
        if method == "DELETE":
            del self.store[collection][obj["id"]]
            return 204, None
        return 405, {"detail": "Method not allowed."}

    def _sub(self, collection: str, obj: dict[str, Any], sub: str, method: str, body: Any) -> tuple[int, Any]:
        key = (collection, obj["id"])
        if sub == "survey_spec":
            if method == "GET":
                return 200, self.surveys.get(key, {})
            if method == "DELETE":
                self.surveys.pop(key, None)
                return 200, {}
            self._check_survey(body)
            self.surveys[key] = body
            return 200, {}
        if sub == "update" and method == "POST":
            if collection == "inventory_sources":
                update = self._inventory_update(obj)
                return 202, {"id": update["id"], "status": update["status"], "url": update["url"]}
            self._project_update(obj)
            update_id = obj["summary_fields"]["current_update"]["id"]
            return 202, {"id": update_id, "url": self._url("project_updates", update_id)}
        if sub in ASSOCIATIONS:
            linked = self.links.setdefault((collection, obj["id"], sub), [])
            if method == "GET":
                results = [self._view(self._find(ASSOCIATIONS[sub], i)[1]) for i in linked]
                return 200, {"count": len(results), "next": None, "previous": None, "results": results}
            self._find(ASSOCIATIONS[sub], int(body["id"]))
            if body.get("disassociate"):
                linked.remove(int(body["id"]))
            elif int(body["id"]) not in linked:
                linked.append(int(body["id"]))
            return 204, None
        return 404, {"detail": "Not found."}

    @staticmethod
    def _check_survey(spec: dict[str, Any]) -> None:
        # awx/api/views/__init__.py SurveySpecView._validate_spec_data, the parts a definition can get wrong
        if not isinstance(spec.get("name"), str) or not isinstance(spec.get("description"), str) or not isinstance(spec.get("spec"), list):
            raise Rejected(400, {"error": "'name', 'description' and 'spec' are required."})
        seen = set()
        for index, question in enumerate(spec["spec"]):
            for field in ("question_name", "variable", "type", "required"):
                if field not in question:
                    raise Rejected(400, {"error": f"'{field}' missing from survey question {index}."})
            if question["type"] not in SURVEY_TYPES or question["variable"] in seen:
                raise Rejected(400, {"error": f"survey question {index}: bad type or duplicate variable."})
            seen.add(question["variable"])
            if question["type"] in ("multiplechoice", "multiselect"):
                choices = question.get("choices")
                if not choices or ("default" in question and question["default"] not in choices):
                    raise Rejected(400, {"error": f"survey question {index}: choices, and a default among them, are required."})


class _Handler(BaseHTTPRequestHandler):
    controller: FakeController

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self.controller.received.append(raw)
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            status, body = 401, {"detail": "Authentication credentials were not provided."}
        else:
            try:
                status, body = self.controller.handle(self.command, split.path, dict(parse_qsl(split.query)), json.loads(raw) if raw else None)
            except Rejected as err:
                status, body = err.status, err.body
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-API-Product-Name", "AWX")
        self.send_header("X-API-Product-Version", "24.6.1")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_DELETE = _serve


@pytest.fixture(scope="module")
def controller() -> Iterator[tuple[FakeController, str]]:
    fake = FakeController(ROOT)
    handler = type("Handler", (_Handler,), {"controller": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _vars(url: str, **more: Any) -> dict[str, Any]:
    return {
        "controller_host": url,
        "controller_oauthtoken": TOKEN,
        "awx_project_scm_url": "https://git.example.com/fastier/fastier.platform.git",
        "awx_execution_environment_image": "registry.example.com/fastier/fastier-platform-ee:0.1.0",
        "awx_environments": ["staging"],
        "awx_aws_credentials": {"staging": {"access_key": "AKIAFAKECONTROLLER", "secret_key": AWS_SECRET}},
        "awx_job_templates": SOME_TEMPLATES,
        **more,
    }


def _env() -> dict[str, str]:
    """This process's environment without a controller of its own (CONTROLLER_HOST, TOWER_*...)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("CONTROLLER_", "TOWER_"))}


def _names(fake: FakeController, collection: str) -> list[str]:
    return sorted(obj.get("name") or obj.get("identifier") for obj in fake.store[collection].values())


@pytest.fixture(scope="module")
def runs(controller) -> dict[str, Any]:
    fake, url = controller
    env = _env()
    out: dict[str, Any] = {"fake": fake}
    out["check_empty"] = run_playbook(env, PLAYBOOK, _vars(url), check=True, timeout=600)
    out["writes_after_check"] = list(fake.writes)
    out["first"] = run_playbook(env, PLAYBOOK, _vars(url), timeout=600)
    out["writes_after_first"] = len(fake.writes)
    out["second_check"] = run_playbook(env, PLAYBOOK, _vars(url), check=True, timeout=600)
    out["writes_after_second_check"] = len(fake.writes)
    return out


def test_check_mode_on_an_empty_controller_plans_and_writes_nothing(runs):
    run = runs["check_empty"]
    assert run.rc == 0, run.explain()
    assert runs["writes_after_check"] == []
    assert run.task("Organization")["changed"] is True
    # Everything under the missing organization is listed as planned, not checked against the controller.
    summary = "\n".join(run.task("Say what is configured")["msg"])
    assert "Check mode: the controller lacks" in summary and "organization" in summary and "job template staging deploy" in summary


def test_a_real_run_makes_every_object_the_definitions_name(runs):
    run, fake = runs["first"], runs["fake"]
    assert run.rc == 0, run.explain()
    assert _names(fake, "organizations") == ["Default", "Fastier"]
    assert _names(fake, "inventories") == ["fastier-staging"]
    assert _names(fake, "inventory_sources") == ["fastier-staging from the project"]
    assert [s["source_path"] for s in fake.store["inventory_sources"].values()] == ["inventories/staging/hosts.yml"]
    assert [u["status"] for u in fake.store["inventory_updates"].values()] == ["successful"]  # the inventory imports
    assert _names(fake, "job_templates") == sorted(f"fastier-staging {name}" for name in KINDS_OF_TEMPLATE)
    assert _names(fake, "workflow_job_templates") == ["fastier-staging deploy workflow"]
    assert _names(fake, "schedules") == ["fastier-staging weekly DR drill"]

    templates = {jt["name"]: jt for jt in fake.store["job_templates"].values()}
    cred = next(iter(fake.store["credentials"].values()))
    assert cred["inputs"] == {"username": "AKIAFAKECONTROLLER", "password": AWS_SECRET}
    for jt in templates.values():
        assert fake.links[("job_templates", jt["id"], "credentials")] == [cred["id"]], jt["name"]
    assert templates["fastier-staging migrate cutover"]["job_tags"] == "cutover"
    assert templates["fastier-staging site preview"]["job_type"] == "check"
    deploy_survey = fake.surveys[("job_templates", templates["fastier-staging deploy"]["id"])]
    assert [q["variable"] for q in deploy_survey["spec"]] == ["deploy_version_label"]
    assert fake.surveys.get(("job_templates", templates["fastier-staging deploy swap"]["id"]), {}) == {}
    assert templates["fastier-staging deploy swap"]["extra_vars"] == json.dumps({"deploy_promote": True})

    # The workflow: stage -> smoke -> swap, each node the environment's job template.
    nodes = {n["identifier"]: n for n in fake.store["workflow_job_template_nodes"].values()}
    assert {i: fake._find("unified_job_templates", n["unified_job_template"])[1]["name"] for i, n in nodes.items()} == {
        "stage": "fastier-staging deploy stage",
        "smoke": "fastier-staging deploy smoke",
        "swap": "fastier-staging deploy swap",
    }
    assert fake.links[("workflow_job_template_nodes", nodes["stage"]["id"], "success_nodes")] == [nodes["smoke"]["id"]]
    assert fake.links[("workflow_job_template_nodes", nodes["smoke"]["id"], "success_nodes")] == [nodes["swap"]["id"]]
    assert fake.links.get(("workflow_job_template_nodes", nodes["swap"]["id"], "success_nodes"), []) == []


def test_secrets_reach_the_controller_but_never_the_output(runs):
    sent = b"".join(runs["fake"].received)
    assert AWS_SECRET.encode() in sent
    for name in ("check_empty", "first", "second_check"):
        run = runs[name]
        assert AWS_SECRET not in run.stdout + run.stderr, name
        assert TOKEN not in run.stdout + run.stderr, name


def test_a_second_run_changes_nothing(runs):
    run = runs["second_check"]
    assert run.rc == 0, run.explain()
    assert run.changed == 0, run.changed_tasks()
    assert runs["writes_after_second_check"] == runs["writes_after_first"]
    assert "Nothing missing." in run.task("Say what is configured")["msg"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"controller_host": "awx.example.com"}, "controller_host (or the CONTROLLER_HOST environment variable) must be the controller's URL"),
        ({"awx_environments": ["qa"]}, "Environment 'qa': inventories/qa/hosts.yml is not in this repository"),
        ({"awx_environments": ["staging", "production"]}, "awx_aws_credentials.production needs access_key and secret_key"),
        ({"awx_job_templates": [{"name": "site", "playbook": "playbooks/nope.yml"}]}, "Job template 'site'"),
    ],
)
def test_bad_inputs_are_refused_before_any_controller_call(controller, override, message):
    fake, url = controller
    before = len(fake.received)
    run = run_playbook(_env(), PLAYBOOK, _vars(url, **override), timeout=300)
    assert run.rc != 0
    failed = [t for t in run.tasks() if t.get("failed")]
    assert len(failed) == 1 and failed[0]["name"].startswith("Validate | "), run.explain()
    said = " ".join(str(r.get("msg", "")) for r in failed[0].get("results", [failed[0]]))
    assert message in said, said
    assert AWS_SECRET not in run.stdout
    assert len(fake.received) == before
