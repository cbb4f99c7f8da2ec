"""Run lifecycle policies and backstops (issue 6): the CLI against the fake server."""
from __future__ import annotations

import json
import os
import signal
import time

from tests.conftest import run_cli, start_cli
from tests.fakedagu import Dag, Step, approval, fail, out, sleep
from tests.test_run_e2e import FAST, assert_clean_error, log_lines


def dag(*steps, **kwargs):
    return Dag(file="deploy", steps=list(steps) or [Step("s", [out("hello")])], **kwargs)


def run(server, *args, state_dir=None, env=None):
    extra = ("--state-dir", str(state_dir)) if state_dir else ()
    return run_cli("run", "deploy", "--url", server.url, *FAST, *extra, *args, env=env)


def test_sigkill_then_stop_from_state_stops_the_run(fake_factory, tmp_path):
    server = fake_factory(dag(Step("long", [out("working"), sleep(30)])))
    proc = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "orphan", "--state-dir", str(tmp_path))
    proc.wait_for("working")
    (state_file,) = tmp_path.glob("run-*.json")
    saved = json.loads(state_file.read_text())
    assert (saved["url"], saved["dag"], saved["name"], saved["run_id"]) == (server.url, "deploy", "deploy", "orphan")
    proc.send_signal(signal.SIGKILL)  # the host killed us before any handler could run
    proc.finish()
    assert server.get_run("deploy", "orphan").status == 1

    result = run_cli("stop", "--from-state", "--url", "http://wrong.invalid", "--state-dir", str(tmp_path), "--json")
    assert result.code == 0, result.output
    assert "stopped run orphan of deploy" in result.stderr  # stdout is the document
    assert json.loads(result.stdout) == [{"dag": "deploy", "name": "deploy", "run_id": "orphan", "action": "stopped", "status": "running"}]
    server.wait_for_status("deploy", "orphan", {3}, timeout=10)
    assert not list(tmp_path.glob("run-*.json"))


def test_finished_run_leaves_no_state_and_from_state_does_nothing(fake_factory, tmp_path):
    server = fake_factory(dag())
    assert run(server, state_dir=tmp_path).code == 0
    assert not list(tmp_path.glob("run-*.json"))
    result = run_cli("stop", "--from-state", "--state-dir", str(tmp_path))
    assert result.code == 0
    assert "nothing to stop" in result.stdout


def test_state_file_goes_to_the_ci_workspace(fake_factory, tmp_path):
    server = fake_factory(dag(Step("long", [out("working"), sleep(30)])))
    proc = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "ws", env={"CI_PROJECT_DIR": str(tmp_path)})
    proc.wait_for("working")
    assert list((tmp_path / ".dagu-ci").glob("run-deploy-ws.json"))
    proc.send_signal(signal.SIGTERM)
    assert proc.finish().code == 143
    assert not list((tmp_path / ".dagu-ci").glob("run-*.json"))  # stopped: nothing left for a backstop


def test_dry_run_starts_nothing(fake_factory):
    server = fake_factory(dag(params={"VERSION": "0"}))
    result = run(server, "--dry-run", "--param", "VERSION=1", "--param", "TYPO=x", "--run-id", "dry")
    assert result.code == 0, result.output
    assert "dry run: would start deploy (file deploy) as run dry" in result.stdout
    assert "TYPO are not declared" in result.stdout
    assert not server.runs
    assert not [r for r in server.requests if r.method == "POST"]


def test_dry_run_still_checks_auth_and_dag(fake_factory):
    server = fake_factory(dag(), auth=("token", "t0k"))
    assert_clean_error(run(server, "--dry-run"), 2, "requires authentication")
    assert_clean_error(run_cli("run", "nope", "--url", server.url, "--token", "t0k", "--dry-run"), 2, "not found")


def test_on_waiting_fail_exits_3_and_leaves_it_waiting(fake_factory):
    server = fake_factory(dag(Step("gate", [approval()])))
    result = run(server, "--on-waiting", "fail", "--run-id", "w1")
    assert result.code == 3, result.output
    assert "left waiting (--on-waiting fail)" in result.stdout
    assert f"{server.url}/dag-runs/deploy/w1" in result.stdout
    assert server.get_run("deploy", "w1").status == 7


def test_timeout_while_waiting_rejects_the_approval(fake_factory):
    server = fake_factory(dag(Step("gate", [approval()])))
    result = run(server, "--timeout", "1.5", "--run-id", "w2")
    assert result.code == 124, result.output
    assert server.get_run("deploy", "w2").status == 8


def test_queue_timeout_dequeues_a_run_that_never_started(fake_factory):
    server = fake_factory(dag(), queue_delay=None)  # no scheduler: it would wait for ever
    began = time.monotonic()
    result = run(server, "--enqueue", "--queue-timeout", "1", "--run-id", "q1")
    assert result.code == 124, result.output
    assert time.monotonic() - began < 20
    assert "never started: still queued after 1s; it was dequeued" in result.stdout
    assert server.get_run("deploy", "q1").status == 3


def test_auto_retry_followed_or_not(fake_factory):
    flaky = Step("flaky", [out("try"), fail(1)], fail_attempts=1)
    server = fake_factory(dag(flaky, auto_retry_limit=1))
    followed = run(server, "--run-id", "ar1")
    assert followed.code == 0, followed.output
    assert "attempt 2 of 2" in followed.stdout
    not_waited = run(server, "--run-id", "ar2", "--no-wait-auto-retry")
    assert not_waited.code == 1, not_waited.output
    assert log_lines(not_waited.stdout) == ["try"]


def test_provenance_labels(fake_factory):
    server = fake_factory(dag(), version="2.6.5")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "9", "GITHUB_REPOSITORY": "acme/app", "GITHUB_SHA": "abc",
           "GITHUB_REF_NAME": "main", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_WORKSPACE": os.getcwd()}
    result = run(server, "--run-id", "lab", "--reporter", "plain", env=env)
    assert result.code == 0, result.output
    labels = server.get_run("deploy", "lab").labels
    assert "ci=github" in labels and "sha=abc" in labels and "ref=main" in labels
    assert "ci-url=https://github.com/acme/app/actions/runs/9" in labels


def test_provenance_tags_on_older_2x_and_none_before(fake_factory):
    env = {"CI_JOB_ID": "5", "GITLAB_CI": "true", "CI_COMMIT_SHA": "fff"}
    old = fake_factory(dag(), version="2.4.0")
    assert run(old, "--run-id", "t1", "--reporter", "plain", env=env).code == 0
    assert "sha=fff" in old.get_run("deploy", "t1").labels
    older = fake_factory(dag(), version="2.1.0")
    assert run(older, "--run-id", "t2", "--reporter", "plain", env=env).code == 0
    start = [r for r in older.requests if r.method == "POST" and r.path.endswith("/start")][0]
    assert "labels" not in json.loads(start.body) and "tags" not in json.loads(start.body)


def test_github_post_entrypoint_stops_what_a_killed_main_step_left(fake_factory, tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT, clean_env

    server = fake_factory(dag(Step("long", [out("working"), sleep(30)])), auth=("token", "tok-post"))
    action_env = {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(tmp_path), "INPUT_DAG": "deploy",
                  "INPUT_URL": server.url, "INPUT_TOKEN": "tok-post", "INPUT_RUN-ID": "gh-killed",
                  "INPUT_POLL-INTERVAL": "0.1", "GITHUB_OUTPUT": str(tmp_path / "out"),
                  "GITHUB_STEP_SUMMARY": str(tmp_path / "summary")}
    main = subprocess.Popen([sys.executable, os.path.join(ROOT, "entrypoint.py")], env=clean_env(action_env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    server.wait_for_status("deploy", "gh-killed", {1}, timeout=15)
    deadline = time.monotonic() + 10
    while not list((tmp_path / ".dagu-ci").glob("run-*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    main.kill()  # the runner's hard kill after its grace period
    main.communicate(timeout=10)

    post = tmp_path / "bin" / "dagu-ci-post"
    post.parent.mkdir()
    post.symlink_to(os.path.join(ROOT, "entrypoint.py"))
    proc = subprocess.run([sys.executable, str(post)], env=clean_env(action_env), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "stopped run gh-killed of deploy" in proc.stdout
    assert "tok-post" not in proc.stdout + proc.stderr
    server.wait_for_status("deploy", "gh-killed", {3}, timeout=10)


def test_cancel_superseded_stops_exactly_the_same_group(fake_factory):
    server = fake_factory(dag(Step("long", [out("working"), sleep(30)])), version="2.6.5")
    older = [start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", run_id, "--cancel-superseded", group)
             for run_id, group in (("main-1", "main"), ("feature-1", "feature"))]
    for run_id in ("main-1", "feature-1"):
        server.wait_for_status("deploy", run_id, {1}, timeout=10)
    plain = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "no-group")
    server.wait_for_status("deploy", "no-group", {1}, timeout=10)

    newer = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "main-2", "--cancel-superseded", "main")
    newer.wait_for("superseded: stopping run main-1")
    server.wait_for_status("deploy", "main-1", {3}, timeout=10)
    assert older[0].finish().code == 3  # its follower sees the stop and exits as aborted
    assert "dagu-ci-group=main" in server.get_run("deploy", "main-2").labels
    assert server.get_run("deploy", "feature-1").status == 1
    assert server.get_run("deploy", "no-group").status == 1
    assert "feature-1" not in newer.stdout and "no-group" not in newer.stdout
    for proc in (older[1], plain, newer):
        proc.send_signal(signal.SIGTERM)
        proc.finish()


def test_suspended_dag_is_refused_before_any_start(fake_factory):
    server = fake_factory(dag(suspended=True))
    assert_clean_error(run(server), 2, r"DAG 'deploy' is suspended .* resume it")
    assert_clean_error(run(server, "--dry-run"), 2, r"is suspended")
    assert not [r for r in server.requests if r.method == "POST"]
