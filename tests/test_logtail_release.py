"""A half-written last line is held back until it has stood still for RELEASE_AFTER
seconds of dagu-ci's clock, then shown, and its rest shown as a line of its own (a quiet
step's "waiting..." line). The tailer runs on the test's clock, so no race with the fake."""

from __future__ import annotations

from typing import List

from dagu_ci.follow.logtail import RELEASE_AFTER, LogTailer, ReadMode
from dagu_ci.server.api import DaguClient, RunStart, Started
from dagu_ci.server.client import Connection, Retry
from tests.conftest import eventually
from tests.fakedagu import Dag, FakeDagu, Step, hold, out, raw


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_half_line_shows_after_standing_still_and_its_rest_follows_alone():
    steps = [Step("s", [out("first"), raw("waiting"), hold("rest"), out("... done")])]
    with FakeDagu(version="2.6.5") as server:
        server.add_dag(Dag(file="p", steps=steps))
        client = DaguClient(Connection(url=server.url))
        client.detect()
        assert client.start_run("p", RunStart("r"), enqueue=False) is Started.NEW
        server.wait_held("rest")
        clock = Clock()
        tailer = LogTailer(client, "p", "r", lambda: Retry.for_seconds(30), clock=clock)

        def read(mode: ReadMode) -> List[str]:
            step = client.get_run("p", "r").step("s")
            assert step is not None
            return [line for chunk in tailer.read(step, "stdout", step.stdout, mode) for line in chunk.lines]

        seen: List[str] = []
        eventually(lambda: seen.extend(read(ReadMode.LIVE)) or seen, "the first flush of the step's output")
        assert seen == ["first"]  # "waiting" may be half-written: held back
        clock.now += RELEASE_AFTER - 0.1
        assert read(ReadMode.LIVE) == []
        clock.now += 0.1
        assert read(ReadMode.LIVE) == ["waiting"]  # unchanged for RELEASE_AFTER: shown
        assert read(ReadMode.LIVE) == []  # once
        server.release("rest")
        server.wait_for_status("p", "r", 4)
        assert read(ReadMode.FLUSH) == ["... done"]  # the rest of the line, not the line again
        assert read(ReadMode.FINAL) == []
        client.close()
