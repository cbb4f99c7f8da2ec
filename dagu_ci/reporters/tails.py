"""The last lines each step logged: what a failure annotation or a JUnit failure carries."""

from __future__ import annotations

from collections import deque
from typing import Deque, Dict, List

from dagu_ci.follow.events import StepLog, StepStarted
from dagu_ci.redaction import redact
from dagu_ci.reporters import Reporter
from dagu_ci.server.models import StepSnapshot

TAIL_LINES = 30  # how many of a failed step's last lines an annotation or JUnit failure carries


class StepTails(Reporter):
    """Remembers the last lines each step logged (a failure's most telling part)."""

    def __init__(self, keep: int = TAIL_LINES):
        self.keep = keep
        self._tails: Dict[str, Deque[str]] = {}

    def on_step_started(self, event: StepStarted) -> None:
        self._tails.pop(event.step.name, None)  # a new attempt: its own lines only

    def on_log(self, event: StepLog) -> None:
        tail = self._tails.setdefault(event.step, deque(maxlen=self.keep))
        lines = list(event.lines)
        if event.continued and tail and lines:
            tail[-1] += lines.pop(0)  # the rest of a line shown before its end
        tail.extend(lines)

    def last_lines(self, step: StepSnapshot) -> List[str]:
        """The step's last lines; without logs (--no-logs), the error Dagu recorded."""
        lines = list(self._tails.get(step.name, ()))
        if not lines and step.error:
            lines = step.error.splitlines()
        return [redact(line) for line in lines]  # for files too (JUnit), not only the console
