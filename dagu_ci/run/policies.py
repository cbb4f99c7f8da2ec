"""What is checked on every snapshot while a run is followed: --on-waiting and --queue-timeout,
where a queued run stands, and how several such checks make one."""

from __future__ import annotations

import time
from typing import Callable, Optional, Tuple

from dagu_ci.errors import ExitCode, PolicyEnd
from dagu_ci.run.request import OnWaiting, RunRequest
from dagu_ci.run.result import Ending
from dagu_ci.server.models import RunSnapshot, RunStatus, StepStatus

QueuePosition = Tuple[str, int, int]  # the queue's name, the run's place, the queue's length
Check = Callable[[RunSnapshot], None]  # raises to end the follow


class Policies:
    """Checked on every snapshot: --on-waiting and --queue-timeout, and where a queued run stands."""

    QUEUE_LOOK_EVERY = 10.0

    def __init__(
        self, request: RunRequest, url: str, position: Callable[[], Optional[QueuePosition]], say: Callable[[str], None]
    ):
        self.request = request
        self.url = url
        self.ran = False
        self.queued_since: Optional[float] = None
        self._position = position
        self._say = say
        self._last_look = 0.0
        self._last_position: Optional[QueuePosition] = None

    def check(self, snapshot: RunSnapshot) -> None:
        status = snapshot.status
        if status == RunStatus.QUEUED:
            self._show_position()
        if status not in (RunStatus.QUEUED, RunStatus.NOT_STARTED) or any(s.status.has_started for s in snapshot.steps):
            self.ran = True
        if status == RunStatus.WAITING and self.request.on_waiting == OnWaiting.FAIL:
            steps = ", ".join(s.name for s in snapshot.steps if s.status == StepStatus.WAITING) or "a step"
            raise PolicyEnd(
                f"run waits for approval of {steps}; it was left waiting (--on-waiting fail). Approve it at {self.url}",
                ExitCode.ABORTED,
                stop_run=False,
                ending=Ending.LEFT_WAITING.value,
            )
        if status == RunStatus.QUEUED and not self.ran and self.request.queue_timeout > 0:
            now = time.monotonic()
            self.queued_since = self.queued_since or now
            if now - self.queued_since >= self.request.queue_timeout:
                raise PolicyEnd(
                    f"the run never started: still queued after {self.request.queue_timeout:g}s; it was dequeued",
                    ExitCode.TIMEOUT,
                    stop_run=True,
                    ending=Ending.QUEUE_TIMEOUT.value,
                )

    def _show_position(self) -> None:
        now = time.monotonic()
        if now - self._last_look < self.QUEUE_LOOK_EVERY:
            return
        self._last_look = now
        position = self._position()
        if position and position != self._last_position:
            queue, place, total = position
            self._say(f"queue {queue}: position {place} of {total}")
        self._last_position = position


def all_of(*checks: Check) -> Check:
    """One check that runs each of `checks` in turn."""

    def check(snapshot: RunSnapshot) -> None:
        for each in checks:
            each(snapshot)

    return check
