"""When a run is over, and how soon to look again near its end.

What a Dagu agent writes at the end of a run (read in internal/runtime/agent/agent.go and
runner.go at v1.30.3 and v2.6.5, and watched on a real 1.30.3):

1. The last step's end is written with the run's status already terminal: the status is
   computed from the steps alone, and handlers are not steps.
2. Then the handlers run (onSuccess/onFailure/onAbort, then onExit). Nothing is written when
   one starts; each is written once it has ended, and a failed one turns the run failed.
3. Then the outputs are written, then the last status write, the first with `finishedAt`.
   Without handlers, 2 and 3 take about 10 ms.

So a terminal status is not yet the end: until `finishedAt` is written, the outputs may be
missing and the status may still change. Where the server finalises artifacts (2.6.5 remote
workers), the run even stays running with every step ended until the last write.

A run that failed and that Dagu will retry (DAG-level retryPolicy, 2.3+) is not over either;
the new attempt comes from the scheduler seconds later, so the usual cadence watches for it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from typing import Dict, Optional, Set, Tuple

from dagu_ci.server.models import RunSnapshot, RunStatus, StepSnapshot, StepStatus

QUICK_RECHECK = 0.075  # seconds between re-checks while only the run's last write is missing
QUICK_RECHECKS = 4  # then the usual cadence: a handful of requests per run at most
# Terminal, every step and handler ended, and still no finishedAt: a run whose agent never got
# that far (it failed to start, or died) writes nothing more; take its status as the end.
UNWRITTEN_END_GRACE = 2.0
# Terminal while a step still shows running: the agent never wrote that (it ends its steps
# first), so someone else did: 1.30.3's zombie check after a worker died. Nothing more comes,
# not even handlers; a longer wait, in case a live agent's next write is on its way.
DEAD_AGENT_GRACE = 10.0
# Every step ended and a handler has run this long: say so once. Nothing shows while a handler
# runs (Dagu writes it only once it has ended), and a long one looked like a hang.
HANDLER_NOTICE_AFTER = 5.0
# A busy run (lines arriving, steps starting or ending) has no quiet stretch before its end:
# Dagu writes the terminal status with the last step's end. Only the status poll sees it, so
# while busy the status is polled at this share of the base interval (0.15 s at the default
# 0.5 s), never below BUSY_FLOOR; BUSY_WINDOW seconds after the last change, the usual back-off.
BUSY_SHARE = 0.3
BUSY_FLOOR = 0.05
BUSY_WINDOW = 2.0

# The handler Dagu runs first for each terminal status (runner.go); onExit always runs last.
_FIRST_HANDLER: Dict[RunStatus, Tuple[str, ...]] = {
    RunStatus.SUCCEEDED: ("onSuccess",),
    RunStatus.PARTIALLY_SUCCEEDED: ("onSuccess",),
    RunStatus.FAILED: ("onFailure",),
    RunStatus.REJECTED: ("onFailure",),
    RunStatus.ABORTED: ("onAbort", "onCancel"),  # 2.x and 1.x names
}
_FIRST_KEYS = ("onSuccess", "onFailure", "onAbort", "onCancel")


class EndPhase(Enum):
    RUNNING = "running"  # steps or handlers still to end, or an auto-retry to come
    SETTLING = "settling"  # everything has ended; the run's last write is still to come
    OVER = "over"


def pending_handler(snapshot: RunSnapshot) -> Optional[str]:
    """The first handler that will run for this run's status and has not ended yet, if any."""
    handlers: Dict[str, StepSnapshot] = {s.handler_key: s for s in snapshot.steps if s.handler}
    if not handlers:
        return None
    ran = any(s.started_at is not None for s in snapshot.steps if not s.handler) or any(
        h.status.is_finished for h in handlers.values()
    )
    if not ran:
        return None  # the agent never reached its steps (it failed to start): no handler will run
    on_exit = handlers.get("onExit")
    if on_exit is not None and on_exit.status.is_finished:
        return None  # the last handler has ended
    first_ran = any(handlers[key].status.is_finished for key in _FIRST_KEYS if key in handlers)
    if not first_ran:  # (once it ran it may have turned the run failed: onFailure does not run then)
        for key in _FIRST_HANDLER.get(snapshot.status, ()):
            if key in handlers and not handlers[key].status.is_finished:
                return key
    return "onExit" if on_exit is not None else None


def handlers_pending(snapshot: RunSnapshot) -> bool:
    """Has a handler that will run for this run's status not ended yet?"""
    return pending_handler(snapshot) is not None


def steps_ended(snapshot: RunSnapshot) -> bool:
    return all(s.status.is_finished for s in snapshot.steps if not s.handler)


def agent_lost(snapshot: RunSnapshot) -> bool:
    """Terminal with a step still running: written by someone other than the run's agent."""
    return snapshot.status.is_terminal and any(s.status == StepStatus.RUNNING for s in snapshot.steps if not s.handler)


@dataclass
class EndWatch:
    """Decides, snapshot by snapshot, whether the run is over, and asks for quick re-checks
    while only its last write is missing."""

    wait_auto_retry: bool = True
    quick: float = QUICK_RECHECK
    quick_checks: int = QUICK_RECHECKS
    grace: float = UNWRITTEN_END_GRACE
    dead_agent_grace: float = DEAD_AGENT_GRACE

    def __post_init__(self) -> None:
        self._quick_left = self.quick_checks
        self._settling: Optional[RunSnapshot] = None
        self._settling_since = 0.0
        self._handler_since: Optional[Tuple[str, float]] = None
        self._handlers_told: Set[str] = set()

    def phase(self, snapshot: RunSnapshot, now: Optional[float] = None) -> EndPhase:
        now = time.monotonic() if now is None else now
        phase = self._phase(snapshot)
        if phase is not EndPhase.SETTLING:
            self._settling = None
            if phase is EndPhase.RUNNING:
                self._quick_left = self.quick_checks  # a new attempt gets its own re-checks
            return phase
        if self._settling != snapshot:
            self._settling, self._settling_since = snapshot, now
        elif snapshot.status.is_terminal:
            grace = self.dead_agent_grace if agent_lost(snapshot) else self.grace
            if now - self._settling_since >= grace:
                return EndPhase.OVER
        return phase

    def _phase(self, snapshot: RunSnapshot) -> EndPhase:
        if snapshot.auto_retry_pending and self.wait_auto_retry:
            return EndPhase.RUNNING
        terminal = snapshot.status.is_terminal
        if terminal and snapshot.finished_at is not None:
            return EndPhase.OVER
        if agent_lost(snapshot):
            return EndPhase.SETTLING
        if handlers_pending(snapshot) or any(s.status == StepStatus.RUNNING for s in snapshot.steps):
            return EndPhase.RUNNING
        if terminal or (snapshot.status == RunStatus.RUNNING and snapshot.steps and steps_ended(snapshot)):
            return EndPhase.SETTLING
        return EndPhase.RUNNING

    def handler_notice(self, snapshot: RunSnapshot, now: Optional[float] = None) -> Optional[str]:
        """What to say, once per handler, when every step has ended and a handler has run for
        HANDLER_NOTICE_AFTER seconds; None otherwise."""
        now = time.monotonic() if now is None else now
        if not (snapshot.steps and steps_ended(snapshot)):
            self._handler_since = None
            self._handlers_told.clear()  # a new attempt's handlers are news again
            return None
        handler = pending_handler(snapshot)
        if handler is None or handler in self._handlers_told:
            return None
        if self._handler_since is None or self._handler_since[0] != handler:
            self._handler_since = (handler, now)
            return None
        if now - self._handler_since[1] < HANDLER_NOTICE_AFTER:
            return None
        self._handlers_told.add(handler)
        return (
            f"every step has ended; waiting for the {handler} handler "
            "(Dagu shows a handler's log only once it has ended)"
        )

    def quick_wait(self, phase: EndPhase) -> Optional[float]:
        """The wait before the next status check while settling (None: the usual cadence)."""
        if phase is not EndPhase.SETTLING or self._quick_left <= 0:
            return None
        self._quick_left -= 1
        return self.quick


@dataclass
class BusyCadence:
    """The status poll's wait while the run is busy: short, for a busy run's end comes with its
    last change and nothing else shows it. None once quiet (the usual back-off, unchanged)."""

    base: float
    share: float = BUSY_SHARE
    window: float = BUSY_WINDOW

    def __post_init__(self) -> None:
        self._changed_at: Optional[float] = None

    def wait(self, changed: bool, now: Optional[float] = None) -> Optional[float]:
        now = time.monotonic() if now is None else now
        if changed:
            self._changed_at = now
        if self._changed_at is None or now - self._changed_at >= self.window:
            return None
        return min(self.base, max(BUSY_FLOOR, self.base * self.share))
