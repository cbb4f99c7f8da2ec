"""The fake's DAG-file endpoints (issue 4's push): GET/PUT /dags/{fileName}/spec,
POST /dags, DELETE /dags/{fileName}, per version (tests/fakedagu/definitions.py)."""

from __future__ import annotations

import pytest
import requests

from tests.fakedagu import Dag, FakeDagu, Step, out

GOOD = "steps:\n  - name: a\n    command: echo pushed\n"
BAD = "steps: []\n"


def dag():
    return Dag(file="deploy", name="deploy-prod", steps=[Step("a", [out("old")])])


@pytest.mark.parametrize("version, missing, success_body", [("2.6.5", 404, b'{"errors":null}\n'), ("1.30.3", 500, b"")])
def test_spec_read_and_replace(version, missing, success_body):
    with FakeDagu(version=version) as srv:
        srv.add_dag(dag())
        spec = srv.api_url + "/dags/deploy/spec"
        before = requests.get(spec).json()
        assert before["spec"] == srv.dag_spec("deploy") and "deploy-prod" in before["spec"] and before["errors"] is None
        assert before["dag"]["name"] == "deploy-prod"
        gone = requests.get(srv.api_url + "/dags/nope/spec")
        assert (gone.status_code, gone.json()["code"]) == (missing, "not_found")  # 1.x: a 500 with not_found

        refused = requests.put(spec, json={"spec": BAD})
        assert refused.status_code == 200 and refused.json()["errors"] == ["at least one step must be specified"]
        assert srv.dag_spec("deploy") == before["spec"]  # nothing written
        assert requests.put(srv.api_url + "/dags/nope/spec", json={"spec": GOOD}).status_code == 500

        replaced = requests.put(spec, json={"spec": GOOD})
        assert (replaced.status_code, replaced.content) == (200, success_body)
        assert srv.dag_spec("deploy") == GOOD and requests.get(spec).json()["spec"] == GOOD
        # The new definition is what runs now, under its new name (no `name:`: the file's).
        assert requests.post(srv.api_url + "/dags/deploy/start", json={"dagRunId": "r1"}).status_code == 200
        srv.wait_for_status("deploy", "r1", {4})
        assert srv.find_run("deploy-prod", "r1") is None
        srv.add_dag(dag())  # a Dag added in Python again replaces the pushed text
        assert "deploy-prod" in srv.dag_spec("deploy")


def test_create_takes_the_spec_from_1_23_and_checks_names_from_2_0():
    with FakeDagu(version="1.22.10") as old:
        created = requests.post(old.api_url + "/dags", json={"name": "fresh", "spec": GOOD})
        assert (created.status_code, created.json()) == (201, {"name": "fresh"})
        assert old.dag_spec("fresh") == "steps:\n  - command: echo hello\n"  # the spec is ignored
        assert requests.post(old.api_url + "/dags", json={"name": "a/b"}).status_code == 201  # any name
    with FakeDagu(version="1.30.3") as mid:
        assert requests.post(mid.api_url + "/dags", json={"name": "fresh", "spec": GOOD}).status_code == 201
        assert mid.dag_spec("fresh") == GOOD
        again = requests.post(mid.api_url + "/dags", json={"name": "fresh", "spec": GOOD})
        assert (again.status_code, again.json()) == (409, {"code": "already_exists", "message": ""})
        bad = requests.post(mid.api_url + "/dags", json={"name": "other", "spec": BAD})
        assert bad.status_code == 400 and bad.json()["message"] == "at least one step must be specified"
        assert mid.dag_spec("other") is None
    with FakeDagu(version="2.0.0") as new:
        for name, message in (("a/b", "only contain"), ("x" * 41, "less than 40"), ("", "must not be empty")):
            refused = requests.post(new.api_url + "/dags", json={"name": name, "spec": GOOD})
            assert refused.status_code == 400 and message in refused.json()["message"], name
        assert new.dag_specs == {}


@pytest.mark.parametrize("version, message", [("2.6.5", "Insufficient permissions"), ("1.24.0", "Permission denied")])
def test_writes_refused_and_delete(version, message):
    with FakeDagu(version=version) as srv:
        srv.add_dag(dag())
        before = srv.dag_specs
        srv.dag_writes_allowed = False
        for method, path, body in (
            ("PUT", "/dags/deploy/spec", {"spec": GOOD}),
            ("POST", "/dags", {"name": "n", "spec": GOOD}),
            ("DELETE", "/dags/deploy", None),
        ):
            refused = requests.request(method, srv.api_url + path, json=body)
            assert (refused.status_code, refused.json()) == (403, {"code": "forbidden", "message": message}), method
        assert srv.dag_specs == before
        srv.dag_writes_allowed = True
        assert requests.delete(srv.api_url + "/dags/deploy").status_code == 204
        assert requests.delete(srv.api_url + "/dags/deploy").status_code == 404
        assert srv.dag_specs == {} and requests.get(srv.api_url + "/dags/deploy").status_code == 404
