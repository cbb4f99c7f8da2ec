"""Property: whatever a step writes, in whatever pieces and pauses, the follower shows
every line exactly once, in order, whole (stdout and stderr alike)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from dagu_ci.follow import logtail
from dagu_ci.follow.events import StepLog
from dagu_ci.follow.follower import Follower, FollowOptions
from dagu_ci.server.api import DaguClient, RunStart, Started
from dagu_ci.server.client import Connection
from tests.fakedagu import Dag, FakeDagu, Step, raw, sleep

piece = st.tuples(
    st.text(alphabet="abcxyz019 -é", min_size=0, max_size=12),
    st.booleans(),  # ends the line
    st.sampled_from(["stdout", "stderr"]),
    st.sampled_from([0.0, 0.0, 0.1, 0.3, 0.6]),  # pauses across the server's 500 ms flush
)


# A half-written line left unchanged for RELEASE_AFTER is shown on purpose (a quiet step's
# "waiting..." line), and its rest then shows as a line of its own: test_logtail_release.py
# tests that on its own clock. Here the release is put out of reach, so however slow the
# machine (a pause of the fake's step can stretch), every line must arrive whole.
OUT_OF_REACH = 3600.0


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(piece, min_size=1, max_size=14))
@example([("x0-0", False, "stdout", 0.6)] * 5 + [("zz", False, "stdout", 0.0)])  # 3 s mid-line: past the real release
def test_every_line_exactly_once_in_order(pieces):
    actions, written = [], {"stdout": "", "stderr": ""}
    for text, newline, stream, pause in pieces:
        chunk = text + ("\n" if newline else "")
        actions.append(raw(chunk, stream=stream))
        written[stream] += chunk
        if pause:
            actions.append(sleep(pause))
    expected = {
        stream: text.split("\n")[:-1] if text.endswith("\n") else text.split("\n") for stream, text in written.items()
    }
    expected = {stream: lines for stream, lines in expected.items() if written[stream]}

    with FakeDagu(version="2.6.5") as server:
        server.add_dag(Dag(file="p", steps=[Step("s", actions)]))
        client = DaguClient(Connection(url=server.url))
        client.detect()
        assert client.start_run("p", RunStart("prop"), enqueue=False) is Started.NEW
        seen = {"stdout": [], "stderr": []}

        def collect(event):
            if isinstance(event, StepLog):
                seen[event.stream].extend(event.lines)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(logtail, "RELEASE_AFTER", OUT_OF_REACH)
            Follower(client, "p", "prop", collect, FollowOptions(poll_interval=0.05, push=False)).follow()
        client.close()
    assert {stream: lines for stream, lines in seen.items() if lines or stream in expected} == expected
