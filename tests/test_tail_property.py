"""Property: whatever a step writes, in whatever pieces and pauses, the follower shows
every line exactly once, in order, whole (stdout and stderr alike)."""
from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dagu_ci.client import Connection, DaguClient
from dagu_ci.events import StepLog
from dagu_ci.follower import FollowOptions, Follower
from dagu_ci.logtail import RELEASE_AFTER
from tests.fakedagu import Dag, FakeDagu, Step, raw, sleep

piece = st.tuples(
    st.text(alphabet="abcxyz019 -é", min_size=0, max_size=12),
    st.booleans(),  # ends the line
    st.sampled_from(["stdout", "stderr"]),
    st.sampled_from([0.0, 0.0, 0.1, 0.3, 0.6]),  # pauses across the server's 500 ms flush
)


# A half-written line left unchanged for RELEASE_AFTER is shown on purpose (a quiet step's
# "waiting..." line), and its rest then shows as a line of its own: that is tested elsewhere.
# Here pauses stop short of it, with room for scheduling, so every line must arrive whole.
QUIET_BELOW = RELEASE_AFTER - 0.5


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(piece, min_size=1, max_size=14))
@example([("x0-0", False, "stdout", 0.6)] * 5 + [("zz", False, "stdout", 0.0)])  # once split by the release
def test_every_line_exactly_once_in_order(pieces):
    actions, written = [], {"stdout": "", "stderr": ""}
    unchanged_for = {"stdout": 0.0, "stderr": 0.0}  # how long each stream's half-written line has stood still
    for text, newline, stream, pause in pieces:
        chunk = text + ("\n" if newline else "")
        actions.append(raw(chunk, stream=stream))
        written[stream] += chunk
        if chunk:
            unchanged_for[stream] = 0.0
        waiting = [s for s in written if written[s] and not written[s].endswith("\n")]
        if pause and all(unchanged_for[s] + pause < QUIET_BELOW for s in waiting):
            actions.append(sleep(pause))
            for s in waiting:
                unchanged_for[s] += pause
    expected = {stream: text.split("\n")[:-1] if text.endswith("\n") else text.split("\n") for stream, text in written.items()}
    expected = {stream: lines for stream, lines in expected.items() if written[stream]}

    with FakeDagu(version="2.6.5") as server:
        server.add_dag(Dag(file="p", steps=[Step("s", actions)]))
        client = DaguClient(Connection(url=server.url))
        client.detect()
        assert client.post_start("p", {"dagRunId": "prop"}, enqueue=False).status_code == 200
        seen = {"stdout": [], "stderr": []}

        def collect(event):
            if isinstance(event, StepLog):
                seen[event.stream].extend(event.lines)

        Follower(client, "p", "prop", collect, FollowOptions(poll_interval=0.05, push=False)).follow()
        client.close()
    assert {stream: lines for stream, lines in seen.items() if lines or stream in expected} == expected
