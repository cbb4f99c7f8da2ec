"""The wait-and-tail loop: poll a run until it ends, streaming every step's log.

    1. Read the run's status.
    2. Announce what changed: the run's status, steps that started.
    3. Read each started step's new log lines (a finished step gets its last lines).
    4. Announce steps that finished.
    5. If the run is over, read every step once more and return the final snapshot.
    6. Otherwise wait (longer while nothing changes) and go to 1.

The loop knows nothing of CI hosts: it emits events, and reporters render them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Set

from dagu_ci.client import DaguClient, Retry
from dagu_ci.errors import ServerError, TimedOut
from dagu_ci.events import (
    Event,
    Level,
    Notice,
    RunStatusChanged,
    StepFinished,
    StepLog,
    StepStarted,
    Tick,
)
from dagu_ci.logtail import LogTailer, ReadMode
from dagu_ci.models import RunSnapshot, StepSnapshot

Sink = Callable[[Event], None]

MAX_INTERVAL = 5.0
OUTAGE_NOTICE_EVERY = 30.0


@dataclass
class FollowOptions:
    poll_interval: float = 1.0
    logs: bool = True
    deadline: Optional[float] = None  # monotonic; TimedOut when passed
    max_outage: float = 1800.0  # give up after this long without an answer


class Backoff:
    """The base interval while things change; up to 1.5x longer each quiet poll."""

    def __init__(self, base: float, cap: float = MAX_INTERVAL):
        self.base = base
        self.cap = max(base, cap)
        self.current = base

    def next(self, changed: bool) -> float:
        self.current = self.base if changed else min(self.current * 1.5, self.cap)
        return self.current


class Follower:
    def __init__(
        self,
        client: DaguClient,
        dag_name: str,
        run_id: str,
        emit: Sink,
        options: FollowOptions,
    ):
        self.client = client
        self.dag_name = dag_name
        self.run_id = run_id
        self.emit = emit
        self.options = options
        self.tailer = LogTailer(client, dag_name, run_id, self._retry)
        self.last: Optional[RunSnapshot] = None
        self._started: Set[str] = set()
        self._finished: Dict[str, StepSnapshot] = {}
        self._last_outage_notice = 0.0
        client.on_retry = self._on_retry
        client.on_recover = self._on_recover

    def follow(self) -> RunSnapshot:
        backoff = Backoff(self.options.poll_interval)
        while True:
            snapshot = self._poll()
            changed = self._observe(snapshot)
            self.emit(Tick(snapshot))
            if snapshot.is_over:
                self._drain_all(snapshot)
                return snapshot
            self._sleep(backoff.next(changed))

    def settle(self, seconds: float, interval: float = 0.25) -> RunSnapshot:
        """After a stop: keep following briefly until the run shows its end."""
        self.options.deadline = time.monotonic() + seconds
        self.options.poll_interval = interval
        try:
            return self.follow()
        except (TimedOut, ServerError):
            return self.last or self.client.get_run(self.dag_name, self.run_id, Retry.for_seconds(2))

    # -- one poll -------------------------------------------------------------

    def _poll(self) -> RunSnapshot:
        try:
            snapshot = self.client.get_run(self.dag_name, self.run_id, self._retry())
        except ServerError:
            if self._past_deadline():
                raise TimedOut() from None
            raise
        return snapshot

    def _observe(self, snapshot: RunSnapshot) -> bool:
        previous = self.last
        self.last = snapshot
        changed = previous is None or previous.status != snapshot.status
        if changed:
            self.emit(RunStatusChanged(snapshot, previous.status if previous else None))
        for step in snapshot.steps:
            changed |= self._observe_step(step)
        return changed

    def _observe_step(self, step: StepSnapshot) -> bool:
        changed = False
        seen = self._finished.get(step.name)
        if seen is not None and (not step.status.is_finished or seen.stdout != step.stdout):
            # A new attempt runs the step again (new log files): announce it afresh.
            del self._finished[step.name]
            self._started.discard(step.name)
        if step.status.has_started and step.name not in self._started:
            self._started.add(step.name)
            self.emit(StepStarted(step))
            changed = True
        if step.name not in self._started or step.name in self._finished:
            return changed
        if self.options.logs:
            mode = ReadMode.FLUSH if step.status.is_finished else ReadMode.LIVE
            changed |= self._tail(step, mode)
        if step.status.is_finished:
            self._finished[step.name] = step
            self.emit(StepFinished(step))
            changed = True
        return changed

    def _tail(self, step: StepSnapshot, mode: ReadMode) -> bool:
        shown = False
        for stream, path in self.tailer.streams(step):
            chunk = self.tailer.read(step, stream, path, mode)
            if chunk.restarted:
                self.emit(Notice(f"{step.name}: a new attempt began; its log starts afresh", step=step.name))
            for text in chunk.notices:
                self.emit(Notice(text, Level.WARNING, step=step.name))
            if chunk.lines:
                self.emit(StepLog(step.name, stream, chunk.lines))
                shown = True
        return shown

    def _drain_all(self, snapshot: RunSnapshot) -> None:
        """The agent flushes logs before it writes the final status: one last read of all."""
        if not self.options.logs:
            return
        for step in snapshot.steps:
            if step.name in self._started:
                self._tail(step, ReadMode.FINAL)

    # -- time and outages -----------------------------------------------------

    def _retry(self) -> Retry:
        limit = time.monotonic() + self.options.max_outage
        if self.options.deadline is not None:
            limit = min(limit, self.options.deadline)
        return Retry(limit)

    def _past_deadline(self) -> bool:
        return self.options.deadline is not None and time.monotonic() >= self.options.deadline

    def _sleep(self, seconds: float) -> None:
        if self.options.deadline is not None:
            remaining = self.options.deadline - time.monotonic()
            if remaining <= 0:
                raise TimedOut()
            seconds = min(seconds, remaining)
        time.sleep(seconds)

    def _on_retry(self, reason: str, delay: float) -> None:
        now = time.monotonic()
        if now - self._last_outage_notice >= OUTAGE_NOTICE_EVERY:
            self._last_outage_notice = now
            self.emit(Notice(f"server not answering ({reason}); retrying", Level.WARNING))

    def _on_recover(self, seconds: float) -> None:
        if self._last_outage_notice:
            self._last_outage_notice = 0.0
            self.emit(Notice(f"server answering again after {seconds:.0f}s; resuming"))
