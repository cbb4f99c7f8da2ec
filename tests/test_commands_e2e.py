"""The commands beside `run` (issue 4), end to end: the CLI as a subprocess against the fake."""

from __future__ import annotations

import json
import re

from tests.conftest import run_cli, start_cli
from tests.fakedagu import Dag, Step, approval, err, fail, fail_on_attempt, hold, out, output, sleep
from tests.inprocess import invoke
from tests.test_run_e2e import FAST, assert_clean_error, log_lines

AGO = r"(just now|\d+ s ago|\d+ min ago)"  # a loaded machine may take a minute between start and look


# Commands that only ask the server and print: in this process (tests/inprocess.py). What follows a
# run (run, follow, retry, stop, logs --follow) keeps a process of its own, with its signals.
IN_PROCESS = {"start", "status", "logs", "dags", "history", "outputs", "validate", "push"}


def cli(server, *args, env=None):
    in_process = args[0] in IN_PROCESS and "--follow" not in args
    return (invoke if in_process else run_cli)(*args, "--url", server.url, env=env)


def assert_start_error(result, code, pattern):
    """`start` reports progress on stderr too; the error is its one last line."""
    assert result.code == code, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("dagu-ci: error: ")]
    assert len(errors) == 1 and result.stderr.splitlines()[-1] == errors[0], result.stderr
    assert re.search(pattern, errors[0]), errors[0]


def two_steps(fail_build=False, **kwargs):
    build = [out("compiling"), err("a warning"), output("IMAGE_TAG", "v7")] + ([fail(2)] if fail_build else [])
    return Dag(
        file=kwargs.pop("file", "deploy"),
        name=kwargs.pop("name", "deploy"),
        steps=kwargs.pop("steps", [Step("build", build), Step("test", [out("tests pass")], depends=["build"])]),
        **kwargs,
    )


def finished_run(server, run_id, dag="deploy", name="deploy", status=4):
    assert cli(server, "start", dag, "--run-id", run_id).code == 0
    server.wait_for_status(name, run_id, {status})


# -- status: every exit code ------------------------------------------------------------


def test_status_succeeded_exits_0_with_a_steps_table(fake_factory):
    server = fake_factory(two_steps())
    finished_run(server, "s1")
    result = cli(server, "status", "deploy", "s1")
    assert result.code == 0, result.output
    assert re.search(rf"^deploy run s1 succeeded, started {AGO}, took (<1s|\d+s)$", result.stdout, re.M)
    assert re.search(r"^  STEP\s+STATUS\s+STARTED\s+DURATION$", result.stdout, re.M)
    assert re.search(rf"^  build\s+succeeded\s+{AGO}\s+(<1s|\d+s)$", result.stdout, re.M)
    assert f"view: {server.url}/dag-runs/deploy/s1" in result.stdout


def test_status_latest_failed_exits_1_and_json(fake_factory):
    server = fake_factory(two_steps(fail_build=True))
    finished_run(server, "f1", status=2)
    assert cli(server, "status", "deploy", "latest").code == 1
    result = cli(server, "status", "deploy", "--json")  # latest by default
    assert result.code == 1, result.output
    document = json.loads(result.stdout)
    assert document["run_id"] == "f1" and document["status"] == "failed" and document["exit_code"] == 1
    assert [s["status"] for s in document["steps"]] == ["failed", "aborted"]


def test_status_aborted_exits_3_running_exits_5(fake_factory):
    server = fake_factory(two_steps(steps=[Step("long", [out("x"), hold("never")])]))
    assert cli(server, "start", "deploy", "--run-id", "a1").code == 0
    server.wait_for_status("deploy", "a1", {1})
    result = cli(server, "status", "deploy", "a1")
    assert result.code == 5, result.output
    assert "running" in result.stdout
    server.stop_run("deploy", "a1")
    server.wait_for_status("deploy", "a1", {3})
    assert cli(server, "status", "deploy", "a1").code == 3


def test_status_rejected_exits_3_waiting_exits_5(fake_factory):
    server = fake_factory(two_steps(steps=[Step("gate", [approval()])]))
    assert cli(server, "start", "deploy", "--run-id", "w1").code == 0
    server.wait_for_status("deploy", "w1", {7})
    assert cli(server, "status", "deploy", "w1").code == 5
    server.reject("deploy", "w1", "gate")
    server.wait_for_status("deploy", "w1", {8})
    assert cli(server, "status", "deploy", "w1").code == 3


def test_status_queued_exits_5(fake_factory):
    server = fake_factory(two_steps(), queue_delay=None)
    assert cli(server, "start", "deploy", "--enqueue", "--run-id", "q1").code == 0
    result = cli(server, "status", "deploy", "q1")
    assert result.code == 5, result.output
    assert "queued" in result.stdout


def test_status_without_a_run_exits_6_unknown_dag_exits_2(fake_factory):
    server = fake_factory(two_steps())
    assert_clean_error(cli(server, "status", "deploy", "latest"), 6, r"deploy never ran")
    assert_clean_error(cli(server, "status", "deploy", "nope"), 6, r"deploy has no run 'nope'")
    result = cli(server, "status", "deploy", "--json")
    assert result.code == 6 and json.loads(result.stdout)["run_id"] is None
    assert_clean_error(cli(server, "status", "ghost"), 2, r"DAG 'ghost' not found")


# -- start, follow ------------------------------------------------------------------------


def test_start_prints_only_the_run_id_and_follow_attaches(fake_factory):
    server = fake_factory(
        two_steps(
            steps=[Step("build", [out("compiling {VERSION}"), sleep(0.5), out("built")])], params={"VERSION": "0"}
        )
    )
    result = cli(server, "start", "deploy", "VERSION=1.2.3")
    assert result.code == 0, result.output
    run_id = result.stdout.strip()
    assert re.fullmatch(r"[-\w]+", run_id)
    assert f"started run {run_id} of deploy" in result.stderr
    assert server.get_run("deploy", run_id).parsed_params["VERSION"] == "1.2.3"
    followed = cli(server, "follow", "deploy", run_id, *FAST)
    assert followed.code == 0, followed.output
    assert log_lines(followed.stdout) == ["compiling 1.2.3", "built"]
    assert f"attached to existing run {run_id} of deploy" in followed.stdout
    assert re.search(rf"deploy run {run_id} succeeded in (<1s|\d+s); exit code 0", followed.stdout)


def test_start_json_and_singleton_conflict_exits_4(fake_factory):
    server = fake_factory(two_steps(steps=[Step("long", [hold("never")])]))
    result = cli(server, "start", "deploy", "--run-id", "j1", "--json")
    assert json.loads(result.stdout) == {
        "dag": "deploy",
        "name": "deploy",
        "run_id": "j1",
        "url": f"{server.url}/dag-runs/deploy/j1",
    }
    server.wait_for_status("deploy", "j1", {1})
    assert_start_error(cli(server, "start", "deploy", "--singleton"), 4, r"--singleton")
    assert_start_error(cli(server, "start", "ghost"), 2, r"not found")


def test_follow_an_already_finished_run_replays_it_and_exits_with_its_status(fake_factory):
    server = fake_factory(two_steps(fail_build=True))
    finished_run(server, "done", status=2)
    result = cli(server, "follow", "deploy", "latest", *FAST, "--json")
    assert result.code == 1, result.output
    assert "compiling" in result.stderr and "✖ build failed" in result.stderr  # with --json, the log is on stderr
    document = json.loads(result.stdout)
    assert document["run_id"] == "done" and document["exit_code"] == 1


def test_follow_unknown_run_is_a_usage_error(fake_factory):
    server = fake_factory(two_steps())
    assert_clean_error(cli(server, "follow", "deploy", "nope"), 2, r"deploy has no run 'nope'")


# -- stop -------------------------------------------------------------------------------


def test_stop_running_with_wait_and_dequeue_a_queued_run(fake_factory):
    server = fake_factory(two_steps(steps=[Step("long", [hold("never")])]), queue_delay=None)
    assert cli(server, "start", "deploy", "--run-id", "r1").code == 0
    server.wait_for_status("deploy", "r1", {1})
    result = cli(server, "stop", "deploy", "r1", "--wait", "60")  # a bound: it returns once the run is aborted
    assert result.code == 0, result.output
    assert "run r1 is aborted" in result.stdout
    assert cli(server, "start", "deploy", "--enqueue", "--run-id", "q1").code == 0
    result = cli(server, "stop", "deploy", "q1", "--json")
    assert result.code == 0, result.output
    assert json.loads(result.stdout) == {
        "dag": "deploy",
        "name": "deploy",
        "run_id": "q1",
        "action": "dequeued",
        "status": "queued",
    }
    assert "stop requested for run q1" in result.stderr  # with --json, people's lines go to stderr
    assert server.find_run("deploy", "q1") is None  # dequeued before it ran: Dagu removes it
    assert any(r.path.endswith("/q1/dequeue") for r in server.requests)
    ended = json.loads(cli(server, "stop", "deploy", "r1", "--json").stdout)
    assert (ended["action"], ended["status"]) == ("none", "aborted")


# -- logs -------------------------------------------------------------------------------


def test_logs_every_step_with_headers_one_step_stderr_and_tail(fake_factory):
    server = fake_factory(two_steps())
    finished_run(server, "l1")
    result = cli(server, "logs", "deploy", "l1")
    assert result.code == 0, result.output
    assert result.stdout.splitlines() == [
        "── build (succeeded) ──",
        "compiling",
        "── test (succeeded) ──",
        "tests pass",
    ]
    assert cli(server, "logs", "deploy", "l1", "--step", "build", "--stderr").stdout == "a warning\n"
    assert cli(server, "logs", "deploy", "latest", "--step", "test", "--tail", "1").stdout == "tests pass\n"
    document = json.loads(cli(server, "logs", "deploy", "l1", "--json").stdout)
    assert document["steps"][0] == {"name": "build", "status": "succeeded", "lines": ["compiling"]}
    assert_clean_error(cli(server, "logs", "deploy", "l1", "--step", "nope"), 2, r"no step 'nope'")


def test_logs_follow_streams_one_step_until_the_run_ends(fake_factory):
    steps = [Step("a", [out("a1"), hold("a2"), out("a2")]), Step("b", [out("b1")], depends=["a"])]
    server = fake_factory(two_steps(steps=steps))
    assert cli(server, "start", "deploy", "--run-id", "lf").code == 0
    proc = start_cli("logs", "deploy", "lf", "--follow", "--step", "a", "--url", server.url, *FAST)
    proc.wait_for("a1")  # while the step runs
    server.release("a2")
    result = proc.finish()
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == ["a1", "a2"]
    assert server.get_run("deploy", "lf").status == 4


# -- dags, history, outputs ---------------------------------------------------------------


def test_dags_table_and_json(fake_factory):
    server = fake_factory(
        two_steps(schedule=["0 3 * * *"]), Dag(file="idle", steps=[Step("x", [out("x")])], suspended=True)
    )
    finished_run(server, "d1")
    result = cli(server, "dags")
    assert result.code == 0, result.output
    assert re.search(r"^FILE\s+NAME\s+SCHEDULE\s+SUSPENDED\s+LATEST\s+STARTED$", result.stdout, re.M)
    assert re.search(rf"^deploy\s+deploy\s+0 3 \* \* \*\s+no\s+succeeded\s+{AGO}$", result.stdout, re.M)
    assert re.search(r"^idle\s+idle\s+-\s+yes\s+never ran\s+-$", result.stdout, re.M)
    document = json.loads(cli(server, "dags", "--json").stdout)
    assert document[0]["latest_run_id"] == "d1" and document[1]["latest_status"] is None


def test_history_newest_first_with_limit(fake_factory):
    server = fake_factory(two_steps())
    for run_id in ("h1", "h2", "h3"):
        finished_run(server, run_id)
    result = cli(server, "history", "deploy", "--limit", "2")
    assert result.code == 0, result.output
    rows = result.stdout.splitlines()
    assert re.match(r"RUN ID\s+STATUS\s+STARTED\s+DURATION", rows[0])
    assert [row.split()[0] for row in rows[1:]] == ["h3", "h2"]
    assert [r["run_id"] for r in json.loads(cli(server, "history", "deploy", "--json").stdout)] == ["h3", "h2", "h1"]


def test_outputs_lines_and_json(fake_factory):
    server = fake_factory(two_steps())
    finished_run(server, "o1")
    result = cli(server, "outputs", "deploy", "o1")
    assert result.code == 0, result.output
    assert result.stdout == "imageTag=v7\n"
    assert json.loads(cli(server, "outputs", "deploy", "latest", "--json").stdout) == {"imageTag": "v7"}


# -- retry ------------------------------------------------------------------------------


def test_retry_step_follow_runs_only_that_step_from_a_new_log(fake_factory):
    steps = [Step("build", [out("built once")]), Step("flaky", [out("try"), fail_on_attempt(1)], depends=["build"])]
    server = fake_factory(two_steps(steps=steps))
    finished_run(server, "r1", status=2)
    assert cli(server, "status", "deploy", "r1").code == 1
    result = cli(server, "retry", "deploy", "r1", "--step", "flaky", "--follow", *FAST)
    assert result.code == 0, result.output
    assert "retry requested for run r1, step flaky only" in result.stdout
    assert re.search(r"deploy run r1 succeeded", result.stdout)
    run = server.get_run("deploy", "r1")
    assert len(run.attempts) == 2
    assert run.attempt.nodes["build"].stdout == run.attempts[0].nodes["build"].stdout  # not run again
    assert run.attempt.nodes["flaky"].stdout != run.attempts[0].nodes["flaky"].stdout  # a new log file
    assert log_lines(result.stdout) == ["try"]  # only the new attempt's log: build did not run again


def test_retry_without_follow_and_of_an_active_run(fake_factory):
    server = fake_factory(two_steps(fail_build=True))
    finished_run(server, "r2", status=2)
    result = cli(server, "retry", "deploy", "r2")
    assert result.code == 0, result.output
    server.wait_for_status("deploy", "r2", {2})
    assert len(server.get_run("deploy", "r2").attempts) == 2
    slow = fake_factory(two_steps(steps=[Step("long", [hold("never")])]))
    assert cli(slow, "start", "deploy", "--run-id", "busy").code == 0
    slow.wait_for_status("deploy", "busy", {1})
    assert_clean_error(cli(slow, "retry", "deploy", "busy"), 2, r"still running")


def test_retry_follow_on_a_1x_server(fake_factory):
    # 1.x retries the body's run id, not the path's (API.md §5.2): dagu-ci sends the same one.
    steps = [Step("flaky", [out("try"), fail_on_attempt(1)])]
    server = fake_factory(two_steps(steps=steps), version="1.30.3")
    finished_run(server, "r1", status=2)
    result = cli(server, "retry", "deploy", "r1", "--follow", *FAST)
    assert result.code == 0, result.output
    assert re.search(r"deploy run r1 succeeded", result.stdout)
    assert len(server.get_run("deploy", "r1").attempts) == 2
    assert log_lines(result.stdout) == ["try"]  # the new attempt's log only


def test_help_of_every_command_has_an_example():
    for command in (
        "run",
        "start",
        "follow",
        "status",
        "logs",
        "stop",
        "retry",
        "dags",
        "history",
        "outputs",
        "validate",
        "push",
    ):
        result = invoke(command, "--help")
        assert result.code == 0 and "Example" in result.stdout, command


# -- validate ---------------------------------------------------------------------------


def test_validate_local_and_server_errors_exit_1_valid_exit_0(fake_factory, tmp_path):
    server = fake_factory(two_steps())
    good = tmp_path / "good.yaml"
    good.write_text("name: good\nsteps:\n  - name: a\n    command: echo hi\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("steps:\n  - name: a\n   command: echo\n")
    server_only = tmp_path / "nocmd.yaml"
    server_only.write_text("steps:\n  - name: lonely\n")
    result = cli(server, "validate", str(good))
    assert result.code == 0, result.output
    assert f"valid: {good} (good; checked locally and by the server)" in result.stdout
    result = cli(server, "validate", str(good), str(broken), str(server_only))
    assert result.code == 1, result.output
    assert re.search(rf"^invalid: {re.escape(str(broken))}:3:\d+: ", result.stdout, re.M)
    assert f"invalid: {server_only}: step lonely: either command, script or call must be specified" in result.stdout
    local = invoke("validate", "--local", str(server_only), "--url", "http://127.0.0.1:9", "--json")
    assert local.code == 0 and json.loads(local.stdout)[0]["server_checked"] is False


# -- push -------------------------------------------------------------------------------

ECHO = "steps:\n  - name: a\n    command: echo {}\n"


def dag_files(tmp_path, **texts):
    """{name: text} written as tmp_path/NAME.yaml; their paths, in order."""
    paths = []
    for name, text in texts.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        paths.append(str(path))
    return paths


def writes(server):
    """Requests that change DAG files (POST /dags/validate only reads)."""
    return [
        f"{r.method} {r.path}"
        for r in server.requests
        if r.method in ("PUT", "POST", "DELETE") and not r.path.endswith("/dags/validate")
    ]


def test_push_creates_updates_leaves_unchanged_and_the_dag_runs(fake_factory, tmp_path):
    server = fake_factory(two_steps())
    deploy, etl = dag_files(tmp_path, deploy=ECHO.format("deployed"), etl=ECHO.format("extracted"))
    result = cli(server, "push", deploy, etl, "--create")
    assert result.code == 0, result.output
    assert result.stdout.splitlines() == [f"updated: {deploy} (deploy)", f"created: {etl} (etl)"]
    assert server.dag_spec("deploy") == ECHO.format("deployed") and server.dag_spec("etl") == ECHO.format("extracted")
    server.clear_requests()
    again = cli(server, "push", deploy, etl, "--json")
    assert again.code == 0, again.output
    assert [(f["file"], f["result"]) for f in json.loads(again.stdout)] == [
        ("deploy", "unchanged"),
        ("etl", "unchanged"),
    ]
    assert writes(server) == []  # an unchanged file is not written again
    ran = run_cli("run", "etl", "--url", server.url, *FAST)
    assert ran.code == 0, ran.output
    assert log_lines(ran.stdout) == ["extracted"]


def test_push_of_an_invalid_file_changes_nothing(fake_factory, tmp_path):
    server = fake_factory(two_steps())
    before = server.dag_specs
    good, broken, no_command = dag_files(
        tmp_path,
        deploy=ECHO.format("new"),
        broken="steps:\n  - name: a\n   command: x\n",
        nocmd="steps:\n  - name: lonely\n",
    )
    result = cli(server, "push", good, broken, no_command, "--create")
    assert result.code == 1, result.output
    assert re.search(rf"^invalid: {re.escape(broken)}:3:\d+: ", result.stdout, re.M)
    assert f"invalid: {no_command}: step lonely: either command, script or call must be specified" in result.stdout
    assert result.stdout.splitlines()[-1] == f"push: nothing changed on {server.url}"
    assert server.dag_specs == before and writes(server) == []
    document = json.loads(cli(server, "push", good, broken, "--json").stdout)
    assert [f["result"] for f in document] == ["skipped", "invalid"]
    assert server.dag_specs == before and writes(server) == []


def test_push_of_a_dag_the_server_lacks_needs_create(fake_factory, tmp_path):
    server = fake_factory(two_steps())
    before = server.dag_specs
    deploy, etl = dag_files(tmp_path, deploy=ECHO.format("new"), etl=ECHO.format("x"))
    result = cli(server, "push", deploy, etl)
    assert result.code == 1, result.output
    assert result.stdout.splitlines() == [
        f"missing: {etl}: etl is not on {server.url}; --create adds it",
        f"push: nothing changed on {server.url}",
    ]
    assert server.dag_specs == before and writes(server) == []


def test_push_undoes_its_writes_when_a_later_one_fails(fake_factory, tmp_path):
    server = fake_factory(two_steps(), Dag(file="etl", steps=[Step("a", [out("x")])]))
    before = server.dag_specs
    new, deploy, etl = dag_files(tmp_path, new=ECHO.format("n"), deploy=ECHO.format("d"), etl=ECHO.format("e"))
    server.fault(path=r"/dags/etl/spec$", method="PUT", status=400, body='{"code":"bad_request","message":"no"}')
    result = cli(server, "push", new, deploy, etl, "--create")
    assert_clean_error(result, 4, r"HTTP 400 bad_request: no .*; nothing changed \(undid 2 earlier writes\)$")
    assert server.dag_specs == before
    # Newest first; the refused PUT wrote nothing, so etl is left alone.
    assert writes(server)[-3:] == [
        "PUT /api/v1/dags/etl/spec",
        "PUT /api/v1/dags/deploy/spec",
        "DELETE /api/v1/dags/new",
    ]
    # An undo that fails is said, with what is left changed.
    server.fault(path=r"/dags/etl/spec$", method="PUT", status=400, body='{"code":"bad_request","message":"no"}')
    server.fault(path=r"/dags/new$", method="DELETE", status=400, body='{"code":"bad_request","message":"stuck"}')
    result = cli(server, "push", new, deploy, etl, "--create")
    assert_clean_error(result, 4, rf"; could not undo the push of {re.escape(new)}: .*stuck")
    assert server.dag_spec("new") == ECHO.format("n") and server.dag_spec("deploy") == before["deploy"]


def test_push_to_1_22_creates_then_writes_and_undoes_a_refusal(fake_factory, tmp_path):
    # Before 1.23 POST /dags ignores the spec (a template is written, the text follows in a
    # PUT) and there is no /dags/validate: only the write itself checks on the server.
    server = fake_factory(two_steps(), version="1.22.10")
    etl, deploy, lonely = dag_files(
        tmp_path, etl=ECHO.format("e"), deploy=ECHO.format("d"), lonely="steps:\n  - name: lonely\n"
    )
    result = cli(server, "push", etl, "--create")
    assert result.code == 0 and result.stdout == f"created: {etl} (etl)\n", result.output
    assert server.dag_spec("etl") == ECHO.format("e")
    before = server.dag_specs
    refused = cli(server, "push", deploy, lonely, "--create")
    assert refused.code == 1, refused.output
    assert refused.stdout.splitlines() == [
        f"refused: {lonely}: step lonely: either command, script or call must be specified",
        f"push: nothing changed on {server.url} (undid 1 earlier write)",
    ]
    assert server.dag_specs == before


def test_push_usage_and_server_errors_are_one_line(fake_factory, tmp_path):
    (deploy,) = dag_files(tmp_path, deploy=ECHO.format("d"))
    other = tmp_path / "sub"
    other.mkdir()
    (other / "deploy.yml").write_text(ECHO.format("d"))
    assert_clean_error(invoke("push", deploy, str(other / "deploy.yml")), 2, r"both the DAG file 'deploy'")
    assert_clean_error(invoke("push", deploy, "--url", "not a url"), 2, r"bad --url")
    locked = fake_factory(two_steps(), auth=("token", "s3cret"))
    assert_clean_error(invoke("push", deploy, "--url", locked.url, "--token", "wrong"), 2, r"authentication refused")
    server = fake_factory(two_steps())
    server.dag_writes_allowed = False
    result = cli(server, "push", deploy)
    assert_clean_error(
        result, 2, r"Insufficient permissions \(a CI key needs the developer role or higher\); nothing changed$"
    )
    legacy = fake_factory(two_steps(), version="1.16.12")
    assert_clean_error(cli(legacy, "push", deploy), 2, r"needs Dagu 1\.17 or newer")
    (spaced,) = dag_files(tmp_path, **{"my dag": ECHO.format("d")})
    result = cli(server, "push", spaced, "--create")
    assert result.code == 1 and "only letters, digits, '_', '.' and '-'" in result.stdout, result.output
