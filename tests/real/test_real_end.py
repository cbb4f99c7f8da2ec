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


SLOW_EXIT = """
handlerOn:
  exit:
    command: sh -c 'sleep 8; echo cleaned up'
steps:
  - name: build
    command: echo built
"""


def test_a_long_exit_handler_is_named_while_the_run_waits_for_it(real_dagu):
    """Real 1.30.3 writes a handler only once it has ended: dagu-ci says what it waits for."""
    server = real_dagu({"slowexit": SLOW_EXIT})
    result = run_cli("run", "slowexit", "--url", server.url, "--run-id", "e1", "--reporter", "plain")
    assert result.code == 0, result.output
    assert result.stdout.count("every step has ended; waiting for the onExit handler") == 1, result.stdout
    assert log_lines(result.stdout) == ["built", "cleaned up"], result.stdout
