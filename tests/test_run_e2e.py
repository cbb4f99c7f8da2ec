"""`dagu-ci run` end to end: the CLI as a subprocess against the fake Dagu server."""

from __future__ import annotations

import json
import re
import signal
import time

import pytest

from tests.conftest import eventually, run_cli, start_cli
from tests.fakedagu import Dag, Step, approval, err, fail, hold, lines, out, raw, sleep

FAST = ("--poll-interval", "0.1")


def run(server, dag, *args, env=None):
    return run_cli("run", dag, "--url", server.url, *FAST, *args, env=env)


GUTTERS = ("│ ", "| ")  # the second where the output cannot encode the first


CONTINUED = ("┆ ", ": ")  # the rest of a line whose beginning was shown before its end


def log_lines(stdout: str):
    """Lines that came from remote logs, whole: those behind the gutter, without it, and a
    continued line's rest joined to its beginning."""
    lines: list = []
    for row in stdout.splitlines():
        if row.startswith(CONTINUED) and lines:
            lines[-1] += row[2:]
        elif row.startswith(GUTTERS):
            lines.append(row[2:])
    return lines


def assert_clean_error(result, code, pattern):
    assert result.code == code, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, result.stderr
    assert re.search(pattern, errors[0]), errors[0]
    assert errors[0].startswith("dagu-ci: error: ")


def simple_dag(**kwargs):
    return Dag(
        file="deploy",
        name=kwargs.pop("name", "deploy"),
        steps=kwargs.pop(
            "steps",
            [
                Step("build", [out("compiling {VERSION}"), sleep(0.2), out("built")]),
                Step("test", [out("tests pass")], depends=["build"]),
            ],
        ),
        params=kwargs.pop("params", {"VERSION": "0.0.0"}),
        **kwargs,
    )


# -- outcomes and exit codes ---------------------------------------------------


def test_success_streams_logs_summary_and_exits_0(fake_factory):
    server = fake_factory(simple_dag())
    result = run(server, "deploy", "--param", "VERSION=1.2.3")
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == ["compiling 1.2.3", "built", "tests pass"]
    stdout = result.stdout
    assert stdout.index("▶ build") < stdout.index("compiling 1.2.3") < stdout.index("✔ build succeeded in")
    assert re.search(r"^  build\s+succeeded\s+(<1s|\d+s)$", stdout, re.M)
    assert re.search(r"deploy run \S+ succeeded in (<1s|\d+s); exit code 0", stdout)
    assert f"{server.url}/dag-runs/deploy/" in stdout
    assert result.stderr == ""


def test_failed_step_exits_1(fake_factory):
    server = fake_factory(simple_dag(steps=[Step("build", [out("boom"), fail(3)])]))
    result = run(server, "deploy")
    assert result.code == 1, result.output
    assert "✖ build failed" in result.stdout
    assert "boom" in result.stdout


def test_partial_success_exits_0_or_1_with_fail_on_partial(fake_factory):
    steps = [Step("lint", [fail(2)], continue_on_failure=True), Step("build", [out("ok")])]
    server = fake_factory(simple_dag(steps=steps))
    assert run(server, "deploy").code == 0
    result = run(server, "deploy", "--fail-on-partial")
    assert result.code == 1, result.output
    assert "partially succeeded" in result.stdout


def test_run_stopped_from_the_ui_exits_3(fake_factory):
    server = fake_factory(simple_dag(steps=[Step("long", [out("started"), hold("never")])]))
    proc = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "ui-stop")
    proc.wait_for("started")  # following it
    server.stop_run("deploy", "ui-stop")
    result = proc.finish()
    assert result.code == 3, result.output
    assert "aborted" in result.stdout


@pytest.mark.parametrize("decision, code, shown", [("reject", 3, []), ("approve", 0, ["shipped"])])
def test_waiting_for_approval_then_decided(fake_factory, decision, code, shown):
    server = fake_factory(
        simple_dag(steps=[Step("gate", [approval()]), Step("ship", [out("shipped")], depends=["gate"])])
    )
    proc = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", decision)
    proc.wait_for("waiting for approval of gate")
    getattr(server, decision)("deploy", decision, "gate")
    result = proc.finish()
    assert result.code == code, result.output
    assert log_lines(result.stdout) == shown
    if decision == "reject":
        assert "rejected" in result.stdout


def test_enqueued_run_is_announced_as_queued_then_runs(fake_factory):
    server = fake_factory(simple_dag(), queue_delay=None)  # queued until the test releases it
    proc = start_cli("run", "deploy", "--url", server.url, *FAST, "--enqueue")
    proc.wait_for("run is queued")
    server.release_queue()
    result = proc.finish()
    assert result.code == 0, result.output
    assert "queued run" in result.stdout
    assert "run is queued" in result.stdout
    assert any(r.method == "POST" and r.path.endswith("/enqueue") for r in server.requests)


def test_result_file(fake_factory, tmp_path):
    server = fake_factory(simple_dag())
    path = tmp_path / "out" / "result.json"
    result = run(server, "deploy", "--run-id", "res-1", "--result-file", str(path))
    assert result.code == 0
    doc = json.loads(path.read_text())
    assert doc["run_id"] == "res-1"
    assert (doc["dag"], doc["name"], doc["status"], doc["exit_code"]) == ("deploy", "deploy", "succeeded", 0)
    assert doc["url"] == f"{server.url}/dag-runs/deploy/res-1"
    assert isinstance(doc["duration"], (int, float))  # server timestamps: whole seconds
    assert [(s["name"], s["status"]) for s in doc["steps"]] == [("build", "succeeded"), ("test", "succeeded")]
    assert all(s["duration"] is not None for s in doc["steps"])


def test_no_logs_shows_statuses_only(fake_factory):
    server = fake_factory(simple_dag())
    result = run(server, "deploy", "--no-logs")
    assert result.code == 0
    assert log_lines(result.stdout) == []
    assert "✔ build succeeded" in result.stdout
    assert not any("/log" in r.path for r in server.requests)


# -- input errors: one line, exit 2 --------------------------------------------


def test_unknown_dag(fake_factory):
    server = fake_factory(simple_dag())
    assert_clean_error(run(server, "nope"), 2, r"DAG 'nope' not found")


def test_param_without_equals(fake_factory):
    server = fake_factory(simple_dag())
    assert_clean_error(run(server, "deploy", "--param", "VERSION"), 2, r"bad --param 'VERSION'")
    assert not server.requests  # rejected before any request


def test_bad_params_text(fake_factory):
    server = fake_factory(simple_dag())
    assert_clean_error(run(server, "deploy", "--params", "[1, 2]"), 2, r"--params")


def test_server_rejects_params(fake_factory):
    server = fake_factory(simple_dag(required_params=["TARGET"]))
    assert_clean_error(run(server, "deploy"), 2, r"refused to start deploy: .*TARGET")


def test_bad_run_id(fake_factory):
    server = fake_factory(simple_dag())
    assert_clean_error(run(server, "deploy", "--run-id", "has space"), 2, r"--run-id")


@pytest.mark.parametrize("auth", [("token", "s3cret-token"), ("basic", "ci", "s3cret-pw")])
def test_wrong_credentials(fake_factory, auth):
    server = fake_factory(simple_dag(), auth=auth)
    result = run(server, "deploy", "--token", "wrong-s3cret")
    assert_clean_error(result, 2, r"authentication refused")
    assert "wrong-s3cret" not in result.output


def test_missing_credentials(fake_factory):
    server = fake_factory(simple_dag(), auth=("token", "s3cret-token"))
    assert_clean_error(run(server, "deploy"), 2, r"requires authentication")


def test_right_credentials_never_printed(fake_factory):
    server = fake_factory(simple_dag(), auth=("basic", "ci", "pw-s3cret"))
    result = run(server, "deploy", "--username", "ci", env={"DAGU_PASSWORD": "pw-s3cret"})
    assert result.code == 0, result.output
    assert "pw-s3cret" not in result.output


def test_non_dagu_url(fake_factory):
    server = fake_factory(simple_dag(), version="2.6.5")
    result = run_cli("run", "deploy", "--url", server.url + "/some/app", *FAST)
    assert_clean_error(result, 2, r"does not look like a Dagu server API")


@pytest.mark.parametrize("url", ["ftp://host", "not a url", "http://host:99999"])
def test_malformed_url(url):
    assert_clean_error(run_cli("run", "deploy", "--url", url), 2, r"bad --url")


def test_unsupported_old_server(fake_factory):
    server = fake_factory(simple_dag(), version="1.16.12")
    assert_clean_error(run(server, "deploy"), 2, r"1\.16\.12 .*is not supported: dagu-ci needs Dagu 1\.17 or newer")


def test_unknown_option_is_one_line():
    assert_clean_error(run_cli("run", "deploy", "--frobnicate"), 2, r"No such option.*--frobnicate")


def test_missing_ca_cert_file():
    assert_clean_error(run_cli("run", "deploy", "--ca-cert", "/nonexistent/ca.pem"), 2, r"--ca-cert")


def test_unreachable_server_exits_4_naming_url():
    result = run_cli("run", "deploy", "--url", "http://127.0.0.1:9", "--start-timeout", "1.5")
    assert_clean_error(result, 4, r"http://127\.0\.0\.1:9 .*unreachable")


def test_version_prints():
    result = run_cli("--version")
    assert result.code == 0 and re.match(r"dagu-ci \d+\.\d+\.\d+", result.stdout)


# -- versions and quirks -------------------------------------------------------


@pytest.mark.parametrize("version", ["2.6.5", "2.0.0", "1.30.3", "1.29.0", "1.22.0"])
def test_params_arrive_intact_on_every_version(fake_factory, version):
    server = fake_factory(simple_dag(params={"VERSION": "0.0.0", "NOTE": ""}), version=version)
    tricky = 'a "quoted" value with spaces'
    result = run(server, "deploy", "--param", "VERSION=1.2.3", "--param", f"NOTE={tricky}", "--run-id", "p1")
    assert result.code == 0, result.output
    received = server.get_run("deploy", "p1").parsed_params
    assert received["VERSION"] == "1.2.3"
    assert received["NOTE"] == tricky
    assert "compiling 1.2.3" in result.stdout


def test_dag_name_differs_from_file_name(fake_factory):
    server = fake_factory(simple_dag(name="deploy-production"))
    result = run(server, "deploy", "--run-id", "n1")
    assert result.code == 0, result.output
    assert f"{server.url}/dag-runs/deploy-production/n1" in result.stdout
    assert log_lines(result.stdout) == ["compiling 0.0.0", "built", "tests pass"]


def test_dev_version_is_probed(fake_factory):
    server = fake_factory(simple_dag(), version="dev", flavor="v1x")
    result = run(server, "deploy")
    assert result.code == 0, result.output
    assert any(r.path.startswith("/api/v2/dag-runs") for r in server.requests)


def test_base_path(fake_factory):
    server = fake_factory(simple_dag(), base_path="/dagu")
    assert server.url.endswith("/dagu")
    assert run(server, "deploy").code == 0


def test_explicit_api_path(fake_factory):
    server = fake_factory(simple_dag(), version="1.30.3")
    result = run(server, "deploy", "--api-path", "/api/v2")
    assert result.code == 0, result.output
    assert not any(r.path == "/api/v1/health" for r in server.requests)


# -- exactly-once logs ---------------------------------------------------------


def test_30000_line_log_exactly_once_in_order(fake_factory):
    steps = [Step("big", [lines(30000, "line {i}")])]
    server = fake_factory(simple_dag(steps=steps))
    result = run(server, "deploy")
    assert result.code == 0
    assert log_lines(result.stdout) == [f"line {i}" for i in range(1, 30001)]


def test_half_written_line_shown_once_and_whole(fake_factory):
    steps = [Step("slow", [out("first"), raw("half-"), hold("rest"), out("written"), out("last")])]
    server = fake_factory(simple_dag(steps=steps))
    # Once dagu-ci has been served the half line, its next read waits until the line is whole:
    # however slow the machine, the rest comes before dagu-ci would give up waiting for it.
    reads = server.fault(path=r"/steps/slow/log$", method="GET", status=200, count=None, hold="answers", after="half-")
    proc = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "half")
    eventually(lambda: reads.armed, "a read that served the half line")
    server.release("rest")
    eventually(lambda: server.get_run("deploy", "half").node("slow").status == 4, "the end of the step")
    server.release("answers")
    result = proc.finish()
    assert result.code == 0
    assert log_lines(result.stdout) == ["first", "half-written", "last"]


def test_trailing_line_without_newline_is_shown(fake_factory):
    server = fake_factory(simple_dag(steps=[Step("prompt", [out("a"), raw("no newline at end")])]))
    result = run(server, "deploy")
    assert log_lines(result.stdout) == ["a", "no newline at end"]


def test_stdout_and_stderr_both_shown(fake_factory):
    server = fake_factory(simple_dag(steps=[Step("s", [out("to stdout"), err("to stderr")])]))
    result = run(server, "deploy")
    assert sorted(log_lines(result.stdout)) == ["to stderr", "to stdout"]


def test_merged_log_read_once(fake_factory):
    steps = [Step("m", [out("o1"), err("e1"), out("o2")])]
    server = fake_factory(simple_dag(steps=steps, log_output="merged"))
    result = run(server, "deploy")
    assert log_lines(result.stdout) == ["o1", "e1", "o2"]
    assert not any("stream=stderr" in r.url for r in server.requests if "/log" in r.path)


def test_parallel_steps_are_prefixed(fake_factory):
    steps = [
        Step("left", [out("L1"), hold("left"), out("L2")]),
        Step("right", [out("R1"), hold("right"), out("R2")]),
    ]
    server = fake_factory(simple_dag(steps=steps))
    proc = start_cli("run", "deploy", "--url", server.url, *FAST)
    proc.wait_for("L1")  # both steps run until released
    proc.wait_for("R1")
    server.release("left")
    server.release("right")
    result = proc.finish()
    tagged = [line for line in log_lines(result.stdout) if line.startswith("[")]
    assert sorted(tagged) == ["[left] L1", "[left] L2", "[right] R1", "[right] R2"]
    assert tagged.index("[left] L1") < tagged.index("[left] L2")
    assert tagged.index("[right] R1") < tagged.index("[right] R2")


def test_sequential_steps_are_not_prefixed(fake_factory):
    result = run(fake_factory(simple_dag()), "deploy")
    assert not [line for line in log_lines(result.stdout) if line.startswith("[")]


def test_estimated_total_does_not_hide_the_tail(fake_factory):
    # Long lines first make the server's estimate far too low (API.md §7.2).
    long_then_short = [lines(300, "L{i} " + "x" * 3000), lines(20000, "s{i}")]
    server = fake_factory(simple_dag(steps=[Step("est", long_then_short)]))
    result = run(server, "deploy")
    expected = [f"L{i} " + "x" * 3000 for i in range(1, 301)] + [f"s{i}" for i in range(1, 20001)]
    assert log_lines(result.stdout) == expected


def test_line_over_64kb_is_read_by_download(fake_factory):
    server = fake_factory(simple_dag(steps=[Step("wide", [out("before"), out("y" * 70000), out("after")])]))
    result = run(server, "deploy")
    assert log_lines(result.stdout) == ["before", "y" * 70000, "after"]


def test_new_attempt_restarts_the_log(fake_factory):
    steps = [Step("flaky", [out("try"), fail(1)], fail_attempts=1)]
    # The retry waits for the test: the API serves a step's log of the latest attempt only, so
    # a retry that began before dagu-ci had read the first attempt's log would hide it.
    server = fake_factory(simple_dag(steps=steps, auto_retry_limit=1, auto_retry_delay=None), version="2.6.5")
    proc = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "retry1")
    proc.wait_for("✖ flaky failed")
    proc.wait_for("Dagu will retry it")
    server.start_held_auto_retry()
    result = proc.finish()
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == ["try", "try"], result.stdout
    assert "new attempt" in result.stdout
    assert "attempt 2 of 2" in result.stdout


# -- reliability ---------------------------------------------------------------


def test_outage_mid_run_loses_and_repeats_nothing(fake_factory):
    steps = [Step("s", [lines(50, "a{i}"), hold("b"), lines(50, "b{i}"), hold("c"), lines(50, "c{i}")])]
    server = fake_factory(simple_dag(steps=steps))
    proc = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "out1")
    proc.wait_for("a50\n")
    server.outage_start()
    server.release("b")  # written while nobody can read it
    proc.wait_for("server not answering")
    server.outage_end()
    proc.wait_for("answering again")
    server.release("c")
    result = proc.finish()
    stdout = result.stdout
    assert result.code == 0, result.output
    expected = [f"{p}{i}" for p in "abc" for i in range(1, 51)]
    assert log_lines(stdout) == expected
    assert "server not answering" in stdout
    assert "answering again" in stdout


def test_5xx_and_429_bursts_are_retried(fake_factory):
    server = fake_factory(simple_dag())
    server.fault(path=r"/dag-runs/", method="GET", status=503, count=4)
    server.fault(path=r"/dags/deploy$", method="GET", status=429, count=1, retry_after=1)
    began = time.monotonic()
    result = run(server, "deploy")
    assert result.code == 0, result.output
    assert time.monotonic() - began >= 1.0  # Retry-After honoured
    assert log_lines(result.stdout) == ["compiling 0.0.0", "built", "tests pass"]


def test_start_retry_never_starts_a_second_run(fake_factory):
    server = fake_factory(simple_dag())
    server.fault(path=r"/dags/deploy/start$", method="POST", status=502, count=2)
    result = run(server, "deploy", "--run-id", "once")
    assert result.code == 0, result.output
    assert len(server.runs_of("deploy")) == 1


def test_slow_responses_do_not_break_following(fake_factory):
    server = fake_factory(simple_dag())
    server.fault(path=r"/dag-runs/", method="GET", status=200, count=3, delay=0.5)
    assert run(server, "deploy").code == 0


def test_html_answer_after_detection_is_retried(fake_factory):
    """The server was identified as Dagu: an HTML page (a proxy's) is a blip, like a 503."""
    server = fake_factory(simple_dag())
    server.fault(path=r"/dags/deploy$", method="GET", html=True, count=1)
    result = run(server, "deploy")
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == ["compiling 0.0.0", "built", "tests pass"]


def test_html_instead_of_the_api_is_not_dagu(fake_factory):
    server = fake_factory(simple_dag())
    server.fault(path=r"/health$", method="GET", html=True, count=None)
    server.fault(path=r"/dag-runs$", method="GET", html=True, count=None)
    assert_clean_error(run(server, "deploy"), 2, r"does not look like a Dagu server API")


def test_409_attaches_to_the_existing_run(fake_factory):
    server = fake_factory(simple_dag(steps=[Step("s", [out("one"), hold("two"), out("two")])]))
    first = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "same")
    server.wait_for_status("deploy", "same", {1})
    attaching = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "same")
    attaching.wait_for("attached to existing run same")  # while the run is still going
    server.release("two")
    first.finish()
    second = attaching.finish()
    assert second.code == 0, second.output
    assert "attached to existing run same" in second.stdout
    assert log_lines(second.stdout) == ["one", "two"]
    assert len(server.runs_of("deploy")) == 1


def test_attach_to_a_finished_run_replays_it(fake_factory):
    server = fake_factory(simple_dag(steps=[Step("s", [out("done"), fail(1)])]))
    assert run(server, "deploy", "--run-id", "again").code == 1
    result = run(server, "deploy", "--run-id", "again")
    assert result.code == 1
    assert "attached to existing run again" in result.stdout
    assert log_lines(result.stdout) == ["done"]


def test_singleton_conflict_is_clear(fake_factory):
    server = fake_factory(simple_dag(steps=[Step("s", [hold("never")])]))
    proc = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "first")
    server.wait_for_status("deploy", "first", {1})
    result = run(server, "deploy", "--singleton", "--run-id", "second")
    proc.send_signal(signal.SIGTERM)
    proc.finish()
    assert_clean_error(result, 4, r"already running.*--singleton")


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_cancel_stops_the_remote_run(fake_factory, sig, code):
    server = fake_factory(simple_dag(steps=[Step("long", [out("working"), hold("never")])]))
    proc = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "cancel-me")
    proc.wait_for("working")  # following it, signal handlers in place
    proc.send_signal(sig)
    result = proc.finish()
    assert result.code == code, result.output
    assert server.get_run("deploy", "cancel-me").status == 3
    # Ctrl-C on a terminal or a CI host's cancel: the signal is all dagu-ci knows, so it names that.
    assert f"cancelled by {sig.name}; the run was stopped" in result.stdout
    assert "aborted" in result.stdout
    assert "Traceback" not in result.output


def test_cancel_sends_the_stop_even_while_output_is_blocked(fake_factory):
    """The stop goes out before anything is printed: a host whose log pipe is full (or that
    kills the container seconds after SIGTERM) must still see its run stopped."""
    import subprocess

    from tests.conftest import clean_env, cli_command

    server = fake_factory(simple_dag(steps=[Step("long", [lines(20000, "{i:0>96}"), hold("never")])]))
    proc = subprocess.Popen(
        cli_command("run", "deploy", "--url", server.url, *FAST, "--run-id", "blocked"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=clean_env(),
    )
    try:
        server.wait_for_status("deploy", "blocked", {1})
        # nobody reads its stdout: it gets stuck in a write
        eventually(lambda: _wchan(proc.pid).endswith("pipe_write"), "dagu-ci blocked writing to its stdout")
        proc.send_signal(signal.SIGTERM)
        server.wait_for_status("deploy", "blocked", {3})  # still nothing read
    finally:
        proc.stdout.read()
        proc.wait(timeout=120)
    assert proc.returncode == 143


def _wchan(pid: int) -> str:
    with open(f"/proc/{pid}/wchan", encoding="ascii") as handle:
        return handle.read()


def test_no_stop_on_cancel_leaves_it_running(fake_factory):
    server = fake_factory(simple_dag(steps=[Step("long", [out("working"), hold("never")])]))
    proc = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "keep", "--no-stop-on-cancel")
    proc.wait_for("working")  # following it, signal handlers in place
    proc.send_signal(signal.SIGTERM)
    result = proc.finish()
    assert result.code == 143
    assert server.get_run("deploy", "keep").status == 1
    assert "left running" in result.stdout
    server.stop_run("deploy", "keep")


def test_timeout_stops_the_run_and_exits_124(fake_factory):
    server = fake_factory(simple_dag(steps=[Step("long", [out("working"), hold("never")])]))
    result = run(server, "deploy", "--run-id", "slowpoke", "--timeout", "1.5")
    assert result.code == 124, result.output
    assert server.get_run("deploy", "slowpoke").status == 3
    assert "timed out after 1.5s" in result.stdout


def test_quiet_step_shows_its_last_line_live(fake_factory):
    # The last line read is held back (it may be half-written) until it stays unchanged for a while.
    steps = [Step("deploy", [out("waiting for rollout"), hold("rollout"), out("rolled out")])]
    server = fake_factory(simple_dag(steps=steps))
    proc = start_cli("run", "deploy", "--url", server.url, *FAST)
    proc.wait_for("waiting for rollout\n")  # the step cannot end before the release: this is live
    assert "rolled out" not in proc.stdout
    server.release("rollout")
    result = proc.finish()
    assert log_lines(result.stdout) == ["waiting for rollout", "rolled out"]


def test_dev_version_of_2x_is_probed(fake_factory):
    server = fake_factory(simple_dag(), version="dev", flavor="v2x")
    result = run(server, "deploy")
    assert result.code == 0, result.output
    assert "Dagu dev at" in result.stdout
