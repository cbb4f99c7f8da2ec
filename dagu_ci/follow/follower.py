"""The wait-and-tail loop: follow a run until it ends, streaming every step's log.

    1. Read the run's status (pushed by the server where it can, else polled).
    2. Announce what changed: the run's status, steps that started.
    3. Read the new log lines of each started step that is due: busy logs often,
       quiet ones rarely, a finished step's last lines at once.
    4. Announce steps that finished.
    5. If the run is over, read every step once more and return the final snapshot.
    6. Otherwise wait (longer while nothing changes, or until the server pushes)
       and go to 1.

The loop knows nothing of CI hosts: it emits events, and reporters render them.
"""

from __future__ import annotations

import queue
import random
import time
from dataclasses import dataclass, replace
from typing import Callable, Dict, Optional, Set, Tuple

from dagu_ci.errors import ServerError, TimedOut
from dagu_ci.follow.ending import BusyCadence, EndPhase, EndWatch
from dagu_ci.follow.events import (
    Event,
    Level,
    Notice,
    RunStatusChanged,
    StepFinished,
    StepStarted,
    Tick,
    on_worker_notice,
)
from dagu_ci.follow.logtail import LOG_CAP, PUSHED_LOG_CAP, LogFeed, LogSchedule, LogTailer, ReadMode
from dagu_ci.follow.subruns import SubRunFollower, SubRunLogs
from dagu_ci.server.api import DaguClient
from dagu_ci.server.client import ApiError, RetriesExhausted, Retry
from dagu_ci.server.events_stream import Closed, EventsStream, LogTouched, PushedSnapshot
from dagu_ci.server.models import RunSnapshot, RunStatus, StepSnapshot

Sink = Callable[[Event], None]

STATUS_CAP = 2.5  # longest wait between status polls while nothing changes (the end is seen ~1.3 s late)
WATCHDOG = 10.0  # status poll while the server pushes, in case the stream goes quiet
SETTLE_OUTAGE = 5.0  # after a stop, give up watching the run settle after this long without an answer
UNKNOWN_STATUS_GRACE = 10.0  # a run status we do not know is an error once it has lasted this long
SHOWN_WITHIN = 15.0  # a run the server accepted may read 404 this long before it shows (real 1.x)


@dataclass
class FollowOptions:
    poll_interval: float = 0.5
    logs: bool = True
    deadline: Optional[float] = None  # monotonic; TimedOut when passed
    max_outage: float = 1800.0  # give up after this long without an answer
    push: bool = True  # use the server's events stream where it has one
    wait_auto_retry: bool = True  # a failed run Dagu will retry is not over yet
    check: Optional[Callable[[RunSnapshot], None]] = None  # policies: may raise PolicyEnd
    # Steps an earlier attempt ended, as it left them: a retry of one step leaves the others
    # as they were (same log files), and they are not news. Its sub-runs' steps too, named
    # by their paths (RunSnapshot.all_steps).
    ended_before: Tuple[StepSnapshot, ...] = ()
    sub_run_logs: str = "all"  # subruns.SubRunLogs: which sub-DAG runs' step logs to show


class Backoff:
    """The base interval while things change; up to 1.5x longer each quiet round."""

    def __init__(self, base: float, cap: float):
        self.base = base
        self.cap = max(base, cap)
        self.current = base

    def next(self, changed: bool) -> float:
        self.current = self.base if changed else min(self.current * 1.5, self.cap)
        # Jitter: many CI jobs watching one server should not poll in step, and a run's
        # end should not keep falling at the same phase of our polls.
        return self.current * random.uniform(0.85, 1.15) if not changed else self.current


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
        self.schedule = LogSchedule(options.poll_interval)
        self.log_feed = LogFeed(self.tailer, self.schedule, emit)
        self.last: Optional[RunSnapshot] = None
        self._started: Set[str] = set()
        self._finished: Dict[str, StepSnapshot] = {}
        self._earlier = {s.name: s.stdout for s in options.ended_before if s.status.is_finished}
        self._started.update(self._earlier)
        self._finished.update({s.name: s for s in options.ended_before if s.name in self._earlier})
        self._push: Optional[EventsStream] = None
        self._push_tried = False
        self._last_status = 0.0
        self._unknown_since: Optional[float] = None
        self._unseen_since: Optional[float] = None  # the first 404 for a run not seen yet
        self._workers_told: Set[str] = set()
        policy = SubRunLogs(options.sub_run_logs) if options.logs else SubRunLogs.NONE
        self.subruns = SubRunFollower(
            client,
            dag_name,
            run_id,
            emit,
            self._retry,
            options.poll_interval,
            policy,
            options.ended_before,
            push=options.push,
        )
        self.end = EndWatch(wait_auto_retry=options.wait_auto_retry)
        self._removed = False  # the server removed the run (dequeued before it ran): nothing more to see
        self._over = False  # this round's snapshot is the run's end: a step seen ending now is read once, in full
        self._read_final: Set[str] = set()

    def follow(self) -> RunSnapshot:
        backoff = Backoff(self.options.poll_interval, STATUS_CAP)
        busy = BusyCadence(self.options.poll_interval)
        self._read_final.clear()
        try:
            snapshot = self._poll()
            while True:
                phase = EndPhase.OVER if self._removed else self.end.phase(snapshot)
                handler_wait = self.end.handler_notice(snapshot)
                if handler_wait:
                    self.emit(Notice(handler_wait))
                self._over = phase is EndPhase.OVER
                changed = self._observe(snapshot)
                changed |= self.subruns.round(snapshot)  # sub-DAG runs (subruns.py)
                self._check_known(snapshot)
                self.emit(Tick(snapshot, self._pending(snapshot)))
                if self.options.check:
                    self.options.check(snapshot)
                if phase is EndPhase.OVER:
                    self.subruns.round(snapshot, final=True)
                    self._drain_all(snapshot)
                    self.last = snapshot = replace(snapshot, children=self.subruns.tree())
                    return snapshot
                self._open_push(snapshot)
                backoff.cap = max(backoff.base, self.subruns.status_cap(STATUS_CAP))
                interval = backoff.next(changed)
                quick = self.end.quick_wait(phase)  # only the run's last write is missing: look again soon
                shorter = [wait for wait in (quick, busy.wait(changed)) if wait is not None]
                if shorter:  # (busy: its end comes with its last change; only the status shows it)
                    snapshot = self._next(min(interval, *shorter), quiet=False)
                else:
                    snapshot = self._next(interval, quiet=backoff.current >= backoff.cap)
        except RetriesExhausted as exc:
            # The retry window was cut short by the deadline (the next try would have passed it).
            deadline = self.options.deadline
            if deadline is not None and exc.until is not None and exc.until >= deadline:
                raise TimedOut() from None
            raise
        finally:
            self._close_push()

    def settle(self, seconds: float, interval: float = 0.25) -> Optional[RunSnapshot]:
        """After a stop: keep following briefly until the run shows its end."""
        self.options.deadline = time.monotonic() + seconds
        # A server that does not answer now will not show the end either: do not wait it out.
        self.options.max_outage = min(self.options.max_outage, SETTLE_OUTAGE)
        self.options.poll_interval = interval
        self.schedule.base = interval
        try:
            return self.follow()
        except (TimedOut, ServerError):
            return self.last

    def _check_known(self, snapshot: RunSnapshot) -> None:
        """A status we do not know reads as "not started": waiting on it could last for ever."""
        if not snapshot.unknown_status:
            self._unknown_since = None
            return
        now = time.monotonic()
        if self._unknown_since is None:
            self._unknown_since = now
            self.emit(
                Notice(
                    f"the server reports status {snapshot.unknown_status} for the run, which dagu-ci does not know; "
                    f"waiting up to {UNKNOWN_STATUS_GRACE:g}s for one it knows",
                    Level.WARNING,
                )
            )
        elif now - self._unknown_since >= UNKNOWN_STATUS_GRACE:
            raise ServerError(
                f"the server reports status {snapshot.unknown_status} for run {self.run_id}, which dagu-ci does not know "
                f"(for {UNKNOWN_STATUS_GRACE:g}s): is the server newer than this dagu-ci?"
            )

    # -- one round ------------------------------------------------------------

    def _poll(self) -> RunSnapshot:
        while True:
            try:
                snapshot = self.client.get_run(self.dag_name, self.run_id, self._retry())
            except ServerError as exc:
                gone = isinstance(exc, ApiError) and exc.status == 404
                if gone and self.last is None and self._shown_late():
                    continue
                if gone and self.last is not None and _never_ran(self.last):
                    return self._dequeued(self.last)
                if self._past_deadline():
                    raise TimedOut() from None
                if gone and self.last is None:
                    raise ServerError(
                        f"the server accepted run {self.run_id} of {self.dag_name} but has not shown it "
                        f"within {SHOWN_WITHIN:g}s ({exc.message})"
                    ) from None
                raise
            self._last_status = time.monotonic()
            return snapshot

    def _shown_late(self) -> bool:
        """A run never seen reads 404: wait a little for it (then True), or give up. Real 1.x
        can answer a start before the run exists: its start handler waits on the DAG's
        socket, which another running run of the same DAG answers."""
        now = time.monotonic()
        if self._unseen_since is None:
            self._unseen_since = now
        if now - self._unseen_since >= SHOWN_WITHIN or self._past_deadline():
            return False
        time.sleep(self._bounded(self.options.poll_interval))
        return True

    def _dequeued(self, last: RunSnapshot) -> RunSnapshot:
        """Dagu removes a run dequeued before it ran (someone else dequeued it: a superseding
        job, the UI): its end, as aborted, not an error."""
        self.emit(Notice("the run was dequeued before it started (Dagu removed it)", Level.WARNING))
        self._removed = True
        return replace(last, status=RunStatus.ABORTED)

    def _next(self, interval: float, quiet: bool) -> RunSnapshot:
        """Wait for the next thing worth a look: a pushed snapshot, a log due, or status time."""
        # With push, keep polling while things change (quickest end detection) and let the
        # server's pushes plus a slow watchdog cover the quiet stretches (least load).
        status_due = self._last_status + (WATCHDOG if self._push and quiet else interval)
        wake = status_due
        for due in (self.schedule.next_due(), self.subruns.next_due()):
            if due is not None:
                wake = min(wake, due)
        timeout = self._bounded(max(0.0, wake - time.monotonic()))
        if self._push is None:
            time.sleep(timeout)
        else:
            try:
                message = self._push.messages.get(timeout=timeout)
            except queue.Empty:
                pass
            else:
                if isinstance(message, PushedSnapshot):
                    if self._behind(message.snapshot):
                        return self._poll()  # pushed before what we saw last: ask for now
                    self._last_status = time.monotonic()
                    return message.snapshot
                if isinstance(message, LogTouched):
                    self.schedule.touch(message.step)
                    return self._current()
                assert isinstance(message, Closed)
                self._close_push()  # quietly back to polling
                return self._poll()
        if self._past_deadline():
            raise TimedOut()
        return self._poll() if time.monotonic() >= status_due else self._current()

    def _behind(self, pushed: RunSnapshot) -> bool:
        """Might this pushed snapshot be older than what a poll showed since? A push can
        arrive late (a busy reader, a proxy). A step with other log files than we know, or
        unfinished where we saw it end, means an older snapshot or a new attempt; only a
        poll tells which, and an older attempt taken for a new one shows its log again."""
        known = {step.name: step for step in self.last.steps} if self.last is not None else {}
        for step in pushed.steps:
            before = known.get(step.name)
            if before is not None and before.stdout and step.stdout != before.stdout:
                return True
            seen = self._finished.get(step.name)
            if seen is not None and not step.status.is_finished:
                return True
        return False

    def _current(self) -> RunSnapshot:
        assert self.last is not None
        return self.last

    def _observe(self, snapshot: RunSnapshot) -> bool:
        previous = self.last
        self.last = snapshot
        changed = previous is None or previous.status != snapshot.status
        if changed:
            self.emit(RunStatusChanged(snapshot, previous.status if previous else None))
        self._note_worker(snapshot)
        for step in snapshot.steps:
            changed |= self._observe_step(step)
        return changed

    def _note_worker(self, snapshot: RunSnapshot) -> None:
        """A run on a worker: say so once per worker; where its log may come in bursts,
        show its lines only whole."""
        if not snapshot.on_worker:
            return  # (a pushed snapshot may lack workerId: a worker run stays one)
        bursts = self.client.api.features.worker_log_bursts
        self.tailer.whole_lines = bursts
        if snapshot.worker_id not in self._workers_told:
            self._workers_told.add(snapshot.worker_id)
            self.emit(Notice(on_worker_notice(snapshot.worker_id, bursts)))

    def _pending(self, snapshot: RunSnapshot) -> Tuple[str, ...]:
        """Running steps of a worker run whose last line waits for the next burst."""
        if not self.tailer.whole_lines:
            return ()  # a local run's held line shows within seconds: not worth a mention
        running = {step.name for step in snapshot.steps if not step.status.is_finished}
        return tuple(name for name in self.tailer.pending() if name in running)

    def _observe_step(self, step: StepSnapshot) -> bool:
        changed = False
        seen = self._finished.get(step.name)
        if seen is not None and (not step.status.is_finished or seen.stdout != step.stdout):
            # A new attempt runs the step again (new log files): announce it afresh.
            del self._finished[step.name]
            self._started.discard(step.name)
        if step.status.has_started and step.name not in self._started:
            self._started.add(step.name)
            if step.ran:  # one that ended before it began is only told as ended
                self.emit(StepStarted(step))
            changed = True
        if step.name not in self._started or step.name in self._finished:
            return changed
        if self.options.logs:
            mode = ReadMode.FLUSH if step.status.is_finished else ReadMode.LIVE
            if self._over and step.status.is_finished:
                mode = ReadMode.FINAL  # the run's last write is done: no second read in _drain_all
                self._read_final.add(step.name)
            changed |= self._tail(step, mode)
        if step.status.is_finished:
            self._finished[step.name] = step
            self.schedule.forget(step.name)  # read in full above: a read still due would wake us for ever
            self.emit(StepFinished(step))
            changed = True
        return changed

    def _tail(self, step: StepSnapshot, mode: ReadMode) -> bool:
        # Where the server says when logs change, periodic reads are only a safety net.
        self.schedule.cap = PUSHED_LOG_CAP if self._push and self._push.log_topics() else LOG_CAP
        return self.log_feed.tail(step, mode)

    def _drain_all(self, snapshot: RunSnapshot) -> None:
        """The agent flushes logs before it writes the final status: one last read of all."""
        if not self.options.logs:
            return
        for step in snapshot.steps:
            if step.name in self._read_final:
                continue
            if step.name in self._started and self._earlier.get(step.name, None) != step.stdout:
                self._tail(step, ReadMode.FINAL)

    # -- push -----------------------------------------------------------------

    def _open_push(self, snapshot: RunSnapshot) -> None:
        """Once, after the first look: subscribe to the run and its steps' logs."""
        if self._push_tried or not self.options.push or not EventsStream.available(self.client):
            return
        self._push_tried = True
        steps = [step.name for step in snapshot.steps] if self.options.logs else []
        self._push = EventsStream(self.client, self.dag_name, self.run_id, steps)
        self._push.open()  # held first: a cancel raised inside open() must still close it

    def _close_push(self) -> None:
        if self._push is not None:
            self._push.close()
            self._push = None
        self.subruns.close()  # the children's streams too (subruns.py)

    # -- time and outages -----------------------------------------------------

    def _retry(self) -> Retry:
        limit = time.monotonic() + self.options.max_outage
        if self.options.deadline is not None:
            limit = min(limit, self.options.deadline)
        return Retry(limit)

    def _past_deadline(self) -> bool:
        return self.options.deadline is not None and time.monotonic() >= self.options.deadline

    def _bounded(self, seconds: float) -> float:
        if self.options.deadline is None:
            return seconds
        remaining = self.options.deadline - time.monotonic()
        if remaining <= 0:
            raise TimedOut()
        return min(seconds, remaining)


def _never_ran(snapshot: RunSnapshot) -> bool:
    """Queued, or aborted before any step started: what a dequeue leaves before Dagu removes
    the run (real 1.30.3 writes it aborted, then removes it; a poll can fall in between)."""
    if snapshot.status == RunStatus.QUEUED:
        return True
    return snapshot.status == RunStatus.ABORTED and not any(step.status.has_started for step in snapshot.steps)
