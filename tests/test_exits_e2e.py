"""How dagu-ci ends and what it leaves (issue 10): a closed stdout, `--json` documents,
output paths checked before the run, and what a CI host gets from an error."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import WAIT_LIMIT, clean_env, cli_command, eventually, run_cli, start_cli
from tests.fakedagu import Dag, Step, fail, hold, out, output
from tests.hosttools import run_entrypoint
from tests.reporting import Runner as WorkflowLog
from tests.test_run_e2e import FAST
from tests.tlsfiles import make_tls_files


def slow_dag():
    return Dag(
        file="slow",
        name="slow",
        steps=[Step("work", [out("line 1"), out("line 2"), out("line 3"), out("line 4"), hold("never"), out("done")])],
    )


def ok_dag(fails=False):
    steps = [out("hello"), output("IMAGE_TAG", "v7")] + ([fail(1)] if fails else [])
    return Dag(file="ok", name="ok", steps=[Step("build", steps), Step("test", [out("tests pass")], depends=["build"])])


def state_files(directory):
    return sorted(p.name for p in directory.glob("run-*.json")) if directory.exists() else []


# -- 2. a closed stdout is a cancellation ---------------------------------------------------


@pytest.mark.parametrize("command", ["run", "follow"])
def test_closed_stdout_stops_the_run_and_exits_141(fake_factory, tmp_path, command):
    """`dagu-ci run slow | head -3`: the reader goes away; the run must not be orphaned."""
    server = fake_factory(slow_dag())
    state_dir = tmp_path / "state"
    if command == "follow":
        assert run_cli("start", "slow", "--url", server.url, "--run-id", "pipe").code == 0
        args = ["follow", "slow", "pipe"]
    else:
        args = ["run", "slow", "--run-id", "pipe"]
    proc = subprocess.Popen(
        cli_command(*args, "--url", server.url, *FAST, "--state-dir", str(state_dir)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    try:
        head = [proc.stdout.readline() for _ in range(3)]  # what `head -3` reads
        server.wait_for_status("slow", "pipe", {1})
        proc.stdout.close()  # ...and `head` exits
        stderr = proc.stderr.read().decode()
        proc.wait(timeout=2 * WAIT_LIMIT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert all(line.startswith(b"dagu-ci: ") for line in head), head
    assert proc.returncode == 141, stderr
    assert server.get_run("slow", "pipe").status == 3  # stopped (aborted), not left running
    assert state_files(state_dir) == []
    assert "stdout was closed" in stderr and "run pipe of slow was stopped" in stderr
    assert "Exception ignored" not in stderr and "Traceback" not in stderr and "BrokenPipe" not in stderr


def test_closed_stdout_ends_logs_follow_and_leaves_the_run_alone(fake_factory):
    """`logs --follow | head -1` must not wait for the run to end; the run is not its to stop."""
    server = fake_factory(slow_dag())
    assert run_cli("start", "slow", "--url", server.url, "--run-id", "l1").code == 0
    server.wait_for_status("slow", "l1", {1})
    proc = subprocess.Popen(
        cli_command("logs", "slow", "l1", "--follow", "--url", server.url, *FAST),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    try:
        proc.stdout.readline()
        proc.stdout.close()
        stderr = proc.stderr.read().decode()
        proc.wait(timeout=2 * WAIT_LIMIT)  # the run goes on: this is the follow ending
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 141, stderr
    assert stderr == ""
    assert server.get_run("slow", "l1").status == 1
    server.stop_run("slow", "l1")


# -- 3. --json: stdout is one document ---------------------------------------------------------


def test_run_json_is_the_document_alone_and_people_read_stderr(fake_factory):
    server = fake_factory(ok_dag())
    result = run_cli("run", "ok", "--url", server.url, *FAST, "--json", "--run-id", "j1")
    assert result.code == 0, result.output
    document = json.loads(result.stdout)
    assert document["status"] == "succeeded" and document["outputs"] == {"imageTag": "v7"}
    assert "dagu-ci: started run j1 of ok" in result.stderr
    assert "hello" in result.stderr and "ok run j1 succeeded" in result.stderr


def test_status_json_carries_the_outputs(fake_factory):
    server = fake_factory(ok_dag())
    assert run_cli("run", "ok", "--url", server.url, *FAST, "--run-id", "o1").code == 0
    outputs = json.loads(run_cli("outputs", "ok", "o1", "--url", server.url, "--json").stdout)
    assert outputs == {"imageTag": "v7"}
    status = run_cli("status", "ok", "o1", "--url", server.url, "--json")
    assert json.loads(status.stdout)["outputs"] == outputs


def _json_commands(tmp_path):
    dag_file = tmp_path / "ok.yaml"
    dag_file.write_text("steps:\n  - name: build\n    command: echo hi\n")
    absent = tmp_path / "absent.yaml"  # a DAG the server lacks: push fails (exit 1) without --create
    absent.write_text(dag_file.read_text())
    return {
        "run": ["run", "ok", *FAST],
        "follow": ["follow", "ok", "done", *FAST],
        "retry --follow": ["retry", "ok", "done", "--follow", *FAST],
        "retry": ["retry", "ok", "done", *FAST],
        "start": ["start", "ok"],
        "status": ["status", "ok", "done"],
        "logs": ["logs", "ok", "done"],
        "dags": ["dags"],
        "history": ["history", "ok"],
        "outputs": ["outputs", "ok", "done"],
        "validate": ["validate", str(dag_file)],
        "push": ["push", str(absent)],
        "stop": ["stop", "ok", "done"],
        "stop --from-state": ["stop", "--from-state", "--state-dir", str(tmp_path / "none")],
    }


JSON_COMMANDS = [
    "run",
    "follow",
    "retry --follow",
    "retry",
    "start",
    "status",
    "logs",
    "dags",
    "history",
    "outputs",
    "validate",
    "push",
    "stop",
    "stop --from-state",
]


@pytest.mark.parametrize("name", JSON_COMMANDS)
def test_every_json_command_prints_one_document_on_stdout(fake_factory, tmp_path, name):
    # Over TLS, so that --insecure has a warning for people to show (it has none on http://).
    tls = make_tls_files(str(tmp_path))
    server = fake_factory(ok_dag(), tls=tls.server_context(False))
    assert run_cli("run", "ok", "--url", server.url, *FAST, "--run-id", "done", "--ca-cert", tls.ca).code == 0
    args = _json_commands(tmp_path)[name]
    result = run_cli(*args, "--url", server.url, "--json", "--insecure")
    assert result.code == (1 if name == "push" else 0), result.output
    json.loads(result.stdout)  # exactly one document: extra text makes this fail
    assert "Traceback" not in result.output
    # People's lines: on stderr (`stop --from-state` with no state makes no client to warn about).
    assert ("nothing to stop" if name == "stop --from-state" else "TLS verification is off") in result.stderr
    if name in ("run", "follow", "retry --follow"):
        assert "dagu-ci: summary" in result.stderr
    if name == "push":
        assert "push: nothing changed" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["run", "nope", *FAST],
        ["follow", "nope", "x"],
        ["retry", "nope", "x", "--follow"],
        ["start", "nope"],
        ["logs", "nope"],
        ["history", "nope"],
        ["outputs", "nope"],
        ["stop", "nope", "x"],
        ["status", "nope"],
    ],
    ids=lambda args: args[0] + (" --follow" if "--follow" in args else ""),
)
def test_json_errors_leave_stdout_empty(fake_factory, args):
    server = fake_factory(ok_dag())
    result = run_cli(*args, "--url", server.url, "--json")
    assert result.code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1].startswith("dagu-ci: error: ")


# -- 5. output paths are checked before anything starts -----------------------------------------


def _bad_path_cases(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    return [
        (["--result-file", "/proc/nope/r.json"], {}, "--result-file"),
        (["--result-file", str(a_file / "r.json")], {}, "--result-file"),
        (["--junit", "/proc/nope/j.xml"], {}, "--junit"),
        (["--download-artifacts", "/proc/nope/artifacts"], {}, "--download-artifacts"),
        (["--download-artifacts", str(a_file)], {}, "--download-artifacts"),
        (["--state-dir", "/proc/nope"], {}, "--state-dir"),
        ([], {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": "/proc/nope/out"}, "GITHUB_OUTPUT"),
        ([], {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": "/proc/nope/sum"}, "GITHUB_STEP_SUMMARY"),
        ([], {"GITLAB_CI": "true", "DAGU_DOTENV": "/proc/nope/dagu.env"}, "DAGU_DOTENV"),
    ]


@pytest.mark.parametrize("case", range(9))
def test_unwritable_output_path_is_exit_2_before_the_server_is_asked(fake_factory, tmp_path, case):
    args, env, named = _bad_path_cases(tmp_path)[case]
    server = fake_factory(ok_dag())
    result = run_cli("run", "ok", "--url", server.url, *FAST, *args, env=env)
    assert result.code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("dagu-ci: error: ")]
    assert len(errors) == 1 and named in errors[0], result.stderr
    assert "Traceback" not in result.output
    assert server.requests == []  # checked before contacting the server
    assert server.runs == []


def test_dry_run_checks_paths_and_creates_no_files(fake_factory, tmp_path):
    server = fake_factory(ok_dag())
    result = run_cli(
        "run",
        "ok",
        "--url",
        server.url,
        "--dry-run",
        "--result-file",
        str(tmp_path / "out" / "r.json"),
        "--junit",
        str(tmp_path / "j.xml"),
        "--download-artifacts",
        str(tmp_path / "art"),
        "--state-dir",
        str(tmp_path / "state"),
    )
    assert result.code == 0, result.output
    assert sorted(os.listdir(tmp_path)) == []  # nothing created, no probe left behind
    bad = run_cli("run", "ok", "--url", server.url, "--dry-run", "--junit", "/proc/nope/j.xml")
    assert bad.code == 2, bad.output


def test_a_report_that_cannot_be_written_after_the_run_keeps_its_exit_code(fake_factory, tmp_path):
    server = fake_factory(Dag(file="ok", name="ok", steps=[Step("build", [out("hello"), hold("end"), fail(1)])]))
    (tmp_path / "out").mkdir()
    state_dir = tmp_path / "state"
    proc = start_cli(
        "run",
        "ok",
        "--url",
        server.url,
        *FAST,
        "--run-id",
        "w1",
        "--state-dir",
        str(state_dir),
        "--result-file",
        str(tmp_path / "out" / "r.json"),
    )
    server.wait_for_status("ok", "w1", {1})
    (tmp_path / "out").rmdir()
    (tmp_path / "out").write_text("now a file: the result cannot go there")  # checked fine, fails at the end
    server.release("end")  # the run ends only now, however slow the machine
    result = proc.finish()
    assert result.code == 1, result.output  # the run failed: 1, not 4
    assert "ok run w1 failed" in result.stdout  # the summary line is not lost
    assert "could not write" in result.stdout and "r.json" in result.stdout
    assert "internal error" not in result.output and "Traceback" not in result.output
    assert state_files(state_dir) == []


# -- 7. a host hears about every error ---------------------------------------------------------


def github_env(tmp_path, **extra):
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
        "INPUT_POLL-INTERVAL": "0.1",
        "INPUT_TOKEN": "tok-s3cret",
        **extra,
    }


def github_outputs(tmp_path):
    values = {}
    for line in (tmp_path / "output").read_text().splitlines():
        key, _, value = line.partition("=")
        values[key] = value  # the last value of a name wins
    return values


@pytest.mark.parametrize(
    "case, code, said",
    [
        ("unreachable", 4, "unreachable"),
        ("unknown dag", 2, "not found"),
        ("refused auth", 2, "auth"),
        ("bad input", 2, "timeout"),
        ("missing dag", 2, "input dag is required"),
    ],
)
def test_github_errors_before_the_run_leave_annotation_outputs_and_summary(fake_factory, tmp_path, case, code, said):
    server = fake_factory(ok_dag(), auth=("token", "tok-s3cret" if case != "refused auth" else "another"))
    inputs = {"INPUT_DAG": "ok", "INPUT_URL": server.url, "INPUT_START-TIMEOUT": "0"}
    if case == "unreachable":
        inputs["INPUT_URL"] = "http://127.0.0.1:9"
    elif case == "unknown dag":
        inputs["INPUT_DAG"] = "nope"
    elif case == "bad input":
        inputs["INPUT_TIMEOUT"] = "soon"
    elif case == "missing dag":
        del inputs["INPUT_DAG"]
    proc = run_entrypoint(env=github_env(tmp_path, **inputs), cwd=tmp_path)
    assert proc.returncode == code, proc.stdout + proc.stderr
    log = WorkflowLog.read(proc.stdout)
    (error,) = log.named("error")
    assert said in error.data.lower(), error.data
    assert github_outputs(tmp_path) == {"status": "error", "exit-code": str(code)}
    summary = (tmp_path / "summary").read_text()
    assert "❌" in summary and f"exit code {code}" in summary
    everything = proc.stdout.replace("::add-mask::tok-s3cret\n", "") + proc.stderr + summary
    assert "tok-s3cret" not in everything + (tmp_path / "output").read_text()
    assert "Traceback" not in everything


def test_github_error_text_from_the_server_stays_data(fake_factory, tmp_path):
    server = fake_factory(ok_dag())
    hostile = "refused\n::warning::pwned %0A::set-output name=x::y\n| cell | [link](http://evil) <b>"
    server.fault(
        r"/dags/ok/start$",
        method="POST",
        status=400,
        count=None,
        body=json.dumps({"code": "bad_request", "message": hostile}),
    )
    proc = run_entrypoint(env=github_env(tmp_path, INPUT_DAG="ok", INPUT_URL=server.url), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    log = WorkflowLog.read(proc.stdout)
    assert {c.name for c in log.commands} <= {"add-mask", "error"}
    (error,) = log.named("error")
    assert "::warning::pwned %0A::set-output" in error.data  # one line of data, not commands
    # In the summary the error sits whole in a code block: no link, no HTML, no table cell.
    summary = (tmp_path / "summary").read_text()
    assert f"\n```\nthe server refused to start ok: {' '.join(hostile.split())}\n```\n" in summary
    assert summary.count("```") == 2
    assert github_outputs(tmp_path) == {"status": "error", "exit-code": "2"}


def test_gitlab_dotenv_carries_the_exit_code_of_an_error(tmp_path):
    env = {"GITLAB_CI": "true", "DAGU_DOTENV": str(tmp_path / "dagu.env")}
    result = run_cli("run", "ok", "--url", "http://127.0.0.1:9", "--start-timeout", "0", env=env)
    assert result.code == 4, result.output
    dotenv = dict(line.split("=", 1) for line in (tmp_path / "dagu.env").read_text().splitlines())
    assert dotenv["DAGU_EXIT_CODE"] == "4" and dotenv["DAGU_STATUS"] == "error"
    assert dotenv.get("DAGU_RUN_DAG") == "ok"


def test_an_error_mid_run_stops_the_run_and_reaches_github(fake_factory, tmp_path):
    """The token is refused halfway (revoked): the stop still goes out, and the host hears of the error."""
    import sys

    from tests.hosttools import BIN, ENTRYPOINT

    server = fake_factory(slow_dag())
    env = {
        "PATH": f"{BIN}{os.pathsep}/usr/bin:/bin",
        "PYTHONUNBUFFERED": "1",
        **github_env(tmp_path, INPUT_DAG="slow", INPUT_URL=server.url, **{"INPUT_RUN-ID": "m1"}),
    }
    proc = subprocess.Popen(
        [sys.executable, ENTRYPOINT], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        server.wait_for_status("slow", "m1", {1})
        eventually(
            lambda: "run-id=m1" in ((tmp_path / "output").read_text() if (tmp_path / "output").exists() else ""),
            "the run-id output",
        )
        server.fault(
            r"/dag-runs/slow/m1$",
            method="GET",
            status=401,
            count=None,
            body=json.dumps({"code": "unauthorized", "message": "token revoked"}),
        )
        stdout, stderr = proc.communicate(timeout=2 * WAIT_LIMIT)
    finally:
        if proc.poll() is None:
            proc.kill()
    server.clear_faults()
    assert proc.returncode == 2, stdout.decode() + stderr.decode()
    assert any(r.path.endswith("/dag-runs/slow/m1/stop") for r in server.requests)  # stopped, not orphaned
    server.wait_for_status("slow", "m1", {3})  # the stop is asynchronous
    values = github_outputs(tmp_path)
    assert values["run-id"] == "m1" and values["status"] == "error" and values["exit-code"] == "2"
    (error,) = WorkflowLog.read(stdout.decode()).named("error")
    assert "authentication refused" in error.data
    summary = (tmp_path / "summary").read_text()
    assert "ended on an error" in summary and "m1" in summary
