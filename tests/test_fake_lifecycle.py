"""The fake's issue-6 endpoints: suspended DAGs, labels and list filters, queues with
positions, inline-spec runs and artifacts (tests/fakedagu/lifecycle.py)."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.fakedagu import Dag, FakeDagu, Step, out


def dag(**kwargs):
    return Dag(file="d", steps=[Step("a", [out("hi")])], **kwargs)


def test_a_suspended_dag_says_so_and_still_starts_by_api():
    # The API never checks suspension: only the scheduler skips scheduled runs.
    with FakeDagu(version="2.6.5") as srv:
        srv.add_dag(dag(suspended=True))
        assert requests.get(srv.api_url + "/dags/d").json()["suspended"] is True
        assert requests.post(srv.api_url + "/dags/d/start", json={"dagRunId": "r"}).status_code == 200
        srv.wait_for_status("d", "r", {4})


def test_labels_merge_normalise_and_filter():
    with FakeDagu(version="2.6.5") as srv:
        srv.add_dag(dag(labels=["Team=Core"]))
        api = srv.api_url
        for run_id, group in (("r1", "Main"), ("r2", "dev")):
            body = {"dagRunId": run_id, "labels": ["ci=github", f"dagu-ci-group={group}"]}
            assert requests.post(api + "/dags/d/start", json=body).status_code == 200
        srv.wait_for_status("d", "r2", {4})
        assert srv.get_run("d", "r1").labels == ["team=core", "ci=github", "dagu-ci-group=main"]

        def ids(query):
            response = requests.get(api + "/dag-runs?" + query)
            assert response.status_code == 200, response.text
            return [r["dagRunId"] for r in response.json()["dagRuns"]]

        assert ids("name=d&labels=dagu-ci-group=MAIN,ci") == ["r1"]
        assert ids("labels=dagu-ci-group=*") == ["r2", "r1"]
        assert ids("labels=!team") == []
        assert ids("status=4&status=1&labels=team=core") == ["r2", "r1"]
        assert ids("name=D") == ["r2", "r1"]  # a case-insensitive substring from 2.4.1
        assert requests.get(api + "/dag-runs?labels=a&tags=b").status_code == 400
        assert requests.get(api + "/dag-runs?status=1,4").status_code == 400
        refused = requests.post(api + "/dags/d/start", json={"labels": ["ci-url=https://x/1"]})
        assert refused.status_code == 400 and "invalid labels" in refused.json()["message"]


def test_older_list_filters():
    with FakeDagu(version="2.3.0") as srv:
        srv.add_dag(dag())
        requests.post(srv.api_url + "/dags/d/start", json={"dagRunId": "t1", "tags": ["k=v"]})
        srv.wait_for_status("d", "t1", {4})
        assert srv.get_run("d", "t1").labels == ["k=v"]
        got = requests.get(srv.api_url + "/dag-runs?tags=k=v&name=d").json()["dagRuns"]
        assert [r["dagRunId"] for r in got] == ["t1"] and got[0]["tags"] == ["k=v"]
        assert requests.get(srv.api_url + "/dag-runs?name=D").json()["dagRuns"] == []  # exact before 2.4.1
        assert requests.get(srv.api_url + "/dag-runs?status=4&status=1").status_code == 400  # one value


def test_queue_positions_on_each_shape():
    for version in ("2.6.5", "2.0.0", "1.30.3"):
        with FakeDagu(version=version, queue_delay=None) as srv:
            srv.add_dag(dag())
            for n in range(3):
                assert requests.post(srv.api_url + "/dags/d/enqueue", json={"dagRunId": f"q{n}"}).status_code == 200
            queues = requests.get(srv.api_url + "/queues").json()
            (queue,) = queues["queues"]
            assert queue["name"] == "d" and queues["summary"]["totalQueued"] == 3
            if version == "1.30.3":
                order = [r["dagRunId"] for r in queue["queued"]]
            elif version == "2.0.0":
                assert queue["queuedCount"] == 3
                order = [
                    r["dagRunId"] for r in requests.get(srv.api_url + "/queues/d/items?type=queued").json()["items"]
                ]
            else:
                page = requests.get(srv.api_url + "/queues/d/items?limit=2").json()
                rest = requests.get(srv.api_url + "/queues/d/items", params={"cursor": page["nextCursor"]}).json()
                order = [r["dagRunId"] for r in page["items"] + rest["items"]]
                assert "nextCursor" not in rest
                assert requests.get(srv.api_url + "/queues/d").json()["queuedCount"] == 3
                assert requests.get(srv.api_url + "/queues/nope").status_code == 404
            assert order == ["q0", "q1", "q2"], version


def test_inline_spec_runs():
    spec = "name: inl\nsteps:\n  - name: a\n    command: echo hello ${WHO}\n  - name: b\n    command: make test\n"
    with FakeDagu(version="2.6.5") as srv:
        api = srv.api_url
        body = {"spec": spec, "dagRunId": "i1", "params": '{"WHO":"ci"}', "labels": ["pr=7"]}
        assert requests.post(api + "/dag-runs", json=body).json() == {"dagRunId": "i1"}
        run = srv.wait_for_status("inl", "i1", {4})
        assert Path(run.node("a").stdout).read_text() == "hello ci\n"
        assert Path(run.node("b").stdout).read_text() == "make test\n" and run.node("b").step.depends == ["a"]
        assert run.labels == ["pr=7"]
        named = requests.post(api + "/dag-runs", json={"spec": spec, "name": "review"}).json()["dagRunId"]
        srv.wait_for_status("review", named, {4})
        for bad in ({"spec": ""}, {"spec": "steps: [\n"}, {"spec": "name: x\n"}):
            answer = requests.post(api + "/dag-runs", json=bad)
            assert answer.status_code == 400 and answer.json()["code"] == "bad_request"
        assert requests.post(api + "/dag-runs", json=body).status_code == 409
    with FakeDagu(version="1.22.0") as old:  # before 1.23.0: a POST to no route is 405
        assert requests.post(old.api_url + "/dag-runs", json={"spec": spec}).status_code == 405


def test_artifacts():
    with FakeDagu(version="2.6.5") as srv:
        srv.add_dag(dag(artifacts={"report.html": "<html></html>", "dir/a.txt": "x"}))
        srv.add_dag(Dag(file="plain", steps=[Step("a", [out("hi")])]))
        api = srv.api_url
        requests.post(api + "/dags/d/start", json={"dagRunId": "a1"})
        requests.post(api + "/dags/plain/start", json={"dagRunId": "p1"})
        srv.wait_for_status("d", "a1", {4})
        srv.wait_for_status("plain", "p1", {4})
        assert requests.get(api + "/dag-runs/d/a1").json()["dagRunDetails"]["artifactsAvailable"] is True
        assert requests.get(api + "/dag-runs/plain/p1").json()["dagRunDetails"]["artifactsAvailable"] is False
        tree = requests.get(api + "/dag-runs/d/a1/artifacts?recursive=true").json()["items"]
        assert [n["path"] for n in tree] == ["dir", "report.html"] and tree[0]["children"][0]["path"] == "dir/a.txt"
        got = requests.get(api + "/dag-runs/d/a1/artifacts/download", params={"path": "dir/a.txt"})
        assert got.content == b"x" and got.headers["Content-Type"] == "application/octet-stream"
        assert got.headers["Content-Disposition"] == 'attachment; filename="a.txt"'
        for escape in ("../a1/x", "", "dir"):
            assert requests.get(api + "/dag-runs/d/a1/artifacts/download", params={"path": escape}).status_code == 404
        assert requests.get(api + "/dag-runs/d/a1/artifacts/download").status_code == 400
        assert requests.get(api + "/dag-runs/plain/p1/artifacts").status_code == 404
        srv.hostile_artifacts = ["../../etc/passwd", "/abs/file"]
        assert [
            n["path"] for n in requests.get(api + "/dag-runs/d/a1/artifacts").json()["items"]
        ] == srv.hostile_artifacts
        assert (
            requests.get(api + "/dag-runs/d/a1/artifacts/download", params={"path": "../../etc/passwd"}).content
            == b"pwned\n"
        )
    with FakeDagu(version="2.4.3") as old:
        old.add_dag(dag(artifacts={"x": "y"}))
        requests.post(old.api_url + "/dags/d/start", json={"dagRunId": "o"})
        old.wait_for_status("d", "o", {4})
        assert "artifactsAvailable" not in requests.get(old.api_url + "/dag-runs/d/o").json()["dagRunDetails"]
        assert requests.get(old.api_url + "/dag-runs/d/o/artifacts").headers["Content-Type"].startswith("text/html")
