"""The end of a run (issue 17): a terminal status is not yet the end until the agent's last
write (finishedAt); dagu-ci re-checks quickly while only that write is missing, waits for the
handlers, and never ends a run that is about to auto-retry.

The policy is checked with a clock of its own (EndWatch, no sleeping); the CLI against the
fake, which writes a run's end the way Dagu's agent does (tests/fakedagu/engine.py).
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from dagu_ci.follow.ending import (
    BUSY_WINDOW,
    DEAD_AGENT_GRACE,
    QUICK_RECHECK,
    QUICK_RECHECKS,
    UNWRITTEN_END_GRACE,
    EndPhase,
    EndWatch,
)
from dagu_ci.server.models import RunSnapshot, RunStatus, StepSnapshot, StepStatus
from tests.conftest import eventually, start_cli
from tests.fakedagu import Dag, Step, fail, hold, out, output
from tests.test_run_e2e import FAST, log_lines

ENDED_AT = datetime(2026, 1, 1, tzinfo=timezone.utc)


def snap(status, *steps, finished=False, retry=None):
    count, limit = retry if retry else (0, None)
    return RunSnapshot(
        "d",
        "r",
        status,
        tuple(steps),
        finished_at=ENDED_AT if finished else None,
        auto_retry_count=count,
        auto_retry_limit=limit,
    )


def step(name, status, started=True):
    return StepSnapshot(name, status, started_at=ENDED_AT if started else None)


def handler(key, status):
    return StepSnapshot(key, status, handler=True, handler_key=key)


S, R, N = StepStatus.SUCCEEDED, StepStatus.RUNNING, StepStatus.NOT_STARTED


# -- the policy ----------------------------------------------------------------------


def test_only_the_last_write_ends_a_run():
    watch = EndWatch()
    assert watch.phase(snap(RunStatus.RUNNING, step("a", R))) is EndPhase.RUNNING
    # Dagu writes the last step's end with the run's status already terminal, without finishedAt.
    assert watch.phase(snap(RunStatus.SUCCEEDED, step("a", S))) is EndPhase.SETTLING
    assert watch.phase(snap(RunStatus.SUCCEEDED, step("a", S), finished=True)) is EndPhase.OVER


def test_quick_rechecks_while_settling_then_the_usual_cadence():
    watch = EndWatch()
    settling = watch.phase(snap(RunStatus.SUCCEEDED, step("a", S)), now=0.0)
    assert [watch.quick_wait(settling) for _ in range(QUICK_RECHECKS + 2)] == [QUICK_RECHECK] * QUICK_RECHECKS + [
        None
    ] * 2
    assert 0.05 <= QUICK_RECHECK <= 0.1
    # Every step ended but the run not yet terminal (2.6.5 finalising artifacts): settling too.
    other = EndWatch()
    assert other.phase(snap(RunStatus.RUNNING, step("a", S))) is EndPhase.SETTLING
    assert other.quick_wait(EndPhase.SETTLING) == QUICK_RECHECK


def test_a_quiet_step_never_asks_for_quick_rechecks():
    watch = EndWatch()
    for now in range(0, 600, 7):
        phase = watch.phase(snap(RunStatus.RUNNING, step("a", S), step("quiet", R)), now=float(now))
        assert phase is EndPhase.RUNNING and watch.quick_wait(phase) is None
    # Not started yet (the next step is about to): not settling either.
    assert watch.phase(snap(RunStatus.RUNNING, step("a", S), step("b", N, started=False))) is EndPhase.RUNNING


def test_an_end_never_written_is_taken_after_a_grace():
    """The agent failed before its steps (or died): the status stays terminal without finishedAt."""
    watch = EndWatch()
    stuck = snap(RunStatus.FAILED, step("a", N, started=False))
    assert watch.phase(stuck, now=10.0) is EndPhase.SETTLING
    assert watch.phase(stuck, now=10.0 + UNWRITTEN_END_GRACE / 2) is EndPhase.SETTLING
    assert watch.phase(stuck, now=10.0 + UNWRITTEN_END_GRACE) is EndPhase.OVER


def test_a_terminal_run_with_a_step_still_running_has_lost_its_agent():
    """Dagu's agent writes a terminal status only once its steps have ended. A run marked failed
    while a step still shows running was ended by someone else (1.30.3's zombie check after a
    worker died, found on the real server): nothing more will be written, handlers or not."""
    watch = EndWatch()
    dead = snap(RunStatus.FAILED, step("wait", StepStatus.RUNNING), handler("onExit", N))
    assert watch.phase(dead, now=0.0) is EndPhase.SETTLING
    assert watch.phase(dead, now=DEAD_AGENT_GRACE / 2) is EndPhase.SETTLING
    assert watch.phase(dead, now=DEAD_AGENT_GRACE) is EndPhase.OVER
    # A write in between (the agent alive after all) starts the wait again.
    watch = EndWatch()
    assert watch.phase(dead, now=0.0) is EndPhase.SETTLING
    later = snap(RunStatus.FAILED, step("wait", StepStatus.RUNNING, started=False), handler("onExit", N))
    assert watch.phase(later, now=DEAD_AGENT_GRACE - 1) is EndPhase.SETTLING
    assert watch.phase(later, now=DEAD_AGENT_GRACE + 1) is EndPhase.SETTLING
    # A running run with a running step is simply running.
    assert EndWatch().phase(snap(RunStatus.RUNNING, step("wait", StepStatus.RUNNING))) is EndPhase.RUNNING


def test_pending_handlers_keep_the_run_going_without_quick_rechecks():
    watch = EndWatch()
    ran = step("a", S)
    # Handlers show as not started until they have ended (nothing is written when one starts).
    before = snap(RunStatus.SUCCEEDED, ran, handler("onSuccess", N), handler("onExit", N))
    for now in (0.0, 100.0, 1000.0):
        assert watch.phase(before, now=now) is EndPhase.RUNNING
    assert watch.quick_wait(EndPhase.RUNNING) is None
    # onSuccess failed and turned the run failed: onFailure will not run, onExit still will.
    between = snap(
        RunStatus.FAILED, ran, handler("onSuccess", StepStatus.FAILED), handler("onFailure", N), handler("onExit", N)
    )
    assert watch.phase(between) is EndPhase.RUNNING
    after = snap(
        RunStatus.FAILED, ran, handler("onSuccess", StepStatus.FAILED), handler("onFailure", N), handler("onExit", S)
    )
    assert watch.phase(after) is EndPhase.SETTLING
    # Without onExit, the handler due for the status is the last one.
    assert watch.phase(snap(RunStatus.ABORTED, ran, handler("onCancel", N))) is EndPhase.RUNNING
    assert watch.phase(snap(RunStatus.ABORTED, ran, handler("onCancel", S))) is EndPhase.SETTLING
    assert watch.phase(snap(RunStatus.SUCCEEDED, ran, handler("onFailure", N))) is EndPhase.SETTLING


def test_a_run_about_to_auto_retry_is_not_over():
    watch = EndWatch()
    failed = snap(RunStatus.FAILED, step("a", StepStatus.FAILED), finished=True, retry=(0, 1))
    for now in (0.0, UNWRITTEN_END_GRACE * 10):
        phase = watch.phase(failed, now=now)
        assert phase is EndPhase.RUNNING and watch.quick_wait(phase) is None
    assert EndWatch(wait_auto_retry=False).phase(failed) is EndPhase.OVER
    last = snap(RunStatus.FAILED, step("a", StepStatus.FAILED), finished=True, retry=(1, 1))
    assert watch.phase(last) is EndPhase.OVER


# -- the CLI against the fake ---------------------------------------------------------


def status_is(server, run_id, status):
    run = server.find_run("deploy", run_id)
    return run is not None and run.status == status


def run_details_gets(server, run_id):
    return [r for r in server.requests if r.method == "GET" and r.path.endswith(f"/dag-runs/deploy/{run_id}")]


def test_outputs_are_read_after_the_last_write(fake_factory):
    """Dagu writes the outputs just before its last status write: ending at the first terminal
    status read them too early."""
    steps = [Step("build", [out("built"), output("VERSION", "1.2.3")])]
    server = fake_factory(Dag(file="deploy", steps=steps), version="1.30.3", finalize_delay=None)
    proc = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "o1", "--json")
    eventually(lambda: status_is(server, "o1", 4), "the run's terminal status")
    terminal_at = server.get_run("deploy", "o1").status_history[-1][0]
    # dagu-ci has seen the terminal status, without finishedAt, twice.
    eventually(
        lambda: len([r for r in run_details_gets(server, "o1") if r.time > terminal_at]) >= 2,
        "dagu-ci looking at the terminal run",
    )
    assert proc.proc.poll() is None, proc.finish().output
    server.release_finalize()
    result = proc.finish()
    assert result.code == 0, result.output
    assert json.loads(result.stdout)["outputs"] == {"version": "1.2.3"}


def test_handlers_are_waited_for_and_can_fail_the_run(fake_factory):
    """Real Dagu (1.30.3, watched): `succeeded` is written at the last step's end, before the
    handlers; a failing onSuccess then turns the run failed."""
    handlers = {
        "onSuccess": Step("onSuccess", [hold("handlers"), out("notifying"), fail(5)]),
        "onExit": Step("onExit", [out("cleaning up")]),
    }
    server = fake_factory(
        Dag(file="deploy", steps=[Step("build", [out("built")])], handlers=handlers), version="1.30.3"
    )
    proc = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "h1")
    server.wait_held("handlers")
    held_at = server.get_run("deploy", "h1").status_history[-1][0]
    eventually(
        lambda: len([r for r in run_details_gets(server, "h1") if r.time > held_at]) >= 2,
        "dagu-ci looking at the run while its handler runs",
    )
    server.release("handlers")
    result = proc.finish()
    assert result.code == 1, result.output
    assert log_lines(result.stdout) == ["built", "notifying", "cleaning up"], result.stdout


def test_no_end_before_an_auto_retry(fake_factory):
    flaky = Step("flaky", [out("try"), fail(1)], fail_attempts=1)
    server = fake_factory(
        Dag(file="deploy", steps=[flaky], auto_retry_limit=1, auto_retry_delay=None),
        version="2.6.5",
        finalize_delay=None,
    )
    proc = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "ar1")
    eventually(lambda: status_is(server, "ar1", 2), "the first attempt failing")
    failed_at = server.get_run("deploy", "ar1").status_history[-1][0]
    # Longer than the grace given to an end never written: a run Dagu will retry is not one.
    eventually(
        lambda: any(r.time > failed_at + UNWRITTEN_END_GRACE + 0.5 for r in run_details_gets(server, "ar1")),
        "dagu-ci watching the failed first attempt",
    )
    assert proc.proc.poll() is None, proc.finish().output
    server.release_finalize()
    eventually(lambda: server.get_run("deploy", "ar1").retry_pending, "the retry scheduled")
    proc.wait_for("Dagu will retry it")
    server.release_auto_retries()
    result = proc.finish()
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == ["try", "try"], result.stdout


def test_a_quiet_step_is_polled_at_the_usual_cadence(fake_factory):
    """No quick re-checks while a step is merely quiet (the quiet-step load targets stand)."""
    steps = [Step("first", [out("one")]), Step("quiet", [out("start"), hold("quiet")], depends=["first"])]
    server = fake_factory(Dag(file="deploy", steps=steps), version="2.2.0")
    proc = start_cli("run", "deploy", "--url", server.url, "--run-id", "q1")
    eventually(lambda: "start" in log_lines(proc.stdout), "the quiet step's line shown")
    server.wait_held("quiet")
    # Its last line ("start") was its last change: BUSY_WINDOW later (and a margin for a loaded
    # machine), the step is quiet.
    since = max(time.monotonic(), server.get_run("deploy", "q1").status_history[-1][0]) + BUSY_WINDOW + 0.5
    eventually(
        lambda: len([r for r in run_details_gets(server, "q1") if r.time > since]) >= 4,
        "four status polls during the quiet step",
    )
    polls = [r.time for r in run_details_gets(server, "q1") if r.time > since]
    server.release("quiet")
    assert proc.finish().code == 0
    # A lower bound only (a busy machine makes gaps longer, never shorter): the base interval
    # is 0.5 s less jitter; a quick re-check would be under 0.1 s.
    assert min(b - a for a, b in zip(polls, polls[1:])) >= 0.3, polls


def test_a_long_handler_is_named_while_the_run_waits_for_it(fake_factory):
    """Nothing shows while a handler runs (Dagu writes it once it has ended): after a few
    seconds dagu-ci says what the run is waiting for, once, instead of looking hung."""
    handlers = {"onExit": Step("onExit", [hold("cleanup"), out("cleaned up")])}
    server = fake_factory(
        Dag(file="deploy", steps=[Step("build", [out("built")])], handlers=handlers), version="1.30.3"
    )
    proc = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "slowexit")
    server.wait_held("cleanup")
    proc.wait_for("waiting for the onExit handler")
    server.release("cleanup")
    result = proc.finish()
    assert result.code == 0, result.output
    assert result.stdout.count("every step has ended; waiting for the onExit handler") == 1, result.stdout
    assert log_lines(result.stdout) == ["built", "cleaned up"], result.stdout
