"""`dagu-ci run` against real Dagu servers: exit codes, logs against the files on disk, params,
and the ways a run ends."""

from __future__ import annotations

import json
import os
import signal

import pytest
import requests

from tests.conftest import eventually, run_cli, start_cli
from tests.test_run_e2e import log_lines

OK = """
steps:
  - name: hello
    command: echo hello from dagu
"""
FAIL = """
steps:
  - name: broken
    command: sh -c 'echo about to fail; exit 3'
"""
PARTIAL = """
steps:
  - name: flaky
    command: sh -c 'echo soft failure; exit 1'
    continueOn:
      failure: true
  - name: after
    command: echo still ran
    depends: [flaky]
"""


def details(server, name: str, run_id: str) -> dict:
    answer = requests.get(f"{server.api}/dag-runs/{name}/{run_id}", timeout=10)
    answer.raise_for_status()
    return answer.json()["dagRunDetails"]


def file_lines(path: str) -> list:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read().splitlines()


@pytest.mark.parametrize("dag, code, status", [("ok", 0, 4), ("fail", 1, 2), ("partial", 0, 6)])
def test_exit_code_from_the_final_status(real_dagu, dag, code, status):
    server = real_dagu({"ok": OK, "fail": FAIL, "partial": PARTIAL})
    result = run_cli(
        "run", dag, "--url", server.url, "--run-id", f"x-{dag}", "--result-file", os.path.join(server.home, "r.json")
    )
    assert result.code == code, result.output
    assert details(server, dag, f"x-{dag}")["status"] == status
    with open(os.path.join(server.home, "r.json"), encoding="utf-8") as handle:
        assert json.load(handle)["exit_code"] == code


def test_fail_on_partial(real_dagu):
    server = real_dagu({"partial": PARTIAL})
    assert run_cli("run", "partial", "--url", server.url, "--fail-on-partial").code == 1


def test_every_line_once_in_order_against_the_files(real_dagu):
    """The step log files under DAGU_HOME are the ground truth: 50,000 lines, and a line
    written without its newline before a pause."""
    server = real_dagu(
        {
            "logs": """
steps:
  - name: many
    command: seq 1 50000
  - name: pause
    command: sh -c 'printf "half a line"; sleep 3; echo " and its end"; echo next'
"""
        }
    )
    result = run_cli("run", "logs", "--url", server.url, "--run-id", "l1", "--reporter", "plain", timeout=300)
    assert result.code == 0, result.output
    nodes = {node["step"]["name"]: node for node in details(server, "logs", "l1")["nodes"]}
    expected = file_lines(nodes["many"]["stdout"]) + file_lines(nodes["pause"]["stdout"])
    assert expected[:2] == ["1", "2"] and expected[-2:] == ["half a line and its end", "next"]
    assert log_lines(result.stdout) == expected


PARAMS_DAG = """
params:
  - A: ""
  - B: ""
  - C: ""
  - D: ""
steps:
  - name: show
    command: python3 -c 'import json, os; print(json.dumps([os.environ[k] for k in "ABCD"]))'
"""


def test_params_arrive_intact(real_dagu):
    server = real_dagu({"params": PARAMS_DAG})
    values = {
        "A": 'say "hi" and \\ back',
        "B": "two  spaces, a = and a trailing space ",
        "C": "ünïcødé ✓",
        "D": "line one\nline two",
    }
    args = [item for key, value in values.items() for item in ("--param", f"{key}={value}")]
    result = run_cli("run", "params", "--url", server.url, "--run-id", "p1", "--reporter", "plain", *args)
    assert result.code == 0, result.output
    assert [json.loads(line) for line in log_lines(result.stdout)] == [list(values.values())]


@pytest.mark.dagu(before="2.3.0")
def test_dollar_and_backticks_are_expanded_before_2_3_with_a_warning(real_dagu):
    """Documented server behaviour before 2.3: the server expands them; dagu-ci warns."""
    server = real_dagu({"params": PARAMS_DAG})
    result = run_cli(
        "run",
        "params",
        "--url",
        server.url,
        "--reporter",
        "plain",
        "--param",
        "A=$HOME",
        "--param",
        "B=`echo run`",
        "--param",
        "C=c",
        "--param",
        "D=d",
    )
    assert result.code == 0, result.output
    assert "params A, B hold $ or backticks, which Dagu before 2.3 expands on the server" in result.output
    assert [json.loads(line) for line in log_lines(result.stdout)] == [[server.home, "run", "c", "d"]]


def test_sigterm_stops_the_run(real_dagu):
    server = real_dagu(
        {
            "slow": """
steps:
  - name: wait
    command: sh -c 'echo waiting; sleep 600'
"""
        }
    )
    proc = start_cli("run", "slow", "--url", server.url, "--run-id", "s1")
    proc.wait_for("waiting")
    proc.send_signal(signal.SIGTERM)
    result = proc.finish()
    assert result.code == 143, result.output
    eventually(
        lambda: details(server, "slow", "s1")["status"] == 3, "run s1 aborted on the server"
    )  # a stop is asynchronous


def test_timeout_exits_124_and_stops_the_run(real_dagu):
    server = real_dagu(
        {
            "slow": """
steps:
  - name: wait
    command: sleep 600
"""
        }
    )
    result = run_cli("run", "slow", "--url", server.url, "--run-id", "t1", "--timeout", "3")  # the step sleeps 600 s
    assert result.code == 124, result.output
    eventually(lambda: details(server, "slow", "t1")["status"] == 3, "run t1 aborted on the server")


CONCURRENT = """
steps:
  - name: s
    command: sh -c 'echo hi; sleep 2; echo bye'
"""


def test_runs_of_one_dag_started_together_are_each_followed(real_dagu):
    """1.30.3 answers a start before the run exists when another run of the DAG is running (its
    start handler waits on the DAG's socket, which that run answers): the first reads get 404.
    Without a wait for the run to show, 7 of 8 of these ended in exit 4 and a run left behind."""
    server = real_dagu({"together": CONCURRENT})
    procs = [
        start_cli("run", "together", "--url", server.url, "--run-id", f"t{i}", "--reporter", "plain") for i in range(6)
    ]
    for proc in procs:
        result = proc.finish()
        assert result.code == 0, result.output
        assert log_lines(result.stdout) == ["hi", "bye"], result.stdout
