"""Server push (Dagu >= 2.3): the events stream wakes the follower; polling is the fallback."""

from __future__ import annotations

import time

from tests.conftest import WAIT_LIMIT, eventually, run_cli, start_cli
from tests.fakedagu import Dag, Step, fail, hold, lines, out
from tests.test_run_e2e import log_lines


def dag(*steps):
    return Dag(file="deploy", steps=list(steps))


def stream_requests(server):
    return [r for r in server.requests if r.path.endswith("/events/stream")]


def status_polls(server, run_id):
    return [r for r in server.requests if r.path.endswith(f"/dag-runs/deploy/{run_id}")]


def test_push_is_used_and_logs_stay_exactly_once(fake_factory):
    server = fake_factory(dag(Step("a", [lines(200, "a{i}"), hold("b"), lines(200, "b{i}")])), version="2.6.5")
    proc = start_cli("run", "deploy", "--url", server.url, "--run-id", "p1")
    eventually(lambda: stream_requests(server), "dagu-ci's events stream")  # opened while the step runs
    server.release("b")
    result = proc.finish()
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == [f"a{i}" for i in range(1, 201)] + [f"b{i}" for i in range(1, 201)]
    (stream,) = stream_requests(server)
    assert "topic=dagrun%3Adeploy%2Fp1" in stream.url or "dagrun:deploy/p1" in str(stream.query)


def test_quiet_step_is_watched_by_push_not_by_polls(fake_factory):
    server = fake_factory(dag(Step("quiet", [out("start"), hold("end"), out("end")])), version="2.6.5")
    proc = start_cli("run", "deploy", "--url", server.url, "--run-id", "p2")
    proc.wait_for("start")

    # Polling alone reads the status at least every ~2.9 s (the backoff's 2.5 s cap, with
    # jitter); with push only the watchdog does, 10 s after the last. A load only makes gaps
    # longer, so the step stays quiet until two polls are 6 s apart: the watchdog's.
    def watchdog_gap() -> bool:
        times = [r.time for r in status_polls(server, "p2")]
        return any(later - earlier >= 6 for earlier, later in zip(times, times[1:]))

    eventually(watchdog_gap, "two status polls 6 s apart while the step is quiet", timeout=2 * WAIT_LIMIT, every=0.2)
    server.release("end")
    result = proc.finish()
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == ["start", "end"]


def test_dropped_stream_falls_back_to_polling(fake_factory):
    server = fake_factory(dag(Step("s", [out("one"), hold("two"), out("two")])), version="2.6.5")
    proc = start_cli("run", "deploy", "--url", server.url, "--run-id", "p3")
    proc.wait_for("one")
    eventually(lambda: server.sse.open_sessions, "the CLI's events stream")
    server.drop_streams()
    server.release("two")  # the rest can only be seen by polling
    result = proc.finish()
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == ["one", "two"]
    assert "events stream" not in result.output  # falls back without a word
    assert len(stream_requests(server)) == 1  # and stays on polling


def test_no_push_and_servers_without_the_stream(fake_factory):
    new = fake_factory(dag(Step("s", [out("x")])), version="2.6.5")
    assert run_cli("run", "deploy", "--url", new.url, "--no-push").code == 0
    assert not stream_requests(new)
    old = fake_factory(dag(Step("s", [out("x")])), version="2.2.0")
    assert run_cli("run", "deploy", "--url", old.url).code == 0
    assert not stream_requests(old)


def test_a_late_push_of_an_earlier_attempt_repeats_nothing(fake_factory):
    """A push can arrive after a poll has shown something newer (a busy reader thread, a
    slow proxy). A late snapshot of the failed first attempt must not make dagu-ci take the
    new attempt's log for the old one's and show its lines again."""
    flaky = Step("flaky", [out("try"), hold("fail"), fail(1)], fail_attempts=1)
    after = Step("after", [out("after"), hold("end")], depends=["flaky"])  # keeps attempt 2 going
    server = fake_factory(
        Dag(file="deploy", steps=[flaky, after], auto_retry_limit=1, auto_retry_delay=None),
        version="2.6.5",
        sse_invalidation=None,
    )  # pushes go out when the test ticks
    proc = start_cli("run", "deploy", "--url", server.url, "--poll-interval", "0.1", "--run-id", "late")
    (stream,) = eventually(lambda: stream_requests(server), "dagu-ci's events stream")  # pushed: running
    server.release("fail")
    proc.wait_for("✖ flaky failed")
    proc.wait_for("Dagu will retry it")
    server.sse.hold_frames()
    server.sse.tick()  # the failed first attempt, pushed now, delivered late
    server.start_held_auto_retry()
    proc.wait_for("✔ flaky succeeded")  # polled: the second attempt runs
    sent = stream.bytes_out
    server.sse.release_frames()
    eventually(lambda: stream.bytes_out > sent, "the late push")
    arrived = time.monotonic()
    eventually(
        lambda: [r for r in status_polls(server, "late") if r.time > arrived], "a status poll after the late push"
    )  # dagu-ci reads a waiting push before it polls
    server.release("end")
    result = proc.finish()
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == ["try", "try", "after"], result.stdout
    assert result.stdout.count("Dagu will retry it") == 1, result.stdout
