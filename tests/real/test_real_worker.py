"""Runs on a real `dagu worker` (issue 16), against real Dagu 1.30.x.

How 1.30.3 distributes (read from its source): a run whose DAG has a `workerSelector` goes to
a worker only through the queue: `/start` runs it on the server whatever the selector
(E2E_StartCommand_WorkerSelector_ShouldExecuteLocally), `/enqueue` leaves it to the
scheduler, which dispatches it to the coordinator (service/scheduler/dag_executor.go). The
coordinator hands it to a waiting poller of a worker whose labels match, or refuses
("no workers match the required selector") and the run stays queued, tried again later. The
worker runs `dagu retry --run-id … --worker-id …` (worker/handler.go, runtime/subcmd.go)
with its own configuration: status and logs go to ITS data and log directories, and nothing
comes back over gRPC. So the server sees the run only through storage shared with the worker
(here: the same DAGU_HOME); a worker with its own DAGU_HOME fails to find the run, and the run
stays queued on the server for ever. The 2.x design (status and 64 KB log bursts through the
coordinator, workers with their own DAGU_HOME) cannot be built here (the module proxy refuses
2.x); the fake models it (tests/test_worker_runs.py).
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.conftest import eventually, run_cli, start_cli
from tests.real.test_real_run import details, file_lines
from tests.test_run_e2e import log_lines

pytestmark = pytest.mark.dagu(since="1.30.0", before="2.0.0")

SELECTOR = """
workerSelector:
  pool: ci
"""
# Multi-byte text, a line paused mid-way, and one paused inside a character ("é" is \303\251).
LOGS = """
steps:
  - name: work
    script: |
      i=1
      while [ $i -le 3000 ]; do echo "row $i: déjà vu € ✓ 日本語"; i=$((i+1)); done
      printf 'half a line, é'
      sleep 3
      printf ' and its end\\n'
      printf 'caf\\303'
      sleep 6
      printf '\\251 au lait\\n'
      echo last
"""
SLOW = (
    SELECTOR
    + """
steps:
  - name: wait
    command: sh -c 'echo waiting on the worker; sleep 600'
"""
)
NOTICE = "the run executes on worker w1"


def step_stdout(server, dag: str, run_id: str, step: str) -> str:
    return next(node["stdout"] for node in details(server, dag, run_id)["nodes"] if node["step"]["name"] == step)


def test_a_worker_runs_it_and_every_line_shows_whole_once(real_dagu):
    server = real_dagu({"logs": SELECTOR + LOGS}, coordinator=True)
    server.add_worker("w1", {"pool": "ci"})
    result = run_cli(
        "run", "logs", "--enqueue", "--url", server.url, "--run-id", "w1run", "--reporter", "plain", timeout=300
    )
    assert result.code == 0, result.output
    assert details(server, "logs", "w1run")["workerId"] == "w1"
    expected = file_lines(step_stdout(server, "logs", "w1run", "work"))
    assert expected[-3:] == ["half a line, é and its end", "café au lait", "last"] and len(expected) == 3003
    assert log_lines(result.stdout) == expected
    assert "\ufffd" not in result.output
    # Named once; no bursts on 1.x, whose worker writes the server's files as a local run does
    # (so a quiet half line is released after 2 s and continued, as on the server itself).
    assert result.output.count(NOTICE) == 1 and "bursts" not in result.output, result.output
    assert "┆ é au lait" in result.stdout.splitlines()


@pytest.mark.dagu()  # every version: a local run's quiet release, cut inside a character
def test_a_local_half_line_cut_inside_a_character_shows_no_replacement_character(real_dagu):
    server = real_dagu({"logs": LOGS})
    result = run_cli("run", "logs", "--url", server.url, "--run-id", "local1", "--reporter", "plain", timeout=300)
    assert result.code == 0, result.output
    expected = file_lines(step_stdout(server, "logs", "local1", "work"))
    assert log_lines(result.stdout) == expected
    assert "┆ é au lait" in result.stdout.splitlines()  # "caf" shown after 2 s (of 6), then the rest
    assert "\ufffd" not in result.output
    assert "executes on worker" not in result.output  # workerId "local"


def test_sigterm_and_timeout_abort_the_run_on_the_worker(real_dagu):
    server = real_dagu({"slow": SLOW}, coordinator=True)
    server.add_worker("w1", {"pool": "ci"}, max_active_runs=2)
    proc = start_cli("run", "slow", "--enqueue", "--url", server.url, "--run-id", "term1")
    proc.wait_for("waiting on the worker", timeout=120)
    proc.send_signal(signal.SIGTERM)
    result = proc.finish(timeout=60)
    assert result.code == 143, result.output
    eventually(lambda: details(server, "slow", "term1")["status"] == 3, "the run aborted on the worker", timeout=60)
    assert details(server, "slow", "term1")["workerId"] == "w1"

    began = time.monotonic()
    result = run_cli(
        "run", "slow", "--enqueue", "--url", server.url, "--run-id", "time1", "--timeout", "20", timeout=180
    )
    assert result.code == 124, result.output
    assert time.monotonic() - began < 90
    eventually(lambda: details(server, "slow", "time1")["status"] == 3, "the run aborted on the worker", timeout=60)
    assert details(server, "slow", "time1")["workerId"] == "w1"


def test_a_killed_worker_ends_as_dagu_reports_it_within_the_timeout(real_dagu):
    """The worker's host dies (the worker and the run it started, SIGKILL). Dagu 1.30.3 keeps
    the run "running" until its proc heartbeat is 45 s stale, then the scheduler's zombie
    check marks it failed: dagu-ci reports that, well inside --timeout, and does not hang."""
    server = real_dagu({"slow": SLOW}, coordinator=True, extra_env={"DAGU_SCHEDULER_ZOMBIE_DETECTION_INTERVAL": "2s"})
    worker = server.add_worker("w1", {"pool": "ci"})
    began = time.monotonic()
    proc = start_cli("run", "slow", "--enqueue", "--url", server.url, "--run-id", "kill1", "--timeout", "240")
    proc.wait_for("waiting on the worker", timeout=120)
    worker.kill()
    result = proc.finish(timeout=300)
    assert result.code == 1, result.output  # failed, as the server says
    assert time.monotonic() - began < 240
    assert details(server, "slow", "kill1")["status"] == 2
    assert "slow run kill1 failed" in result.output


def test_a_run_waiting_for_a_free_worker_is_queued_and_queue_timeout_ends_it(real_dagu):
    server = real_dagu({"slow": SLOW, "next": SLOW}, coordinator=True)
    server.add_worker("w1", {"pool": "ci"}, max_active_runs=1)
    busy = start_cli("run", "slow", "--enqueue", "--url", server.url, "--run-id", "busy1")
    busy.wait_for("waiting on the worker", timeout=120)  # the worker's one poller is taken
    began = time.monotonic()
    result = run_cli(
        "run", "next", "--enqueue", "--url", server.url, "--run-id", "next1", "--queue-timeout", "10", timeout=180
    )
    assert result.code == 124, result.output
    assert "queued" in result.output
    assert time.monotonic() - began < 90
    assert "executes on worker" not in result.output  # it never got one
    busy.send_signal(signal.SIGTERM)
    assert busy.finish(timeout=60).code == 143


def test_a_worker_without_shared_storage_leaves_the_run_queued_on_1_30(real_dagu):
    """Its own DAGU_HOME: the worker takes the task but cannot find the run ("dag-run ID not
    found"), and the server shows it queued for ever; --queue-timeout is what ends it."""
    server = real_dagu({"slow": SLOW}, coordinator=True)
    worker = server.add_worker("w1", {"pool": "ci"}, shared=False)
    result = run_cli(
        "run", "slow", "--enqueue", "--url", server.url, "--run-id", "own1", "--queue-timeout", "20", timeout=180
    )
    assert result.code == 124, result.output
    assert "dag-run ID not found" in worker.log_tail(lines=200)
