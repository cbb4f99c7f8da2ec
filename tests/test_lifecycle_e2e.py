"""Run lifecycle policies and backstops (issue 6): the CLI against the fake server."""

from __future__ import annotations

import json
import os
import signal

import requests

from tests.conftest import WAIT_LIMIT, eventually, run_cli, start_cli
from tests.fakedagu import Dag, Step, approval, fail, hold, out
from tests.test_run_e2e import FAST, assert_clean_error, log_lines


def dag(*steps, **kwargs):
    return Dag(file="deploy", steps=list(steps) or [Step("s", [out("hello")])], **kwargs)


def run(server, *args, state_dir=None, env=None):
    extra = ("--state-dir", str(state_dir)) if state_dir else ()
    return run_cli("run", "deploy", "--url", server.url, *FAST, *extra, *args, env=env)


def test_sigkill_then_stop_from_state_stops_the_run(fake_factory, tmp_path):
    server = fake_factory(dag(Step("long", [out("working"), hold("never")])))
    proc = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "orphan", "--state-dir", str(tmp_path))
    proc.wait_for("working")
    (state_file,) = tmp_path.glob("run-*.json")
    saved = json.loads(state_file.read_text())
    assert (saved["url"], saved["dag"], saved["name"], saved["run_id"]) == (server.url, "deploy", "deploy", "orphan")
    proc.send_signal(signal.SIGKILL)  # the host killed us before any handler could run
    proc.finish()
    assert server.get_run("deploy", "orphan").status == 1

    # The state file names the run, never where requests go: another --url is refused.
    refused = run_cli("stop", "--from-state", "--url", "http://wrong.invalid", "--state-dir", str(tmp_path), "--json")
    assert refused.code == 0, refused.output
    assert json.loads(refused.stdout) == []
    assert "not the configured http://wrong.invalid:80" in refused.stderr
    assert server.get_run("deploy", "orphan").status == 1 and state_file.exists()

    result = run_cli("stop", "--from-state", "--url", server.url, "--state-dir", str(tmp_path), "--json")
    assert result.code == 0, result.output
    assert "stopped run orphan of deploy" in result.stderr  # stdout is the document
    assert json.loads(result.stdout) == [
        {"dag": "deploy", "name": "deploy", "run_id": "orphan", "action": "stopped", "status": "running"}
    ]
    server.wait_for_status("deploy", "orphan", {3})
    assert not list(tmp_path.glob("run-*.json"))


def test_finished_run_leaves_no_state_and_from_state_does_nothing(fake_factory, tmp_path):
    server = fake_factory(dag())
    assert run(server, state_dir=tmp_path).code == 0
    assert not list(tmp_path.glob("run-*.json"))
    result = run_cli("stop", "--from-state", "--state-dir", str(tmp_path))
    assert result.code == 0
    assert "nothing to stop" in result.stdout


def test_state_file_goes_to_the_jobs_temp_dir_not_the_checkout(fake_factory, tmp_path):
    server = fake_factory(dag(Step("long", [out("working"), hold("never")])))
    env = {
        "GITLAB_CI": "true",
        "CI_JOB_ID": "5",
        "CI_PROJECT_DIR": str(tmp_path / "proj"),
        "RUNNER_TEMP_PROJECT_DIR": str(tmp_path / "proj.tmp"),
    }
    proc = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "ws", env=env)
    proc.wait_for("working")
    (state_file,) = (tmp_path / "proj.tmp" / ".dagu-ci").glob("run-deploy-ws-*.json")
    assert json.loads(state_file.read_text())["job"] == "gl-5"
    assert not (tmp_path / "proj").exists()
    proc.send_signal(signal.SIGTERM)
    assert proc.finish().code == 143
    assert not (tmp_path / "proj.tmp" / ".dagu-ci").exists()  # stopped: nothing left for a backstop


def test_dry_run_starts_nothing(fake_factory):
    server = fake_factory(dag(params={"VERSION": "0"}))
    result = run(server, "--dry-run", "--param", "VERSION=1", "--run-id", "dry")
    assert result.code == 0, result.output
    assert "dry run: would start deploy (file deploy) as run dry" in result.stdout
    assert 'dry run: params {"VERSION": "1"}' in result.stdout
    assert not server.runs
    assert not [r for r in server.requests if r.method == "POST"]


def test_undeclared_params_refused_where_dagu_refuses_them(fake_factory):
    """Dagu 2.3.4+ answers 400 to a name the DAG does not declare; older ones pass it on."""
    strict = fake_factory(dag(params={"VERSION": "0"}), version="2.3.4")
    assert_clean_error(
        run(strict, "--dry-run", "--param", "TYPO=x"),
        2,
        r"params TYPO are not declared by deploy \(it declares VERSION\); Dagu 2\.3\.4 refuses them",
    )
    assert_clean_error(
        run(strict, "--param", "TYPO=x"), 2, r'unknown parameter\(s\): "TYPO"; accepted parameters are: VERSION'
    )
    assert not strict.runs
    lenient = fake_factory(dag(params={"VERSION": "0"}), version="2.3.3")
    result = run(lenient, "--dry-run", "--param", "TYPO=x")
    assert result.code == 0, result.output
    assert "TYPO are not declared by deploy (it declares VERSION); this Dagu passes them on" in result.stdout


TYPED = dict(
    params={"REGION": "", "COUNT": "3"},
    param_defs=[
        {"name": "REGION", "type": "string", "enum": ["eu", "us"], "required": True},
        {"name": "COUNT", "type": "integer", "minimum": 1, "maximum": 10, "default": 3},
    ],
)


def test_dry_run_checks_typed_params_as_the_server_would(fake_factory):
    server = fake_factory(dag(**TYPED), version="2.6.5")
    assert_clean_error(run(server, "--dry-run"), 2, r"param REGION is required \(deploy declares typed params\)")
    assert_clean_error(
        run(server, "--dry-run", "--param", "REGION=mars", "--param", "COUNT=x"),
        2,
        r"param REGION: 'mars' is not one of eu, us; param COUNT: 'x' is not an integer",
    )
    assert_clean_error(
        run(server, "--dry-run", "--param", "REGION=eu", "--param", "COUNT=11"),
        2,
        r"param COUNT: 11 is above the maximum 10",
    )
    assert run(server, "--dry-run", "--param", "REGION=eu", "--param", "COUNT=5").code == 0
    assert not server.runs
    # A real start is the server's to refuse; its answer reaches the user as one line.
    assert_clean_error(run(server, "--param", "REGION=eu", "--param", "COUNT=x"), 2, r'cannot coerce "x" to integer')
    untyped = fake_factory(dag(**TYPED), version="2.4.0")  # no paramDefs before 2.5: nothing to check against
    assert run(untyped, "--dry-run", "--param", "REGION=mars").code == 0


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
    assert (
        f"run is waiting for approval of gate: approve or reject it at {server.url}/dag-runs/deploy/w2" in result.stdout
    )
    assert server.get_run("deploy", "w2").status == 8


def test_queue_timeout_dequeues_a_run_that_never_started(fake_factory):
    server = fake_factory(dag(), queue_delay=None)  # no scheduler: it would wait for ever
    result = run(server, "--enqueue", "--queue-timeout", "1", "--run-id", "q1")  # so ending at all is the point
    assert result.code == 124, result.output
    assert "never started: still queued after 1s; it was dequeued" in result.stdout
    assert server.find_run("deploy", "q1") is None  # dequeued before it ran: Dagu removes it


def test_auto_retry_followed_or_not(fake_factory):
    flaky = Step("flaky", [out("try"), fail(1)], fail_attempts=1)
    # Retries wait for the test. The failed attempt shows before its last write (which schedules
    # the retry) by finalize_delay: the window a loaded machine once opened.
    server = fake_factory(dag(flaky, auto_retry_limit=1, auto_retry_delay=None), finalize_delay=1.0)
    proc = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "ar1")
    # The API serves a step's log of the latest attempt only: retry once the first one is shown.
    proc.wait_for("✖ flaky failed")
    proc.wait_for("Dagu will retry it")  # and the failed run seen, as a slow scheduler would show it
    server.start_held_auto_retry()
    followed = proc.finish()
    assert followed.code == 0, followed.output
    assert "attempt 2 of 2" in followed.stdout
    assert log_lines(followed.stdout) == ["try", "try"], followed.stdout  # the new attempt's log, from its first line
    # Said once per attempt, though both of the step's logs (stdout, stderr) start afresh.
    assert followed.stdout.count("flaky: a new attempt began; its log starts afresh") == 1, followed.stdout
    not_waited = run(server, "--run-id", "ar2", "--no-wait-auto-retry")
    assert not_waited.code == 1, not_waited.output
    assert log_lines(not_waited.stdout) == ["try"]


def test_provenance_labels(fake_factory):
    server = fake_factory(dag(), version="2.6.5")
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_RUN_ID": "9",
        "GITHUB_REPOSITORY": "acme/app",
        "GITHUB_SHA": "abc",
        "GITHUB_REF_NAME": "main",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_WORKSPACE": os.getcwd(),
    }
    result = run(server, "--run-id", "lab", "--reporter", "plain", env=env)
    assert result.code == 0, result.output
    labels = server.get_run("deploy", "lab").labels
    assert "ci=github" in labels and "sha=abc" in labels and "ref=main" in labels
    assert "ci-url=github.com/acme/app/actions/runs/9" in labels  # Dagu refuses ":" in a value


def test_labels_are_made_to_fit_what_dagu_accepts(fake_factory):
    """The fake refuses what Dagu's ValidateLabels refuses (a 400 before anything starts)."""
    server = fake_factory(dag(), version="2.6.5")
    env = {
        "JENKINS_URL": "http://ci:8080/",
        "BUILD_URL": "http://ci:8080/job/App/12/",
        "GIT_COMMIT": "ABC123",
        "BRANCH_NAME": "feature/Odd name,x",
    }
    result = run(server, "--run-id", "fit", "--cancel-superseded", "Feature/Odd name", env=env)
    assert result.code == 0, result.output
    assert server.get_run("deploy", "fit").labels == [
        "ci=jenkins",
        "ci-url=ci-8080/job/app/12/",
        "sha=abc123",
        "ref=feature/odd-name-x",
        "dagu-ci-group=feature/odd-name",
    ]
    assert_clean_error(run(server, "--cancel-superseded", "--"), 2, "needs a letter or a digit")


def test_provenance_tags_on_older_2x_and_none_before(fake_factory):
    env = {"CI_JOB_ID": "5", "GITLAB_CI": "true", "CI_COMMIT_SHA": "fff"}
    old = fake_factory(dag(), version="2.4.0")
    assert run(old, "--run-id", "t1", "--reporter", "plain", env=env).code == 0
    assert "sha=fff" in old.get_run("deploy", "t1").labels
    older = fake_factory(dag(), version="2.1.0")
    assert run(older, "--run-id", "t2", "--reporter", "plain", env=env).code == 0
    start = next(r for r in older.requests if r.method == "POST" and r.path.endswith("/start"))
    assert "labels" not in json.loads(start.body) and "tags" not in json.loads(start.body)


def test_github_post_entrypoint_stops_what_a_killed_main_step_left(fake_factory, tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT, clean_env

    server = fake_factory(dag(Step("long", [out("working"), hold("never")])), auth=("token", "tok-post"))
    action_env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(tmp_path),
        "INPUT_DAG": "deploy",
        "INPUT_URL": server.url,
        "INPUT_TOKEN": "tok-post",
        "INPUT_RUN-ID": "gh-killed",
        "INPUT_POLL-INTERVAL": "0.1",
        "GITHUB_OUTPUT": str(tmp_path / "out"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
    }
    main = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "entrypoint.py")],
        env=clean_env(action_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server.wait_for_status("deploy", "gh-killed", {1})
    eventually(lambda: list((tmp_path / ".dagu-ci").glob("run-*.json")), "the state file")
    main.kill()  # the runner's hard kill after its grace period
    main.communicate(timeout=WAIT_LIMIT)

    post = tmp_path / "bin" / "dagu-ci-post"
    post.parent.mkdir()
    post.symlink_to(os.path.join(ROOT, "entrypoint.py"))
    proc = subprocess.run(
        [sys.executable, str(post)], env=clean_env(action_env), capture_output=True, text=True, timeout=3 * WAIT_LIMIT
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "stopped run gh-killed of deploy" in proc.stdout
    assert "tok-post" not in proc.stdout + proc.stderr
    server.wait_for_status("deploy", "gh-killed", {3})


def test_cancel_superseded_stops_exactly_the_same_group(fake_factory):
    server = fake_factory(dag(Step("long", [out("working"), hold("never")])), version="2.6.5")
    older = [
        start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", run_id, "--cancel-superseded", group)
        for run_id, group in (("main-1", "main"), ("feature-1", "feature"))
    ]
    for run_id in ("main-1", "feature-1"):
        server.wait_for_status("deploy", run_id, {1})
    plain = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "no-group")
    server.wait_for_status("deploy", "no-group", {1})

    newer = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "main-2", "--cancel-superseded", "main")
    newer.wait_for("superseded: stopping run main-1")
    server.wait_for_status("deploy", "main-1", {3})
    assert older[0].finish().code == 3  # its follower sees the stop and exits as aborted
    assert "dagu-ci-group=main" in server.get_run("deploy", "main-2").labels
    assert server.get_run("deploy", "feature-1").status == 1
    assert server.get_run("deploy", "no-group").status == 1
    assert "feature-1" not in newer.stdout and "no-group" not in newer.stdout
    for proc in (older[1], plain, newer):
        proc.send_signal(signal.SIGTERM)
        proc.finish()


def test_cancel_superseded_dequeues_a_queued_run_of_the_group(fake_factory):
    server = fake_factory(dag(), version="2.6.5", queue_delay=None)  # the queued run stays queued
    queued = start_cli(
        "run", "deploy", "--url", server.url, *FAST, "--enqueue", "--run-id", "old", "--cancel-superseded", "pr-7"
    )
    server.wait_for_status("deploy", "old", {5})
    newer = run(server, "--run-id", "new", "--cancel-superseded", "pr-7")
    assert newer.code == 0, newer.output
    assert "superseded: stopping run old of deploy (dagu-ci-group=pr-7)" in newer.stdout
    assert server.find_run("deploy", "old") is None  # dequeued before it ran: Dagu removes it
    assert any(r.path.endswith("/old/dequeue") for r in server.requests)
    followed = queued.finish()
    # Dagu removes a run dequeued before it ran: its follower says so and exits 3 (aborted).
    assert followed.code == 3, followed.output
    assert "dequeued before it started" in followed.stdout and "error" not in followed.stdout


def test_a_superseded_run_stopped_does_not_count_as_our_own_stop(fake_factory):
    """The older run of the group was stopped; when our own run then cannot be stopped
    (after an error), the message must say so, not borrow the older run's stop."""
    server = fake_factory(dag(Step("long", [out("working"), hold("never")])), version="2.6.5")
    older = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "main-1", "--cancel-superseded", "main")
    server.wait_for_status("deploy", "main-1", {1})
    server.fault(
        path=r"/dag-runs/deploy/main-2$",
        method="GET",
        status=200,
        count=None,
        transform=lambda body: {"dagRunDetails": {**body["dagRunDetails"], "status": 99}},
    )
    server.fault(path=r"/dag-runs/deploy/main-2/stop$", method="POST", status=403, count=None)
    result = run(server, "--run-id", "main-2", "--cancel-superseded", "main", "--no-push")
    assert older.finish().code == 3
    assert result.code == 4, result.output
    assert "superseded: stopping run main-1" in result.output
    assert "could not stop run main-2" in result.output
    assert "the run could not be stopped" in result.output and "the run was stopped" not in result.output
    assert server.get_run("deploy", "main-2").status == 1  # still running: the stop was refused
    server.stop_run("deploy", "main-2")


def test_cancel_superseded_on_a_server_with_substring_names_and_single_status(fake_factory):
    """2.4.0 takes one `status` per query; 2.4.1+ matches `name` as a substring. Neither
    may make dagu-ci stop another DAG's run or fail with a 400."""
    long = [out("working"), hold("never")]
    for version in ("2.4.0", "2.4.1"):
        server = fake_factory(
            dag(Step("long", list(long))), Dag(file="deploy-docs", steps=[Step("long", list(long))]), version=version
        )
        other = start_cli(
            "run", "deploy-docs", "--url", server.url, *FAST, "--run-id", "docs-1", "--cancel-superseded", "main"
        )
        older = start_cli(
            "run", "deploy", "--url", server.url, *FAST, "--run-id", "main-1", "--cancel-superseded", "main"
        )
        server.wait_for_status("deploy-docs", "docs-1", {1})
        server.wait_for_status("deploy", "main-1", {1})
        newer = start_cli(
            "run", "deploy", "--url", server.url, *FAST, "--run-id", "main-2", "--cancel-superseded", "main"
        )
        newer.wait_for("superseded: stopping run main-1")
        assert older.finish().code == 3
        assert server.get_run("deploy-docs", "docs-1").status == 1, version
        assert "docs-1" not in newer.stdout
        for proc in (other, newer):
            proc.send_signal(signal.SIGTERM)
            proc.finish()


def test_spec_runs_a_dag_from_the_repository(fake_factory, tmp_path):
    spec = tmp_path / "review.yaml"
    spec.write_text("name: review\nparams:\n  - WHO: world\nsteps:\n  - name: greet\n    command: echo hello ${WHO}\n")
    for version in ("1.23.0", "2.6.5"):
        server = fake_factory(version=version)
        result = run(server, "--spec", str(spec), "--param", "WHO=ci", "--run-id", "pr-7")
        assert result.code == 0, result.output
        assert log_lines(result.stdout) == ["hello ci"], version
        assert server.get_run("review", "pr-7").status == 4
        assert not [r for r in server.requests if "/dags/" in r.path]  # nothing installed on the server


def test_spec_enqueue_and_older_servers(fake_factory, tmp_path):
    spec = tmp_path / "review.yaml"
    spec.write_text("steps:\n  - echo queued then ran\n")
    server = fake_factory(version="1.24.0")
    result = run(server, "--spec", str(spec), "--enqueue", "--run-id", "q-spec")
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == ["queued then ran"]
    assert_clean_error(
        run(fake_factory(version="1.23.0"), "--spec", str(spec), "--enqueue"),
        2,
        r"--spec with --enqueue needs Dagu 1\.24\.0 or newer; .* runs 1\.23\.0",
    )
    assert_clean_error(
        run(fake_factory(version="1.22.10"), "--spec", str(spec)), 2, r"--spec needs Dagu 1\.23\.0 or newer"
    )


def test_spec_is_checked_locally_before_anything_is_sent(fake_factory, tmp_path):
    server = fake_factory(version="2.6.5")
    broken = tmp_path / "broken.yaml"
    broken.write_text("steps:\n  - name: a\n    command: [unclosed\n")
    assert_clean_error(run(server, "--spec", str(broken)), 2, r"broken\.yaml:\d+:\d+: ")
    no_steps = tmp_path / "empty.yaml"
    no_steps.write_text("name: x\n")
    assert_clean_error(run(server, "--spec", str(no_steps)), 2, r"empty\.yaml: no steps")
    assert not [r for r in server.requests if r.method == "POST"]


def test_download_artifacts_keeps_the_tree(fake_factory, tmp_path):
    server = fake_factory(dag(artifacts={"report.html": "<p>ok</p>", "logs/deep/a.txt": "A"}), version="2.6.5")
    target = tmp_path / "artifacts"
    result = run(server, "--download-artifacts", str(target), "--run-id", "art")
    assert result.code == 0, result.output
    assert "downloaded 2 artifacts into" in result.stdout
    assert (target / "report.html").read_text() == "<p>ok</p>"
    assert (target / "logs" / "deep" / "a.txt").read_text() == "A"
    old = fake_factory(dag(artifacts={"x": "y"}), version="2.4.0")
    result = run(old, "--download-artifacts", str(tmp_path / "old"), "--run-id", "art")
    assert result.code == 0 and "the run has no artifacts to download" in result.stdout
    assert not (tmp_path / "old").exists()


def test_download_artifacts_refuses_a_path_that_escapes(fake_factory, tmp_path):
    server = fake_factory(dag(artifacts={"fine.txt": "ok"}), version="2.6.5")
    server.hostile_artifacts = ["fine.txt", "../escaped.txt"]
    target = tmp_path / "inside"
    result = run(server, "--download-artifacts", str(target), "--run-id", "evil")
    assert result.code == 0, result.output  # the run succeeded; the download did not
    assert "refusing artifact path '../escaped.txt'" in result.output
    assert not (tmp_path / "escaped.txt").exists()
    assert not (target / "fine.txt").exists()  # every path is checked before anything is written
    assert not [r for r in server.requests if r.path.endswith("/artifacts/download")]


def test_queued_run_shows_its_place_in_the_queue(fake_factory):
    import requests

    server = fake_factory(dag(), queue_delay=None)  # nothing leaves the queue
    ahead = requests.post(server.api_url + "/dags/deploy/enqueue", json={"dagRunId": "ahead"}, timeout=10)
    assert ahead.status_code == 200, ahead.text
    result = run(server, "--enqueue", "--queue-timeout", "1", "--run-id", "behind")
    assert result.code == 124, result.output
    assert "queue deploy: position 2 of 2" in result.stdout


def test_suspended_dag_is_refused_before_any_start(fake_factory):
    server = fake_factory(dag(suspended=True))
    assert_clean_error(run(server), 2, r"DAG 'deploy' is suspended .* resume it")
    assert_clean_error(run(server, "--dry-run"), 2, r"is suspended")
    assert not [r for r in server.requests if r.method == "POST"]


NOT_FOUND = '{"code":"not_found","message":"dag-run not found"}'


def test_a_started_run_the_server_shows_late_is_followed(fake_factory):
    """Real 1.30.3 can answer a start with 200 before the run exists (its start handler waits on
    the DAG's socket, which another run of the DAG answers): the first reads then get 404."""
    server = fake_factory(dag(), version="1.30.3")
    # The first read is dagu-ci's own look before it starts (404: no such run yet, so start it).
    server.fault(path=r"/dag-runs/deploy/late1$", method="GET", status=404, count=4, body=NOT_FOUND)
    result = run(server, "--run-id", "late1")
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == ["hello"], result.stdout
    starts = [r for r in server.requests if r.method == "POST" and r.path.endswith("/start")]
    assert len(starts) == 1, starts  # not a second run


def test_a_started_run_the_server_never_shows_is_an_error_not_a_wait(fake_factory):
    server = fake_factory(dag(Step("s", [out("hello"), hold("never")])), version="1.30.3")
    server.fault(path=r"/dag-runs/deploy/gone1$", method="GET", status=404, count=None, body=NOT_FOUND)
    result = run(server, "--run-id", "gone1")
    assert result.code == 4, result.output
    assert "the server accepted run gone1 of deploy but has not shown it within 15s" in result.stdout, result.stdout
    eventually(lambda: server.get_run("deploy", "gone1").status == 3, "the run stopped, not left running")
    # `follow` of a run that does not exist is still a usage error, at once.
    missing = run_cli("follow", "deploy", "nosuch", "--url", server.url, *FAST)
    assert missing.code == 2, missing.output


def test_a_retried_run_that_reads_404_for_a_moment_is_followed(fake_factory):
    """Real 1.30.3, on a loaded machine: right after a retry request the run can read 404
    while the new attempt is being made. That is "not visible yet", not an error."""
    server = fake_factory(dag(Step("flaky", [out("try"), fail(1)], fail_attempts=1)), version="1.30.3")
    assert run(server, "--run-id", "rt1").code == 1
    # Armed by dagu-ci's own look at the ended run, before it asks for the retry.
    server.fault(
        path=r"/dag-runs/deploy/rt1$", method="GET", status=404, count=2, body=NOT_FOUND, after='"dagRunDetails"'
    )
    result = run_cli("retry", "deploy", "rt1", "--follow", "--url", server.url, *FAST)
    assert result.code == 0, result.output
    assert len(server.get_run("deploy", "rt1").attempts) == 2


def test_a_run_dequeued_by_someone_else_is_aborted_though_its_aborted_write_was_seen(fake_factory):
    """Real 1.30.3's dequeue writes the run aborted, then removes it: a poll between the two
    sees "aborted" (no step ever ran), the next one 404. That is the dequeue, not an error."""
    server = fake_factory(dag(), version="1.30.3", queue_delay=None)  # the queued run stays queued
    proc = start_cli("run", "deploy", "--url", server.url, *FAST, "--enqueue", "--run-id", "dq1")
    proc.wait_for("run is queued; waiting")
    details = requests.get(f"{server.api_url}/dag-runs/deploy/dq1", timeout=10).json()
    details["dagRunDetails"].update(status=3, statusLabel="aborted")
    server.fault(path=r"/dag-runs/deploy/dq1$", method="GET", status=200, count=1, body=json.dumps(details))
    assert requests.get(f"{server.api_url}/dag-runs/deploy/dq1/dequeue", timeout=10).status_code == 200
    followed = proc.finish()
    assert followed.code == 3, followed.output
    assert "dequeued before it started" in followed.stdout and "error" not in followed.stdout


def test_a_timeout_while_waiting_for_a_late_run_is_a_timeout(fake_factory):
    """--timeout ends the wait for a run the server has not shown yet as any other: exit 124."""
    server = fake_factory(dag(Step("s", [out("hello"), hold("never")])), version="1.30.3")
    server.fault(path=r"/dag-runs/deploy/late2$", method="GET", status=404, count=None, body=NOT_FOUND)
    result = run(server, "--run-id", "late2", "--timeout", "2")
    assert result.code == 124, result.output
    assert "has not shown it" not in result.stdout, result.stdout
