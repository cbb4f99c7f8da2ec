"""The follow loop wakes only for something to do: a status poll, a log read that is due.
A step that has ended is never read again, so it must not keep the loop awake (it used to:
its reads stayed due for ever, and dagu-ci spun a core from the first step's end to the run's).
Counted, not timed: every round of the loop (a Tick) against the requests it made."""

from __future__ import annotations

import threading

from dagu_ci.follow.events import Tick
from dagu_ci.follow.follower import Follower, FollowOptions
from dagu_ci.server.api import DaguClient, RunStart, Started
from dagu_ci.server.client import Connection
from tests.conftest import eventually
from tests.fakedagu import Dag, FakeDagu, Step, hold, out


def test_an_ended_step_does_not_keep_the_loop_awake():
    steps = [Step("first", [out("one")]), Step("quiet", [out("start"), hold("quiet")], depends=["first"])]
    with FakeDagu(version="2.2.0") as server:
        server.add_dag(Dag(file="deploy", steps=steps))
        client = DaguClient(Connection(url=server.url))
        client.detect()
        assert client.start_run("deploy", RunStart("r1"), enqueue=False) is Started.NEW
        ticks = []
        follower = Follower(
            client,
            "deploy",
            "r1",
            lambda e: ticks.append(e) if isinstance(e, Tick) else None,
            FollowOptions(poll_interval=0.1, push=False),
        )
        thread = threading.Thread(target=follower.follow, daemon=True)
        thread.start()
        server.wait_held("quiet")
        since = len(server.requests)
        eventually(
            lambda: len([r for r in server.requests[since:] if r.path.endswith("/dag-runs/deploy/r1")]) >= 5,
            "five status polls while the second step is quiet",
        )
        server.release("quiet")
        thread.join(timeout=60)
        assert not thread.is_alive()
        client.close()
        requests = [r for r in server.requests if "/dag-runs/deploy/r1" in r.path]
    # Each round asks the server something (the last round's final reads ask more than one).
    assert len(ticks) <= len(requests), (len(ticks), len(requests))
