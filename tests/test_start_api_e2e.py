"""What each answer to the start request means, as a user sees it (the client's typed start:
a new run, our own earlier run, a refusal of the labels, a 500, another run active)."""

from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.fakedagu import Dag, Step, out
from tests.test_run_e2e import FAST, assert_clean_error, log_lines

GITHUB = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "9", "GITHUB_REPOSITORY": "acme/app", "GITHUB_SHA": "abc"}
START = r"/dags/deploy/start$"


def dag():
    return Dag(file="deploy", steps=[Step("s", [out("hello")])])


def run(server, *args, env=None):
    return run_cli("run", "deploy", "--url", server.url, *FAST, "--reporter", "plain", *args, env=env)


def start_bodies(server):
    return [json.loads(r.body) for r in server.requests if r.method == "POST" and r.path.endswith("/dags/deploy/start")]


def test_refused_labels_start_the_run_without_them(fake_factory):
    server = fake_factory(dag(), version="2.6.5")
    server.fault(
        path=START,
        method="POST",
        status=400,
        count=1,
        body='{"code":"bad_request","message":"invalid labels: label \\"ci\\": not allowed here"}',
    )
    result = run(server, "--run-id", "nolab", env=GITHUB)
    assert result.code == 0, result.output
    assert "refused the provenance labels (invalid labels" in result.output and "starting without them" in result.output
    first, second = start_bodies(server)
    assert "ci=github" in first["labels"] and "labels" not in second
    assert log_lines(result.stdout) == ["hello"]
    assert len(server.runs_of("deploy")) == 1


def test_a_400_without_labels_is_a_usage_error(fake_factory):
    server = fake_factory(dag(), version="2.6.5")
    server.fault(path=START, method="POST", status=400, count=1, body='{"code":"bad_request","message":"label-ish"}')
    assert_clean_error(run(server, "--run-id", "plain400"), 2, r"the server refused to start deploy: label-ish")
    assert len(start_bodies(server)) == 1


def test_a_500_is_checked_then_retried_and_starts_once(fake_factory):
    server = fake_factory(dag(), version="2.6.5")
    server.fault(
        path=START, method="POST", status=500, count=1, body='{"code":"internal_error","message":"DAG did not start"}'
    )
    result = run(server, "--run-id", "after500")
    assert result.code == 0, result.output
    assert len(start_bodies(server)) == 2 and len(server.runs_of("deploy")) == 1


def test_three_500s_end_it_and_on_1x_name_the_params(fake_factory):
    body = '{"code":"internal_error","message":"DAG did not start"}'
    for version, hint in (("1.30.3", True), ("2.6.5", False)):
        server = fake_factory(dag(), version=version)
        server.fault(path=START, method="POST", status=500, count=None, body=body)
        result = run(server, "--run-id", "never")
        assert_clean_error(result, 4, r"could not start deploy: HTTP 500 internal_error: DAG did not start")
        assert ("this often means the params were rejected" in result.stderr) is hint, result.stderr
        assert len(start_bodies(server)) == 3  # MAX_START_500S
        assert server.runs_of("deploy") == []
