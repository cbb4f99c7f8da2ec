"""Server push (Dagu >= 2.3): the events stream wakes the follower; polling is the fallback."""
from __future__ import annotations

import time

from tests.conftest import run_cli, start_cli
from tests.fakedagu import Dag, Step, lines, out, sleep
from tests.test_run_e2e import log_lines


def dag(*steps):
    return Dag(file="deploy", steps=list(steps))


def stream_requests(server):
    return [r for r in server.requests if r.path.endswith("/events/stream")]


def status_polls(server, run_id, after=0.0):
    return [r for r in server.requests if r.path.endswith(f"/dag-runs/deploy/{run_id}") and r.time >= after]


def test_push_is_used_and_logs_stay_exactly_once(fake_factory):
    server = fake_factory(dag(Step("a", [lines(200, "a{i}"), sleep(1.5), lines(200, "b{i}")])), version="2.6.5")
    result = run_cli("run", "deploy", "--url", server.url, "--run-id", "p1")
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == [f"a{i}" for i in range(1, 201)] + [f"b{i}" for i in range(1, 201)]
    (stream,) = stream_requests(server)
    assert "topic=dagrun%3Adeploy%2Fp1" in stream.url or "dagrun:deploy/p1" in str(stream.query)


def test_quiet_step_is_watched_by_push_not_by_polls(fake_factory):
    server = fake_factory(dag(Step("quiet", [out("start"), sleep(17), out("end")])), version="2.6.5")
    proc = start_cli("run", "deploy", "--url", server.url, "--run-id", "p2")
    proc.wait_for("start")
    began = time.monotonic()
    result = proc.finish()
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == ["start", "end"]
    # Once the backoff has ramped up (~7 s), polling alone would poll every ~2.5 s: 3 times in
    # these 8 s. With push, only the watchdog polls, once every 10 s.
    quiet = [r for r in status_polls(server, "p2") if began + 8 < r.time < began + 16]
    assert len(quiet) <= 1, [round(r.time - began, 1) for r in quiet]


def test_dropped_stream_falls_back_to_polling(fake_factory):
    server = fake_factory(dag(Step("s", [out("one"), sleep(3), out("two")])), version="2.6.5")
    proc = start_cli("run", "deploy", "--url", server.url, "--run-id", "p3")
    proc.wait_for("one")
    time.sleep(0.5)
    server.drop_streams()
    result = proc.finish()
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == ["one", "two"]
    assert "events stream" not in result.output  # falls back without a word


def test_no_push_and_servers_without_the_stream(fake_factory):
    new = fake_factory(dag(Step("s", [out("x")])), version="2.6.5")
    assert run_cli("run", "deploy", "--url", new.url, "--no-push").code == 0
    assert not stream_requests(new)
    old = fake_factory(dag(Step("s", [out("x")])), version="2.2.0")
    assert run_cli("run", "deploy", "--url", old.url).code == 0
    assert not stream_requests(old)
