"""The events stream ends with the run, whatever its framing: dagu-ci never hangs at the end.

A reverse proxy may hand the stream on close-delimited (`Connection: close`, no chunked
encoding), and a quiet stream may carry nothing but heartbeats for minutes. Either way, once
the run has ended, dagu-ci must close the stream and exit.
"""

from __future__ import annotations

import pytest

from tests.conftest import run_cli
from tests.fakedagu import Dag, Step, out, sleep
from tests.test_push_e2e import stream_requests
from tests.test_run_e2e import log_lines

# Far above what an exit takes even on a loaded machine, below the failure it guards against:
# dagu-ci waiting on an idle stream until its 35 s read timeout. Past it, run_cli fails the
# test with where dagu-ci's threads were.
EXITS_WITHIN = 30


@pytest.mark.parametrize("framing", ["chunked", "close"])
@pytest.mark.parametrize("heartbeat", [3600.0, 0.2], ids=["silent", "heartbeats"])
@pytest.mark.parametrize("logs", [True, False], ids=["logs", "no-logs"])
def test_run_exits_after_its_end_on_any_framing(fake_factory, framing, heartbeat, logs):
    server = fake_factory(
        Dag(file="deploy", steps=[Step("s", [out("one"), sleep(1.5), out("two")])]),
        version="2.6.5",
        sse_framing=framing,
        sse_heartbeat=heartbeat,
    )
    # --no-logs subscribes to the run alone: after its last push the stream is idle for good.
    args = ["run", "deploy", "--url", server.url, "--run-id", f"f-{framing}"] + ([] if logs else ["--no-logs"])
    result = run_cli(*args, timeout=EXITS_WITHIN)
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == (["one", "two"] if logs else [])
    assert stream_requests(server), "the events stream was not used"
