"""The end of a run on real Dagu (issue 17): the terminal status is written with the last step's
end, before the handlers run and before the outputs; the run has ended with the write that
carries finishedAt."""

from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.test_run_e2e import log_lines

HANDLERS = """
handlerOn:
  success:
    command: sh -c 'sleep 0.5; echo notifying; exit 5'
  exit:
    command: sh -c 'sleep 0.5; echo cleaning up'
steps:
  - name: build
    command: echo built
"""


def test_handlers_are_followed_and_a_failing_one_fails_the_run(real_dagu):
    server = real_dagu({"handlers": HANDLERS})
    result = run_cli("run", "handlers", "--url", server.url, "--run-id", "h1", "--json")
    assert result.code == 1, result.output
    document = json.loads(result.stdout)
    assert document["status"] == "failed"
    assert {s["name"]: s["status"] for s in document["steps"]} == {
        "build": "succeeded",
        "onSuccess": "failed",
        "onExit": "succeeded",
    }
    assert log_lines(result.stderr) == ["built", "notifying", "cleaning up"], result.stderr
