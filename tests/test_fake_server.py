"""Focused tests of the fake Dagu server's quirks, with plain HTTP calls.

Each test checks one behaviour API.md describes for the real server, so a client
tested against the fake meets the same hazards.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Callable, Optional

import pytest
import requests

from tests.conftest import eventually
from tests.fakedagu import (
    Dag,
    FakeDagu,
    ServerVersion,
    Step,
    approval,
    err,
    fail,
    hold,
    lines,
    load_dags,
    node_status_label,
    out,
    output,
    raw,
    status_label,
)
from tests.fakedagu.logs import read_log_lines

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def make(fake_factory: Callable[..., FakeDagu]) -> Callable[..., FakeDagu]:
    """Fake servers whose v1.x start failures give up quickly."""

    def factory(*dags: Dag, **kwargs: Any) -> FakeDagu:
        kwargs.setdefault("start_timeout", 0.2)
        return fake_factory(*dags, **kwargs)

    return factory


def quick_dag(file: str = "deploy", **kwargs: Any) -> Dag:
    kwargs.setdefault("steps", [Step("only", [out("hello")])])
    return Dag(file=file, **kwargs)


def start(server: FakeDagu, file: str, run_id: str, **body: Any) -> requests.Response:
    return requests.post(f"{server.api_url}/dags/{file}/start", json=dict(body, dagRunId=run_id), timeout=5)


def details(server: FakeDagu, name: str, run_id: str) -> dict:
    response = requests.get(f"{server.api_url}/dag-runs/{name}/{run_id}", timeout=5)
    assert response.status_code == 200, response.text
    return response.json()["dagRunDetails"]


def step_log(server: FakeDagu, name: str, run_id: str, step: str, **query: Any) -> requests.Response:
    query.setdefault("stream", "stdout")
    return requests.get(f"{server.api_url}/dag-runs/{name}/{run_id}/steps/{step}/log", params=query, timeout=5)


# -- versions, mounts, fallthrough -------------------------------------------------


def test_2x_mounts_api_v1_and_other_prefixes_fall_through_to_the_spa(make):
    server = make(quick_dag(), version="2.6.5")
    health = requests.get(server.url + "/api/v1/health", timeout=5)
    assert health.status_code == 200 and health.headers["Content-Type"] == "application/json"
    assert health.json()["status"] == "healthy" and health.json()["version"] == "2.6.5"
    assert set(health.json()) == {"status", "version", "uptime", "timestamp"}
    for path in ("/api/v2/health", "/api/v2/dags/deploy", "/api/v1/no-such-thing", "/some/app"):
        page = requests.get(server.url + path, timeout=5)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html"), path
    assert requests.post(server.url + "/api/v2/dags/deploy/start", json={}, timeout=5).status_code == 405


def test_1x_mounts_api_v2_and_still_serves_legacy_v1_health(make):
    server = make(quick_dag(), version="1.30.3")
    assert server.api_url.endswith("/api/v2")
    modern = requests.get(server.url + "/api/v2/health", timeout=5).json()
    legacy = requests.get(server.url + "/api/v1/health", timeout=5).json()
    assert modern["version"] == legacy["version"] == "1.30.3"
    assert set(modern) == set(legacy)
    assert requests.get(server.url + "/api/v2/dags/deploy", timeout=5).json()["dag"]["name"] == "deploy"
    assert requests.get(server.url + "/api/v1/dag-runs", timeout=5).headers["Content-Type"].startswith("text/html")


def test_legacy_server_has_only_the_legacy_api(make):
    server = make(quick_dag(), version="1.16.12")
    assert requests.get(server.url + "/api/v1/health", timeout=5).json()["version"] == "1.16.12"
    assert "DAGs" in requests.get(server.url + "/api/v1/dags", timeout=5).json()
    for path in ("/api/v2/health", "/api/v1/dag-runs/deploy/x"):
        assert requests.get(server.url + path, timeout=5).headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    "version, flavor, prefix",
    [
        ("dev", "v1x", "/api/v2"),
        ("dev", None, "/api/v1"),
        ("0.0.0", "v1x", "/api/v2"),
        ("v2.6.5-23-gabc", None, "/api/v1"),
    ],
)
def test_dev_and_git_describe_versions(make, version, flavor, prefix):
    server = make(quick_dag(), version=version, flavor=flavor)
    answer = requests.get(server.url + prefix + "/health", timeout=5)
    assert answer.json()["version"] == version


def test_base_path_trailing_slash_redirect_and_outside_paths(make):
    server = make(quick_dag(), base_path="/dagu/")
    assert server.url.endswith("/dagu")
    assert requests.get(server.url + "/api/v1/health", timeout=5).status_code == 200
    assert requests.get(server.url[: -len("/dagu")] + "/api/v1/health", timeout=5).status_code == 404
    moved = requests.get(server.url + "/api/v1/health/?x=1", allow_redirects=False, timeout=5)
    assert moved.status_code == 301 and moved.headers["Location"] == "/dagu/api/v1/health?x=1"
    assert [r.path for r in server.requests][:1] == ["/api/v1/health"]  # recorded below the base path


# -- auth ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth, good, scheme",
    [
        (("basic", "ci", "pw"), {"auth": ("ci", "pw")}, "Basic"),
        (("token", "s3cret"), {"headers": {"Authorization": "Bearer s3cret"}}, "Bearer"),
    ],
)
def test_auth_401_is_empty_with_www_authenticate_and_health_stays_public(make, auth, good, scheme):
    server = make(quick_dag(), auth=auth)
    url = server.api_url + "/dags/deploy"
    for kwargs in ({}, {"headers": {"Authorization": "Bearer wrong"}}, {"auth": ("ci", "wrong")}):
        refused = requests.get(url, timeout=5, **kwargs)
        assert refused.status_code == 401 and refused.content == b""
        assert refused.headers["WWW-Authenticate"] == f'{scheme} realm="restricted"'
    assert requests.get(url, timeout=5, **good).status_code == 200
    assert requests.get(server.api_url + "/health", timeout=5).status_code == 200
    assert requests.get(server.url + "/", timeout=5).status_code == 200  # the UI is not behind auth


@pytest.mark.parametrize("version, public", [("1.24.4", False), ("1.24.5", True), ("1.16.12", False)])
def test_health_is_public_only_from_1_24_5(make, version, public):
    server = make(quick_dag(), version=version, auth=("token", "t"))
    for prefix in {"/api/v1", server.version.api_prefix}:
        answer = requests.get(server.url + prefix + "/health", timeout=5)
        assert answer.status_code == (200 if public else 401), prefix
        with_token = requests.get(server.url + prefix + "/health", headers={"Authorization": "Bearer t"}, timeout=5)
        assert with_token.status_code == 200


# -- starting runs ------------------------------------------------------------------


def test_start_needs_a_json_body_and_waits_for_the_record(make):
    server = make(quick_dag(name="deploy-prod"))
    for body in (b"", b"not json", b"[1]", b'{"params": 5}'):
        broken = requests.post(server.api_url + "/dags/deploy/start", data=body, timeout=5)
        assert broken.status_code == 500 and broken.content == b"", body
    started = requests.post(server.api_url + "/dags/deploy/start", data=b"{}", timeout=5)
    assert started.status_code == 200 and set(started.json()) == {"dagRunId"}
    run_id = started.json()["dagRunId"]
    assert details(server, "deploy-prod", run_id)["status"] != 0  # visible at once, no 404 window
    wrong_name = requests.get(f"{server.api_url}/dag-runs/deploy/{run_id}", timeout=5)
    assert wrong_name.status_code == 404
    assert wrong_name.json() == {"code": "not_found", "message": f"dag-run ID {run_id} not found for DAG deploy"}


def test_duplicate_run_id_and_singleton_conflicts(make):
    server = make(quick_dag(steps=[Step("long", [hold("never")])]), queue_delay=None)  # runs until stopped
    assert start(server, "deploy", "r1").status_code == 200
    again = start(server, "deploy", "r1")
    assert again.status_code == 409
    assert again.json() == {"code": "already_exists", "message": "dag-run ID r1 already exists for DAG deploy"}
    single = start(server, "deploy", "r2", singleton=True)
    assert single.status_code == 409
    assert single.json()["message"] == "DAG deploy is already running (singleton mode)"
    assert start(server, "deploy", "r3").status_code == 200  # no singleton: parallel runs are fine
    queued = requests.post(server.api_url + "/dags/deploy/enqueue", json={"dagRunId": "q1"}, timeout=5)
    assert queued.status_code == 200  # and it stays queued: nothing releases the queue
    server.stop_run("deploy", "r1")
    server.stop_run("deploy", "r3")
    for run_id in ("r1", "r3"):  # the stops land one by one: wait for both, or r1 may still run
        server.wait_for_status("deploy", run_id, 3)
    in_queue = requests.post(server.api_url + "/dags/deploy/enqueue", json={"singleton": True}, timeout=5)
    assert in_queue.json()["message"] == "DAG deploy is already in queue (singleton mode)"


def test_run_id_validation_is_server_side_only_from_2_2_0(make):
    new = make(quick_dag(), version="2.2.0")
    refused = start(new, "deploy", "has space")
    assert refused.status_code == 400 and refused.json()["code"] == "bad_request"
    assert start(new, "deploy", "x" * 65).status_code == 400
    old = make(quick_dag(), version="2.1.0", start_timeout=0.3)
    began = time.monotonic()
    late = start(old, "deploy", "has space")
    assert late.status_code == 500 and time.monotonic() - began >= 0.3
    assert late.json() == {"code": "internal_error", "message": "An unexpected error occurred"}
    assert old.runs == []


def test_missing_required_param_is_400_on_2x_and_a_late_500_on_1x(make):
    dag = quick_dag(params={"TARGET": ""}, required_params=["TARGET"])
    modern = make(dag, version="2.6.5")
    refused = start(modern, "deploy", "p1")
    assert refused.status_code == 400 and "TARGET" in refused.json()["message"]
    assert start(modern, "deploy", "p2", params='{"TARGET":"prod"}').status_code == 200
    older = make(quick_dag(params={"TARGET": ""}, required_params=["TARGET"]), version="1.30.3")
    assert start(older, "deploy", "p1").status_code == 500


def test_params_parsing_per_version(make):
    dag = quick_dag(params={"VERSION": "0.0.0", "NOTE": ""}, steps=[Step("s", [out("v={VERSION} n={NOTE}")])])
    as_json = json.dumps({"VERSION": "1.2.3", "NOTE": 'a "quoted" value'})
    as_pairs = 'VERSION="1.2.3" NOTE="a \\"quoted\\" value"'
    new = make(dag, version="1.30.3")
    start(new, "deploy", "j1", params=as_json)
    assert new.get_run("deploy", "j1").parsed_params == {"NOTE": 'a "quoted" value', "VERSION": "1.2.3"}
    old = make(quick_dag(params={"VERSION": "0.0.0"}), version="1.29.0")
    start(old, "deploy", "j1", params='{"USER":"user"}')
    assert old.get_run("deploy", "j1").parsed_params == {"1": "{", "2": "USER", "3": ":", "4": "user", "5": "}"}
    start(old, "deploy", "k1", params=as_pairs)
    run = old.get_run("deploy", "k1")
    assert run.params == as_pairs  # the raw string as sent
    assert run.parsed_params == {"VERSION": "1.2.3", "NOTE": 'a "quoted" value'}
    assert details(old, "deploy", "k1")["params"] == 'VERSION=1.2.3 NOTE=a "quoted" value'
    new.wait_for_status("deploy", "j1", 4)
    assert step_log(new, "deploy", "j1", "s").json()["content"] == 'v=1.2.3 n=a "quoted" value'


def test_dollar_values_are_evaluated_before_2_3_0(make):
    old = make(quick_dag(), version="2.2.0", server_env={"HOME": "/root"})
    start(old, "deploy", "e1", params='MSG="cost $HOME `date`"')
    assert old.get_run("deploy", "e1").parsed_params == {"MSG": "cost /root "}
    new = make(quick_dag(), version="2.3.0", server_env={"HOME": "/root"})
    start(new, "deploy", "e1", params='MSG="cost $HOME"')
    assert new.get_run("deploy", "e1").parsed_params == {"MSG": "cost $HOME"}


# -- run details ---------------------------------------------------------------------


def test_details_shape_not_started_nodes_and_latest_alias(make):
    steps = [Step("a", [out("x"), hold("a")]), Step("b", [out("y")], depends=["a"])]
    server = make(quick_dag(steps=steps, handlers={"onExit": Step("bye", [out("bye")])}))
    start(server, "deploy", "d1", labels=["ci=yes"])
    early = details(server, "deploy", "d1")
    b = early["nodes"][1]
    assert (b["startedAt"], b["finishedAt"], b["stdout"], b["stderr"]) == ("-", "-", "", "")
    assert b["statusLabel"] == "not_started" and b["subRuns"] == []
    assert "error" not in b and "onExit" in early and "onFailure" not in early
    assert early["labels"] == early["tags"] == ["ci=yes"]
    assert early["autoRetryCount"] == 0 and early["autoRetryLimit"] is None
    latest = requests.get(server.api_url + "/dag-runs/deploy/latest", timeout=5).json()["dagRunDetails"]
    assert latest["dagRunId"] == "d1"


def test_version_gated_fields(make):
    run_fields = {}
    for version in ("1.29.0", "1.30.3", "2.0.0", "2.3.0", "2.6.5"):
        server = make(quick_dag(), version=version)
        start(server, "deploy", "v1")
        run_fields[version] = set(details(server, "deploy", "v1"))
    assert "workerId" not in run_fields["1.29.0"] and "workerId" in run_fields["1.30.3"]
    assert "triggerType" not in run_fields["1.30.3"] and "tags" in run_fields["2.0.0"]
    assert "autoRetryCount" not in run_fields["2.0.0"] and "autoRetryCount" in run_fields["2.3.0"]
    assert "labels" not in run_fields["2.3.0"] and {"labels", "artifactsAvailable"} <= run_fields["2.6.5"]


def test_latest_alias_only_from_1_22_10(make):
    old = make(quick_dag(), version="1.22.9")
    start(old, "deploy", "r1")
    assert requests.get(old.api_url + "/dag-runs/deploy/latest", timeout=5).status_code == 404
    new = make(quick_dag(), version="1.22.10")
    assert requests.get(new.api_url + "/dag-runs/deploy/latest", timeout=5).json()["message"] == (
        "no dag-runs found for DAG deploy"
    )


@pytest.mark.parametrize(
    "version, labels",
    [
        ("1.18.0", ("not started", "canceled", "finished")),
        ("1.20.0", ("not started", "cancelled", "finished")),
        ("1.23.0", ("not_started", "canceled", "succeeded")),
        ("2.6.5", ("not_started", "aborted", "succeeded")),
    ],
)
def test_status_label_spellings(make, version, labels):
    server = make(quick_dag(steps=[Step("a", [hold("a")]), Step("b", [out("b")], depends=["a"])]), version=version)
    start(server, "deploy", "l1")
    server.wait_for_status("deploy", "l1", 1)
    assert details(server, "deploy", "l1")["nodes"][1]["statusLabel"] == labels[0]
    requests.post(server.api_url + "/dag-runs/deploy/l1/stop", timeout=5)
    server.wait_for_status("deploy", "l1", 3)
    assert details(server, "deploy", "l1")["statusLabel"] == labels[1]
    assert status_label(server.version, 4) == labels[2]
    assert node_status_label(ServerVersion.parse(version), 5) == "skipped"


# -- logs ----------------------------------------------------------------------------


def test_log_offsets_limits_and_omitted_zero_fields(make):
    steps = [Step("s", [lines(10, "line {i}")]), Step("quiet", [])]
    server = make(quick_dag(steps=steps))
    start(server, "deploy", "o1")
    server.wait_for_status("deploy", "o1", 4)
    assert step_log(server, "deploy", "o1", "s", offset=4, limit=3).json() == {
        "content": "line 4\nline 5\nline 6",
        "lineCount": 3,
        "totalLines": 10,
        "hasMore": True,
    }
    assert step_log(server, "deploy", "o1", "s", offset=9).json() == {
        "content": "line 9\nline 10",
        "lineCount": 2,
        "totalLines": 10,
    }
    assert step_log(server, "deploy", "o1", "s", offset=11).json() == {"content": "", "totalLines": 10}
    assert step_log(server, "deploy", "o1", "s", tail=2).json()["content"] == "line 9\nline 10"
    assert step_log(server, "deploy", "o1", "s", head=1).json()["hasMore"] is True
    assert step_log(server, "deploy", "o1", "quiet").json() == {"content": ""}  # empty file, not missing
    assert step_log(server, "deploy", "o1", "s", stream="stderr").json() == {"content": ""}
    bad = step_log(server, "deploy", "o1", "s", offset="abc")
    assert bad.status_code == 400 and bad.headers["Content-Type"].startswith("text/plain")


def test_log_errors_missing_stream_unknown_step_latest_and_unstarted(make):
    steps = [Step("a", [hold("a")]), Step("b", [out("b")], depends=["a"])]
    modern, older = make(quick_dag(steps=steps)), make(quick_dag(steps=list(steps)), version="1.30.3")
    for server in (modern, older):
        start(server, "deploy", "e1")
        server.wait_for_status("deploy", "e1", 1)
        no_stream = requests.get(server.api_url + "/dag-runs/deploy/e1/steps/a/log", timeout=5)
        assert no_stream.status_code == 500 and no_stream.content == b""
        unknown = step_log(server, "deploy", "e1", "zzz")
        assert unknown.status_code == 404 and unknown.json()["message"] == "step zzz not found in DAG deploy"
        assert step_log(server, "deploy", "latest", "a").status_code == 404
    assert step_log(modern, "deploy", "e1", "b").json() == {
        "code": "not_found",
        "message": "log file not found for step b",
    }
    unstarted = step_log(older, "deploy", "e1", "b")
    assert unstarted.status_code == 500 and unstarted.json()["code"] == "internal_error"


def wait_for_log(server: FakeDagu, name: str, run_id: str, step: str) -> dict:
    """The step's log once a flush has made some of it visible."""

    def flushed() -> Optional[dict]:
        answer = step_log(server, name, run_id, step)
        if answer.status_code != 200:  # the step has not started yet (no log file): not yet
            return None
        return answer.json() if answer.json()["content"] else None

    return eventually(flushed, f"a flush of step {step}'s log")


def test_half_written_line_is_visible_until_the_flush_after_it(make):
    steps = [Step("slow", [out("first"), raw("half-"), hold("rest"), out("written")])]
    server = make(quick_dag(steps=steps))
    start(server, "deploy", "h1")
    early = wait_for_log(server, "deploy", "h1", "slow")  # a flush while the step holds mid-line
    assert early == {"content": "first\nhalf-", "lineCount": 2, "totalLines": 2}
    server.release("rest")
    server.wait_for_status("deploy", "h1", 4)
    assert step_log(server, "deploy", "h1", "slow").json()["content"] == "first\nhalf-written"


def test_output_is_buffered_until_a_flush(make):
    server = make(quick_dag(steps=[Step("s", [out("early"), hold("end")])]))
    server.pause_flushes()
    start(server, "deploy", "b1")
    server.wait_held("end")  # "early" is written
    assert step_log(server, "deploy", "b1", "s").json() == {"content": ""}  # still in the 4 KB buffer
    server.resume_flushes()
    assert wait_for_log(server, "deploy", "b1", "s")["content"] == "early"
    server.stop_run("deploy", "b1")


def test_10kb_files_get_an_estimate_that_can_hide_the_tail(make):
    steps = [
        Step("mid", [lines(2000, "line {i}")]),
        Step("skew", [lines(400, "L{i} " + "x" * 4000), lines(30000, "s{i}")]),
    ]
    server = make(quick_dag(steps=steps))
    start(server, "deploy", "t1")
    server.wait_for_status("deploy", "t1", 4)
    mid = step_log(server, "deploy", "t1", "mid", offset=1990).json()
    assert mid["isEstimate"] is True and 2000 < mid["totalLines"] <= 2100  # sampled, times 1.05
    assert mid["lineCount"] == 11 and mid["hasMore"] is True  # at EOF, yet "more"
    skew = step_log(server, "deploy", "t1", "skew", offset=1).json()
    real_total = 30400
    assert skew["isEstimate"] is True and skew["totalLines"] < 1000 < real_total
    assert step_log(server, "deploy", "t1", "skew", offset=skew["totalLines"] + 1).json() == {
        "content": "",
        "totalLines": skew["totalLines"],
        "isEstimate": True,
    }
    head = step_log(server, "deploy", "t1", "skew", head=real_total).json()
    assert head["lineCount"] == real_total and head["content"].endswith("s30000")
    download = requests.get(
        server.api_url + "/dag-runs/deploy/t1/steps/skew/log/download", params={"stream": "stdout"}, timeout=5
    )
    assert download.headers["Content-Type"] == "text/plain"
    assert download.headers["Content-Disposition"] == 'attachment; filename="deploy-t1-skew-stdout.log"'
    assert download.content.count(b"\n") == real_total and download.content.endswith(b"s30000\n")


def test_line_over_64kb(make):
    steps = [Step("wide", [out("before"), out("y" * 70000), out("after")])]
    modern, older = make(quick_dag(steps=steps)), make(quick_dag(steps=list(steps)), version="1.25.0")
    for server in (modern, older):
        start(server, "deploy", "w1")
        server.wait_for_status("deploy", "w1", 4)
    assert step_log(modern, "deploy", "w1", "wide", offset=1).json() == {
        "content": "Error: Line too long to read.",
        "isEstimate": True,
    }
    assert step_log(modern, "deploy", "w1", "wide", offset=1, limit=1).json()["content"] == "before"
    assert step_log(older, "deploy", "w1", "wide", offset=1).status_code == 500  # offset reads before 1.26
    assert step_log(older, "deploy", "w1", "wide", tail=5).json()["content"] == "Error: Line too long to read."


def test_merged_log_output_shares_one_file(make):
    steps = [Step("m", [out("o1"), err("e1"), out("o2")])]
    server = make(quick_dag(steps=steps, log_output="merged"))
    start(server, "deploy", "m1")
    server.wait_for_status("deploy", "m1", 4)
    node = details(server, "deploy", "m1")["nodes"][0]
    assert node["stdout"] == node["stderr"] and node["stdout"].endswith(".log")
    assert step_log(server, "deploy", "m1", "m", stream="stderr").json()["content"] == "o1\ne1\no2"


def test_reader_scanner_rules(tmp_path):
    path = tmp_path / "log"
    path.write_bytes(b"a\r\n\nlast")
    result = read_log_lines(str(path))
    assert (result.lines, result.line_count, result.total_lines) == (["a", "", "last"], 3, 3)
    with pytest.raises(FileNotFoundError):
        read_log_lines("")


# -- controlling runs ----------------------------------------------------------------


def test_stop_is_asynchronous_and_ends_aborted(make):
    steps = [Step("long", [out("working"), hold("never")]), Step("after", [out("never")], depends=["long"])]
    server = make(quick_dag(steps=steps), stop_delay=None)  # the agent gets the signal at deliver_stops()
    start(server, "deploy", "s1")
    server.wait_for_status("deploy", "s1", 1)
    stopped = requests.post(server.api_url + "/dag-runs/deploy/s1/stop", timeout=5)
    assert stopped.status_code == 200 and stopped.content == b""
    assert details(server, "deploy", "s1")["status"] == 1  # not yet
    server.deliver_stops()
    run = server.wait_for_status("deploy", "s1", 3)  # the step never ends by itself: the stop cut it short
    assert [n.status for n in run.nodes] == [3, 0]
    assert run.finished_at_monotonic is not None
    again = requests.post(server.api_url + "/dag-runs/deploy/s1/stop", timeout=5)
    assert again.status_code == 400 and again.json() == {"code": "not_running", "message": "DAG is not running"}


def test_failure_aborts_dependents_and_continue_on_failure_gives_partial_success(make):
    failing = quick_dag(
        "fails", steps=[Step("a", [fail(3)]), Step("b", [out("b")], depends=["a"]), Step("c", [out("c")])]
    )
    partial = quick_dag(
        "partial", steps=[Step("lint", [fail(2)], continue_on_failure=True), Step("build", [out("ok")])]
    )
    server = make(failing, partial)
    start(server, "fails", "f1")
    start(server, "partial", "p1")
    run = server.wait_for_status("fails", "f1", 2)
    a, b, c = details(server, "fails", "f1")["nodes"]
    assert (a["status"], a["error"]) == (2, "exit status 3")
    assert (b["status"], b["error"], b["startedAt"]) == (3, "upstream failed", "-")  # aborted, never started
    assert c["status"] == 4 and run.node("c").status == 4
    assert server.wait_for_status("partial", "p1", {2, 6}).status == 6


def test_approval_waits_then_continues_or_is_rejected(make):
    steps = [Step("gate", [out("asking"), approval()]), Step("ship", [out("shipped")], depends=["gate"])]
    server = make(quick_dag(steps=steps))
    start(server, "deploy", "a1")
    server.wait_for_status("deploy", "a1", 7)
    waiting = details(server, "deploy", "a1")
    assert (waiting["statusLabel"], waiting["nodes"][0]["status"]) == ("waiting", 7)
    assert requests.post(server.api_url + "/dag-runs/deploy/a1/stop", timeout=5).status_code == 400
    approved = requests.post(server.api_url + "/dag-runs/deploy/a1/steps/gate/approve", json={}, timeout=5)
    assert approved.json() == {"dagRunId": "a1", "stepName": "gate", "resumed": True}
    server.wait_for_status("deploy", "a1", 4)
    assert step_log(server, "deploy", "a1", "ship").json()["content"] == "shipped"
    start(server, "deploy", "a2")
    server.wait_for_status("deploy", "a2", 7)
    server.reject("deploy", "a2", "gate")
    server.wait_for_status("deploy", "a2", 8)
    gate, ship = details(server, "deploy", "a2")["nodes"]
    assert (gate["status"], ship["status"], ship["error"]) == (8, 3, "upstream rejected")
    late = requests.post(server.api_url + "/dag-runs/deploy/a2/steps/gate/approve", json={}, timeout=5)
    assert late.json()["message"] == "step gate is not waiting for approval (status: rejected)"


def test_enqueue_stays_queued_then_runs_or_is_dequeued(make):
    server = make(quick_dag(), queue_delay=None)  # queued until release_queue()
    queued = requests.post(server.api_url + "/dags/deploy/enqueue", json={"dagRunId": "q1"}, timeout=5)
    assert queued.status_code == 200
    first = details(server, "deploy", "q1")
    assert (first["status"], first["statusLabel"], first["nodes"][0]["startedAt"]) == (5, "queued", "-")
    assert "queuedAt" in first and first["startedAt"] == ""
    assert requests.post(server.api_url + "/dag-runs/deploy/q1/stop", timeout=5).status_code == 400
    server.release_queue()
    run = server.wait_for_status("deploy", "q1", 4)
    assert [status for _, status in run.status_history] == [5, 1, 4]
    server.queue_delay = 0.4  # a scheduler that picks the run up by itself
    requests.post(server.api_url + "/dags/deploy/enqueue", json={"dagRunId": "q0"}, timeout=5)
    assert [status for _, status in server.wait_for_status("deploy", "q0", 4).status_history] == [5, 1, 4]
    server.queue_delay = None
    requests.post(server.api_url + "/dags/deploy/enqueue", json={"dagRunId": "q2"}, timeout=5)
    assert requests.get(server.api_url + "/dag-runs/deploy/q2/dequeue", timeout=5).status_code == 200
    # A dequeued run that never ran is removed, as Dagu's dequeue does (checked on real 1.30.3).
    assert requests.get(server.api_url + "/dag-runs/deploy/q2", timeout=5).status_code == 404
    gone = requests.get(server.api_url + "/dag-runs/deploy/q2/dequeue", timeout=5)
    assert (gone.status_code, gone.json()) == (
        404,
        {"code": "not_found", "message": "dag-run ID q2 not found for DAG deploy"},
    )
    requests.post(server.api_url + "/dags/deploy/enqueue", json={"dagRunId": "q3"}, timeout=5)
    server.release_queue()
    server.wait_for_status("deploy", "q3", 4)


def test_retry_makes_a_new_attempt_with_new_log_paths(make):
    server = make(quick_dag(steps=[Step("flaky", [out("try"), fail(1, attempts=[1])])]))
    start(server, "deploy", "r1")
    server.wait_for_status("deploy", "r1", 2)
    first_path = details(server, "deploy", "r1")["nodes"][0]["stdout"]
    mismatch = requests.post(server.api_url + "/dag-runs/deploy/r1/retry", json={"dagRunId": "other"}, timeout=5)
    assert mismatch.status_code == 400
    retried = requests.post(server.api_url + "/dag-runs/deploy/r1/retry", json={"dagRunId": "r1"}, timeout=5)
    assert retried.status_code == 200 and retried.content == b""
    run = server.wait_for_status("deploy", "r1", 4)
    assert len(run.attempts) == 2
    second = details(server, "deploy", "r1")
    assert second["nodes"][0]["stdout"] != first_path and second["triggerType"] == "retry"


def test_auto_retry_shows_failed_then_a_new_attempt(make):
    dag = quick_dag(
        steps=[Step("flaky", [out("try"), fail(1)], fail_attempts=1)], auto_retry_limit=1, auto_retry_delay=None
    )  # the retry waits for release_auto_retries()
    server = make(dag, version="2.6.5")
    start(server, "deploy", "ar1")
    server.wait_for_status("deploy", "ar1", 2)
    failed = details(server, "deploy", "ar1")
    assert (failed["autoRetryCount"], failed["autoRetryLimit"]) == (0, 1)
    assert server.get_run("deploy", "ar1").retry_pending
    path = failed["nodes"][0]["stdout"]
    server.release_auto_retries()
    run = server.wait_for_status("deploy", "ar1", 4)
    final = details(server, "deploy", "ar1")
    assert final["autoRetryCount"] == 1 and final["nodes"][0]["stdout"] != path
    assert [s for _, s in run.status_history] == [1, 2, 1, 4]
    old = make(quick_dag(steps=[Step("flaky", [fail(1)])], auto_retry_limit=1, auto_retry_delay=0.1), version="2.2.0")
    start(old, "deploy", "ar1")
    failed_once = old.wait_for_status("deploy", "ar1", 2)
    assert not failed_once.retry_pending and failed_once.retry_timer is None  # before 2.3.0: no retry at all
    old.release_auto_retries()
    assert len(old.get_run("deploy", "ar1").attempts) == 1


def test_stop_cancels_a_pending_auto_retry(make):
    dag = quick_dag(steps=[Step("flaky", [fail(1)])], auto_retry_limit=2, auto_retry_delay=None)
    server = make(dag)
    start(server, "deploy", "c1")
    server.wait_for_status("deploy", "c1", 2)
    assert requests.post(server.api_url + "/dag-runs/deploy/c1/stop", timeout=5).status_code == 200
    assert details(server, "deploy", "c1")["status"] == 3
    server.release_auto_retries()  # cancelled: nothing starts
    assert len(server.get_run("deploy", "c1").attempts) == 1
    start(server, "deploy", "c2")
    server.wait_for_status("deploy", "c2", 2)
    server.get_run("deploy", "c2").retry_pending = False  # as if the retries were used up
    refused = requests.post(server.api_url + "/dag-runs/deploy/c2/stop", timeout=5)
    assert refused.json()["code"] == "bad_request"


def test_outputs_endpoint(make):
    steps = [Step("s", [output("IMAGE_TAG", "{VERSION}")])]
    server = make(quick_dag(steps=steps, params={"VERSION": "9"}))
    start(server, "deploy", "o1")
    server.wait_for_status("deploy", "o1", 4)
    body = requests.get(server.api_url + "/dag-runs/deploy/o1/outputs", timeout=5).json()
    assert body["outputs"] == {"imageTag": "9"}
    assert body["metadata"]["status"] == "succeeded" and body["metadata"]["dagRunId"] == "o1"


# -- the network ----------------------------------------------------------------------


def _refused(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_outage_closes_the_port_and_reopens_the_same_port(make):
    server = make(quick_dag(steps=[Step("s", [out("a"), hold("b"), out("b")])]))
    start(server, "deploy", "u1")
    port = server.port
    session = requests.Session()
    assert session.get(server.api_url + "/health", timeout=5).status_code == 200  # a kept-alive connection
    server.outage_start()
    assert _refused(port) and not server.listening
    with pytest.raises(requests.ConnectionError):
        session.get(server.api_url + "/health", timeout=5)
    server.release("b")
    server.wait_for_status("deploy", "u1", 4)  # the run went on meanwhile
    server.outage_end()
    assert server.port == port and server.listening
    assert session.get(server.api_url + "/dag-runs/deploy/u1", timeout=5).json()["dagRunDetails"]["status"] == 4
    server.outage(0.2)  # the timed form reopens by itself, on the same port
    eventually(lambda: server.listening and not _refused(port), "the end of a 0.2 s outage")
    assert server.port == port
    assert requests.get(server.api_url + "/health", timeout=5).status_code == 200


def test_fault_injection(make):
    server = make(quick_dag())
    server.fault(path=r"/dag-runs/", method="GET", status=503, count=2, retry_after=1)
    url = server.api_url + "/dag-runs/deploy/nope"
    first = requests.get(url, timeout=5)
    assert first.status_code == 503 and first.headers["Retry-After"] == "1"
    assert requests.get(url, timeout=5).status_code == 503
    assert requests.get(url, timeout=5).status_code == 404  # back to the real answer
    server.fault(path=r"/dags/deploy$", html=True)
    page = requests.get(server.api_url + "/dags/deploy", timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    server.fault(path=r"/health$", status=200, delay=0.3)
    began = time.monotonic()
    slow = requests.get(server.api_url + "/health", timeout=5)
    assert slow.json()["status"] == "healthy" and time.monotonic() - began >= 0.3
    server.fault(path=r"/health$", drop=True)
    with pytest.raises(requests.ConnectionError):
        requests.get(server.api_url + "/health", timeout=5)
    server.fault(path=r"/health$", status=502, body='{"error":"bad gateway"}')
    assert requests.get(server.api_url + "/health", timeout=5).json() == {"error": "bad gateway"}
    records = server.wait_for_requests(7)
    assert [r.status for r in records] == [503, 503, 404, 200, 200, 0, 502]
    assert [r.fault for r in records] == [True, True, False, True, True, True, True]


def test_request_records(make):
    server = make(quick_dag(), base_path="/x")
    requests.get(server.api_url + "/dag-runs?name=deploy&status=4", timeout=5)
    start(server, "deploy", "rec1")
    get, post = server.wait_for_requests(2)
    assert (get.method, get.path, get.query, get.status) == (
        "GET",
        "/api/v1/dag-runs",
        {"name": "deploy", "status": "4"},
        200,
    )
    assert get.url == "/x/api/v1/dag-runs?name=deploy&status=4" and get.bytes_out == len(get.response) > 0
    assert json.loads(post.body) == {"dagRunId": "rec1"} and post.time >= get.time and post.duration >= 0


# -- CLI and YAML ----------------------------------------------------------------------


def test_demo_yaml_loads():
    (dag,) = load_dags(os.path.join(ROOT, "examples", "demo-dags.yaml"))
    assert (dag.file, dag.dag_name) == ("deploy", "deploy")
    assert any(s.depends == ["build"] for s in dag.steps)


def test_cli_prints_ready_and_stops_on_sigterm():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakedagu",
            "--port",
            "0",
            "--version",
            "1.30.3",
            "--dags",
            os.path.join(ROOT, "examples", "demo-dags.yaml"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("ready http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split(" ", 1)[1]
        assert requests.get(url + "/api/v2/dags/deploy", timeout=5).json()["dag"]["name"] == "deploy"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_request_is_listed_once_its_client_has_the_answer(make, monkeypatch):
    """A client that got its answer (and exited) must find its request in srv.requests:
    the record used to come after the send, and a loaded machine ran the test in between."""
    from tests.fakedagu import transport

    handler = vars(transport)["_Handler"]  # the fake's request handler
    original = handler.send

    def send_then_stall(self, reply):  # the server thread descheduled right after the send
        out = original(self, reply)
        time.sleep(1.0)
        return out

    monkeypatch.setattr(handler, "send", send_then_stall)
    server = make(quick_dag())
    answer = requests.delete(server.api_url + "/dags/nosuch", timeout=5)
    assert answer.status_code == 404
    assert [(r.method, r.path) for r in server.requests][-1:] == [("DELETE", "/api/v1/dags/nosuch")]
