"""A busy run's status is polled more often (issue 17): Dagu writes the run's terminal status
with its last step's end, so a run busy to its end gives no earlier sign, and only a status poll
sees it. Once the run is quiet, the usual back-off (and the quiet-step load) is unchanged; that
side is tests/test_end_recheck.py::test_a_quiet_step_is_polled_at_the_usual_cadence.

The policy is checked with a clock of its own; the CLI against the fake, counting requests.
"""

from __future__ import annotations

from dagu_ci.follow.ending import BUSY_FLOOR, BUSY_SHARE, BUSY_WINDOW, BusyCadence
from tests.conftest import eventually, start_cli
from tests.fakedagu import Dag, Step, out, sleep
from tests.test_run_e2e import log_lines


def test_busy_for_a_window_after_each_change_then_the_usual_cadence():
    cadence = BusyCadence(0.5)
    assert cadence.wait(changed=False, now=0.0) is None  # nothing seen yet: not busy
    short = cadence.wait(changed=True, now=10.0)
    assert short is not None and short < 0.5
    assert cadence.wait(changed=False, now=10.0 + BUSY_WINDOW / 2) == short
    assert cadence.wait(changed=False, now=10.0 + BUSY_WINDOW) is None
    assert cadence.wait(changed=False, now=100.0) is None
    assert cadence.wait(changed=True, now=101.0) == short  # busy again


def test_the_busy_wait_follows_the_base_interval():
    """--poll-interval stays the user's dial: a slower base polls a busy run slower too."""
    assert BusyCadence(0.5).wait(True, now=0.0) == 0.5 * BUSY_SHARE
    assert BusyCadence(5.0).wait(True, now=0.0) == 5.0 * BUSY_SHARE
    assert BusyCadence(0.1).wait(True, now=0.0) == BUSY_FLOOR  # never a flood of requests
    assert BusyCadence(0.01).wait(True, now=0.0) == 0.01  # never longer than the base


def test_a_busy_run_is_polled_more_often_and_its_end_seen_at_once(fake_factory):
    """A step printing to its very end: its status is polled several times per log read
    (before: once per log read, both at the base interval), and the end is seen by the first
    status poll or two after the terminal write."""
    ticks = [action for index in range(40) for action in (out(f"tick {index}"), sleep(0.1))]
    server = fake_factory(Dag(file="deploy", steps=[Step("busy", ticks)]), version="1.30.3")
    # A slow base (1.5 s: busy status polls every 0.45 s), so that a loaded machine's delays
    # cannot blur the ratio of status polls to log reads.
    proc = start_cli("run", "deploy", "--url", server.url, "--poll-interval", "1.5", "--run-id", "b1")
    result = proc.finish()
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == [f"tick {index}" for index in range(40)]
    run = server.get_run("deploy", "b1")
    running_at = next(at for at, status in run.status_history if status == 1)
    ended_at = eventually(
        lambda: next((at for at, status in run.status_history if status == 4), None),
        "the terminal status in the history",
    )
    gets = [r for r in server.requests if r.method == "GET"]
    status_polls = [r for r in gets if r.path.endswith("/dag-runs/deploy/b1")]
    log_reads = [r for r in gets if r.path.endswith("/steps/busy/log") and "stderr" not in r.url]
    busy_polls = [r for r in status_polls if running_at < r.time < ended_at]
    busy_reads = [r for r in log_reads if running_at < r.time < ended_at]
    assert len(busy_reads) >= 2, [r.url for r in gets]
    assert len(busy_polls) >= 2 * len(busy_reads), (len(busy_polls), len(busy_reads))
    # The first status poll after the terminal write sees it (a second one if it fell between
    # the terminal write and the last one, with finishedAt, 10 ms later).
    assert len([r for r in status_polls if r.time > ended_at]) <= 2, [r.time - ended_at for r in status_polls]
