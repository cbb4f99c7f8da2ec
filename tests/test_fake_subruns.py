"""The fake's sub-DAG runs (issue 13): call, parallel items, nesting, repeats, the
404-before-record window, both API shapes, the list endpoint, stop of the tree."""

from __future__ import annotations

import requests

from tests.conftest import WAIT_LIMIT, eventually
from tests.fakedagu import Dag, Step, call, fail, hold, out, parallel

LEAF = Dag(file="leaf", params={"REGION": ""}, steps=[Step("migrate", [out("migrating {REGION}")])])
MID = Dag(
    file="mid", steps=[Step("prep", [out("prep")]), Step("deeper", [call("leaf", "REGION=inner")], depends=["prep"])]
)
ROOT = Dag(
    file="root",
    steps=[
        Step("deploy", [parallel("leaf", ["eu", "us"], params="REGION={ITEM}")]),
        Step("nest", [call("mid")]),
    ],
)


def _get(srv, path, **params):
    return requests.get(srv.api_url + path, params=params, timeout=WAIT_LIMIT)


def _start(srv, dag="root", run_id="r1"):
    answer = requests.post(f"{srv.api_url}/dags/{dag}/start", json={"dagRunId": run_id}, timeout=WAIT_LIMIT)
    assert answer.status_code == 200, answer.text
    return srv.wait_for_status(dag, run_id, {4, 2, 3})


def _node(details, step):
    return next(n for n in details["nodes"] if n["step"]["name"] == step)


def test_children_are_listed_and_addressed_by_the_root(fake_factory):
    srv = fake_factory(LEAF, MID, ROOT, version="1.30.3")
    _start(srv)
    root = _get(srv, "/dag-runs/root/r1").json()["dagRunDetails"]
    deploy = _node(root, "deploy")["subRuns"]
    assert sorted(s["params"] for s in deploy) == ["REGION=eu", "REGION=us"]
    assert "dagName" not in deploy[0]  # 1.x: dagRunId and params only
    listed = _get(srv, "/dag-runs/root/r1/sub-dag-runs").json()["subRuns"]
    assert len(listed) == 3 and {s["status"] for s in listed} == {4}
    child_id = deploy[0]["dagRunId"]
    child = _get(srv, f"/dag-runs/root/r1/sub-dag-runs/{child_id}").json()["dagRunDetails"]
    assert child["name"] == "leaf" and child["rootDAGRunId"] == "r1" and child["parentDAGRunId"] == "r1"
    log = _get(srv, f"/dag-runs/root/r1/sub-dag-runs/{child_id}/steps/migrate/log", stream="stdout").json()
    assert log["content"] in ("migrating eu", "migrating us")
    # Two levels: the grandchild is found from the root, and listed under its parent (1.26.7+).
    mid_id = _node(root, "nest")["subRuns"][0]["dagRunId"]
    mid = _get(srv, f"/dag-runs/root/r1/sub-dag-runs/{mid_id}").json()["dagRunDetails"]
    grand_id = _node(mid, "deeper")["subRuns"][0]["dagRunId"]
    grand = _get(srv, f"/dag-runs/root/r1/sub-dag-runs/{grand_id}").json()["dagRunDetails"]
    assert grand["rootDAGRunId"] == "r1" and grand["parentDAGRunId"] == mid_id
    nested = _get(srv, "/dag-runs/root/r1/sub-dag-runs", parentSubDAGRunId=mid_id).json()["subRuns"]
    assert [s["dagRunId"] for s in nested] == [grand_id]
    # Not under its own name: children live under the root.
    assert _get(srv, f"/dag-runs/leaf/{child_id}").status_code == 404


def test_parent_query_is_ignored_before_1_26_7(fake_factory):
    srv = fake_factory(LEAF, MID, ROOT, version="1.26.6")
    _start(srv)
    listed = _get(srv, "/dag-runs/root/r1/sub-dag-runs", parentSubDAGRunId="whatever").json()["subRuns"]
    assert len(listed) == 3  # the root's children, as if no query


def test_children_shape_before_1_24(fake_factory):
    srv = fake_factory(LEAF, MID, ROOT, version="1.23.0")
    _start(srv)
    root = _get(srv, "/dag-runs/root/r1").json()["dagRunDetails"]
    node = _node(root, "deploy")
    assert "subRuns" not in node and len(node["children"]) == 2 and node["childrenRepeated"] == []
    child_id = node["children"][0]["dagRunId"]
    assert _get(srv, f"/dag-runs/root/r1/children/{child_id}").json()["dagRunDetails"]["name"] == "leaf"
    assert _get(srv, f"/dag-runs/root/r1/children/{child_id}/steps/migrate/log", stream="stdout").status_code == 200
    assert _get(srv, f"/dag-runs/root/r1/sub-dag-runs/{child_id}").headers["Content-Type"].startswith("text/html")


def test_2x_shape_has_dag_names(fake_factory):
    srv = fake_factory(LEAF, MID, ROOT, version="2.6.5")
    _start(srv)
    root = _get(srv, "/dag-runs/root/r1").json()["dagRunDetails"]
    assert {s["dagName"] for s in _node(root, "deploy")["subRuns"]} == {"leaf"}
    assert {s["dagName"] for s in _get(srv, "/dag-runs/root/r1/sub-dag-runs").json()["subRuns"]} == {"leaf", "mid"}


def test_a_child_is_listed_before_its_record_exists(fake_factory):
    srv = fake_factory(LEAF, Dag(file="one", steps=[Step("go", [call("leaf", "REGION=x")])]), version="1.30.3")
    srv.engine.sub_record_gate = "records"
    requests.post(f"{srv.api_url}/dags/one/start", json={"dagRunId": "r2"}, timeout=WAIT_LIMIT)
    srv.wait_held("records")
    node = _node(_get(srv, "/dag-runs/one/r2").json()["dagRunDetails"], "go")
    sub_id = node["subRuns"][0]["dagRunId"]
    missing = _get(srv, f"/dag-runs/one/r2/sub-dag-runs/{sub_id}")
    assert missing.status_code == 404 and missing.json() == {
        "code": "not_found",
        "message": f"sub dag-run ID {sub_id} not found for DAG one",
    }
    assert _get(srv, "/dag-runs/one/r2/sub-dag-runs").json() == {"subRuns": []}
    srv.release("records")
    srv.wait_for_status("one", "r2", {4})
    assert _get(srv, f"/dag-runs/one/r2/sub-dag-runs/{sub_id}").status_code == 200


def test_a_failing_child_fails_its_step_and_a_repeat_keeps_the_earlier_children(fake_factory):
    bad = Dag(file="bad", steps=[Step("boom", [out("about to fail"), fail(3)])])
    srv = fake_factory(
        bad,
        LEAF,
        Dag(
            file="p",
            steps=[
                Step("again", [call("leaf", "REGION=r", repeat=3)]),
                Step("broken", [call("bad")], depends=["again"]),
            ],
        ),
        version="1.30.3",
    )
    run = _start(srv, "p", "r3")
    assert run.status == 2
    details = _get(srv, "/dag-runs/p/r3").json()["dagRunDetails"]
    again = _node(details, "again")
    assert len(again["subRuns"]) == 1 and len(again["subRunsRepeated"]) == 2
    assert len({s["dagRunId"] for s in again["subRuns"] + again["subRunsRepeated"]}) == 3
    assert _node(details, "broken")["status"] == 2
    bad_id = _node(details, "broken")["subRuns"][0]["dagRunId"]
    assert _get(srv, f"/dag-runs/p/r3/sub-dag-runs/{bad_id}").json()["dagRunDetails"]["status"] == 2


def test_stopping_the_root_aborts_the_children(fake_factory):
    slow = Dag(file="slow", steps=[Step("wait", [hold("never")])])
    srv = fake_factory(
        slow, Dag(file="fan", steps=[Step("many", [parallel("slow", ["a", "b", "c"])])]), version="1.30.3"
    )
    requests.post(f"{srv.api_url}/dags/fan/start", json={"dagRunId": "r4"}, timeout=WAIT_LIMIT)
    eventually(lambda: srv.engine.holding("never") == 3, "three children holding")
    assert requests.post(f"{srv.api_url}/dag-runs/fan/r4/stop", timeout=WAIT_LIMIT).status_code == 200
    srv.wait_for_status("fan", "r4", {3})
    listed = _get(srv, "/dag-runs/fan/r4/sub-dag-runs").json()["subRuns"]
    assert [s["status"] for s in listed] == [3, 3, 3]
