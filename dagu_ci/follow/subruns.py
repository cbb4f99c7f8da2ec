"""Following sub-DAG runs (issue 13): `call`/`run` steps, `parallel` fan-outs, nesting.

A step that calls a DAG lists its children in its node; the children's steps are
followed like the run's own, and told as steps named by their path:
`deploy › leaf[eu-west] › migrate` (the calling step, the child DAG with the parallel
item or params that tell it from its siblings, the child's step).

Load: the children's statuses come from one list request per parent (`GET
…/sub-dag-runs`, 1.24+; `?parentSubDAGRunId=` for deeper levels, 1.26.7+), on a
schedule that slows while nothing changes. A child's details are read when its status
changes; only the first running child (in tree order) is tailed live, the others' logs
are read whole when they end: grouped output shows one group live anyway, and a quiet
fan-out of 100 children costs no more than one. Where there is no list (before 1.24),
each active child's details are read on that schedule instead.

With push (the events stream's `subdagrun` topics, 2.4.2+) nothing is polled for the
children: each one's details come pushed when they change (on a few extra streams of
20 topics each, opened once), and a live child's quiet log is read only as a safety
net, as the run's own pushed logs are.
"""

from __future__ import annotations

import json
import queue
import time
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from dagu_ci.follow.events import Event, Level, Notice, StepFinished, StepStarted
from dagu_ci.follow.logtail import LOG_CAP, PUSHED_LOG_CAP, LogFeed, LogSchedule, LogTailer, ReadMode
from dagu_ci.server.api import DaguClient
from dagu_ci.server.client import Retry
from dagu_ci.server.models import TREE_SEP as SEP, ChildRun, LogPage, RunSnapshot, RunStatus, StepSnapshot, SubRunRef
from dagu_ci.term import format_duration

LIST_CAP = 6.0  # quiet: the children's statuses are looked at this often
LIVE_CAP = 20.0  # quiet: a live child's details are read this often (its end shows in the list sooner)
STATUS_CAP_WITH_CHILDREN = 10.0  # the run's own status while children run: their list tells their end
MAX_LIVE = 1  # children tailed while they run; the others are read when they end
PUSH_DRAIN = 1.0  # with push: how often the pushed children's snapshots are looked at (no request)
# At the run's end a child still without a record (404) is asked again for this long: a
# child's record exists before its caller ends, so by then 404 means it never started.
FINAL_RECORD_GRACE = 5.0
ITEM_WIDTH = 40


class SubRunLogs(Enum):
    ALL = "all"  # every child step's log (live for one child, whole at the end for the others)
    FAILED = "failed"  # statuses live; a child's step logs only if it did not succeed, after it ends
    NONE = "none"  # statuses only


class _SubRunLogReader:
    """What LogTailer calls to read a log, pointed at one sub-run (root-addressed)."""

    def __init__(self, client: DaguClient, root_name: str, root_id: str, sub_id: str):
        self.client = client
        self.root_name = root_name
        self.root_id = root_id
        self.sub_id = sub_id

    def read_log(
        self, dag_name: str, run_id: str, step: str, stream: str, retry: Retry, **query: int
    ) -> Optional[LogPage]:
        return self.client.read_sub_log(self.root_name, self.root_id, self.sub_id, step, stream, retry, **query)

    def download_log(self, dag_name: str, run_id: str, step: str, stream: str, retry: Retry) -> Optional[str]:
        return self.client.download_sub_log(self.root_name, self.root_id, self.sub_id, step, stream, retry)


@dataclass
class _Child:
    ref: SubRunRef
    parent_step: str  # path of the step that started it
    depth: int
    label_hint: str  # the item or params, when they tell it from its siblings
    path: str = ""  # known once its DAG name is
    status: Optional[RunStatus] = None  # as last seen (list or details)
    seen: Optional[RunStatus] = None  # status when its details were last read
    snapshot: Optional[RunSnapshot] = None
    log_feed: Optional[LogFeed] = None
    started: Set[str] = field(default_factory=set)
    finished: Dict[str, StepSnapshot] = field(default_factory=dict)
    live: bool = False
    announced: bool = False
    ended: bool = False
    next_details: float = 0.0
    interval: float = 0.0
    caller_log: str = ""  # its calling step's log file when it was found: a new one, a new run of that step
    # Not news (a step a retry left as it was): read once at the end, for the tree, and never told.
    quiet: bool = False
    waiting: bool = False  # no record yet, or only an earlier attempt's: asked again at next_details
    earlier: Optional[RunSnapshot] = None  # an earlier attempt it showed, read as it is if nothing newer comes
    pushed: Optional[RunSnapshot] = None  # its details as the server last pushed them, not looked at yet


class SubRunFollower:
    def __init__(
        self,
        client: DaguClient,
        root_name: str,
        root_id: str,
        emit: Callable[[Event], None],
        retry: Callable[[], Retry],
        base: float,
        logs: SubRunLogs = SubRunLogs.ALL,
        ended_before: Tuple[StepSnapshot, ...] = (),
        push: bool = False,
    ):
        """`ended_before`: a retry's earlier attempt as it ended, its sub-runs' steps too
        (RunSnapshot.all_steps): the children of steps it leaves as they were are not news,
        and a child showing only log files of then has not begun its new attempt yet."""
        self.client = client
        self.root_name = root_name
        self.root_id = root_id
        self.emit = emit
        self._retry = retry
        self.base = base
        self.logs = logs
        self.schedule = LogSchedule(base)
        self._children: Dict[str, _Child] = {}
        self._list_interval = base
        self._next_list = 0.0
        self._unchanged = {step.name: step.stdout for step in ended_before if SEP not in step.name and step.stdout}
        self._old_logs: Set[str] = {step.stdout for step in ended_before if step.stdout}
        # Push: the children's details come on streams of their own (subdagrun topics).
        self._push = push and client.api.features.events_stream and client.api.features.sub_runs_pushed
        self._streams: List[Any] = []  # EventsStream
        self._subscribed: Set[str] = set()

    # -- what the follower asks ------------------------------------------------

    @property
    def active(self) -> bool:
        return any(not (child.ended or child.quiet) for child in self._children.values())

    def status_cap(self, default: float) -> float:
        return STATUS_CAP_WITH_CHILDREN if self.active else default

    def next_due(self) -> Optional[float]:
        if not self.active:
            return None
        if self._push:
            log_due = self.schedule.next_due()
            drain = time.monotonic() + PUSH_DRAIN
            return drain if log_due is None else min(drain, log_due)
        due = [self._next_list] + [
            c.next_details for c in self._children.values() if (c.live or c.waiting) and not (c.ended or c.quiet)
        ]
        log_due = self.schedule.next_due()
        if log_due is not None:
            due.append(log_due)
        return min(due)

    def tree(self) -> Tuple[ChildRun, ...]:
        """The children as followed, in tree order (for the result and the summary)."""
        children = []
        for child in self._ordered():
            snapshot = child.snapshot
            if snapshot is None:
                continue
            children.append(
                ChildRun(
                    path=child.path,
                    depth=child.depth,
                    parent_step=child.parent_step,
                    run_id=child.ref.run_id,
                    dag_name=snapshot.dag_name,
                    params=child.ref.params or snapshot.params,
                    status=snapshot.status,
                    steps=tuple(self._named(child, step) for step in snapshot.steps),
                    started_at=snapshot.started_at,
                    finished_at=snapshot.finished_at,
                )
            )
        return tuple(children)

    def round(self, root: RunSnapshot, final: bool = False) -> bool:
        """Look at the children as far as they are due; True if anything changed.
        `final` (the run is over): every child at every depth, read in full."""
        if final:
            return self.walk_to_end(root)
        self._discover(root.steps, "", 1)
        if not self._children:
            return False
        if self._push:
            return self._pushed_round()
        now = time.monotonic()
        changed = False
        if now >= self._next_list:
            changed |= self._refresh_statuses()
        for child in self._ordered():
            if child.ended or child.quiet:
                continue
            changed |= self._look_at(child, final=False)
        self._choose_live()
        if now >= self._next_list:
            self._list_interval = self.base if changed else min(self._list_interval * 1.5, LIST_CAP)
            self._next_list = time.monotonic() + self._list_interval
        return changed

    # -- push ---------------------------------------------------------------------

    def _pushed_round(self) -> bool:
        """Subscribe the children found since the last round; look at what was pushed."""
        self._subscribe()
        self._drain()
        if not self._push:
            return False  # a stream ended: the next round polls
        changed = False
        for child in self._ordered():
            if child.ended or child.quiet:
                continue
            if child.pushed is not None:
                snapshot, child.pushed = child.pushed, None
                if not self._earlier_attempt(snapshot):
                    child.waiting, child.earlier = False, None
                    if child.live:  # something changed in it: its quiet logs are worth a read now
                        for step in snapshot.steps:
                            self.schedule.touch(self._named(child, step).name)
                    changed |= self._observe(child, snapshot, final=False)
            elif child.live and child.snapshot is not None and self.logs is SubRunLogs.ALL:
                changed |= self._tail_running(child)
        self._choose_live()
        return changed

    def _subscribe(self) -> None:
        from dagu_ci.server.events_stream import MAX_TOPICS, EventsStream  # imports requests

        new = [
            c.ref.run_id for c in self._ordered() if not (c.ended or c.quiet) and c.ref.run_id not in self._subscribed
        ]
        for start in range(0, len(new), MAX_TOPICS):
            chunk = new[start : start + MAX_TOPICS]
            self._streams.append(EventsStream(self.client, self.root_name, self.root_id, (), sub_runs=chunk).open())
            self._subscribed.update(chunk)
        # Quiet logs are read only as a safety net: a child's end and its steps' changes are pushed.
        # (No push covers a child's log lines: Dagu's steplog topic finds top-level runs only. A
        # polled cadence for them would cost the quiet fan-out 2 more req/min, over its budget of 6.)
        self.schedule.cap = PUSHED_LOG_CAP

    def _drain(self) -> None:
        from dagu_ci.server.events_stream import Closed, PushedSubRun

        for stream in self._streams:
            while True:
                try:
                    message = stream.messages.get_nowait()
                except queue.Empty:
                    break
                if isinstance(message, PushedSubRun):
                    child = self._children.get(message.sub_id)
                    if child is not None:
                        child.pushed = message.snapshot
                        child.status = message.snapshot.status
                elif isinstance(message, Closed):
                    self.close()
                    return

    def close(self) -> None:
        """End the children's streams (at once; their threads end on their own) and
        poll from now on."""
        for stream in self._streams:
            stream.close()
        self._streams = []
        if self._push:
            self._push = False
            self.schedule.cap = LOG_CAP
            self._next_list = 0.0
            for child in self._children.values():
                child.seen = None  # read each active child's details once more: a push may be lost

    def walk_to_end(self, root: RunSnapshot, grace: float = FINAL_RECORD_GRACE) -> bool:
        """The run is over: walk the whole tree before dagu-ci exits. A child's details
        name its own children, which a pass may find only now (a grandchild that started
        and ended between two looks): passes go on until every child found has been read
        to its end. One still without a record, or showing only an earlier attempt, is
        asked again for `grace` seconds: then it never started, or did not run again."""
        self.close()
        changed = False
        grace_until: Optional[float] = None
        while True:
            self._discover(root.steps, "", 1)
            pending = [child for child in self._ordered() if not child.ended]
            if not pending:
                return changed
            for child in pending:
                changed |= self._look_at(child, final=True)
            missing = [child for child in pending if not child.ended]
            if len(missing) < len(pending):
                continue  # some ended: their details may name children not found yet
            now = time.monotonic()
            if grace_until is None:
                grace_until = now + min(grace, max(self._retry().remaining(), 0.0))
            if now >= grace_until:
                for child in missing:
                    self._give_up(child)
                continue  # an earlier attempt, read now, may name children of its own
            time.sleep(min(self.base, grace_until - now))

    def _give_up(self, child: _Child) -> None:
        if child.earlier is not None:
            if not child.quiet:
                self.emit(
                    Notice(
                        f"{child.parent_step}: sub-run {child.ref.run_id} did not run again; shown as its earlier attempt ended",
                        Level.WARNING,
                    )
                )
            self._observe(child, child.earlier, final=True)
            return
        child.ended = True
        if not child.quiet:
            self.emit(
                Notice(
                    f"{child.parent_step}: sub-run {child.ref.run_id}"
                    f"{' of ' + child.ref.dag_name if child.ref.dag_name else ''} never started "
                    "(the server has no record of it)",
                    Level.WARNING,
                )
            )

    # -- discovery and statuses -------------------------------------------------

    def _discover(self, steps: Tuple[StepSnapshot, ...], parent_path: str, depth: int, quiet: bool = False) -> None:
        for step in steps:
            if not step.sub_runs:
                continue
            path = parent_path + SEP + step.name if parent_path else step.name
            # A retry left this step as it was: its children are not news.
            step_quiet = quiet or (depth == 1 and step.stdout != "" and self._unchanged.get(step.name) == step.stdout)
            several = len(step.sub_runs) > 1
            items = _items([ref.params for ref in step.sub_runs])
            for number, ref in enumerate(step.sub_runs, 1):
                known = self._children.get(ref.run_id)
                if known is not None:
                    self._rerun(known, step, step_quiet)
                    continue
                hint = items[number - 1] if several else ""
                if ref.repeated or any(r.repeated for r in step.sub_runs):
                    hint = (hint + " " if hint else "") + f"#{number}"
                self._children[ref.run_id] = _Child(
                    ref, path, depth, hint, interval=self.base, caller_log=step.stdout, quiet=step_quiet
                )

    def _rerun(self, child: _Child, step: StepSnapshot, quiet: bool) -> None:
        """Its calling step runs again (an auto-retry of the run, say): the child's id is
        the same (a digest of run, step and params), and what it showed is the past."""
        if not step.stdout or step.stdout == child.caller_log:
            return
        if not child.caller_log:  # found before its caller's log file was known
            child.caller_log = step.stdout
            return
        child.caller_log, child.quiet = step.stdout, quiet
        if child.snapshot is not None:
            self._old_logs.update(s.stdout for s in child.snapshot.steps if s.stdout)
        child.ended = child.announced = child.live = False
        child.seen = child.status = None
        child.started.clear()
        child.finished.clear()

    def _ordered(self) -> List[_Child]:
        """Tree order: each child followed by the children of its own steps."""
        by_parent: Dict[str, List[_Child]] = {}
        for child in self._children.values():
            by_parent.setdefault(child.parent_step, []).append(child)
        ordered: List[_Child] = []

        def add(child: _Child) -> None:
            ordered.append(child)
            for step in child.snapshot.steps if child.snapshot and child.path else ():
                for grandchild in by_parent.get(child.path + SEP + step.name, ()):
                    add(grandchild)

        for child in self._children.values():
            if child.depth == 1:
                add(child)
        return ordered

    def _refresh_statuses(self) -> bool:
        """One list request per parent that has children still going (where the server lists)."""
        features = self.client.api.features
        if not features.sub_runs_listed:
            return False
        parents: Dict[str, List[_Child]] = {}
        for child in self._children.values():
            if child.depth == 1:
                parents.setdefault("", []).append(child)
            else:
                owner = self._owner(child)
                parents.setdefault(owner.ref.run_id if owner else "?", []).append(child)
        changed = False
        for parent_id, children in parents.items():
            if all(child.ended or child.quiet for child in children) or parent_id == "?":
                continue
            if parent_id and not features.sub_runs_nested_list:
                continue  # deeper levels: their details tell (_look_at)
            listed = self.client.list_sub_runs(self.root_name, self.root_id, self._retry(), parent_id)
            if listed is None:
                continue
            for item in listed:
                known = self._children.get(str(item.get("dagRunId")))
                if known is None:
                    continue
                status = RunStatus.parse(item.get("status"))
                if status != known.status:
                    known.status = status
                    changed = True
        return changed

    def _owner(self, child: _Child) -> Optional[_Child]:
        for other in self._children.values():
            if other.path and child.parent_step.startswith(other.path + SEP):
                return other
        return None

    # -- one child ----------------------------------------------------------------

    def _look_at(self, child: _Child, final: bool) -> bool:
        now = time.monotonic()
        features = self.client.api.features
        listed = features.sub_runs_listed and (child.depth == 1 or features.sub_runs_nested_list)
        if final:
            due = True
        elif child.waiting:
            due = now >= child.next_details
        elif listed:
            due = child.status is not None and child.status != child.seen
            due = due or (child.live and now >= child.next_details)
        else:
            due = now >= child.next_details
        changed = False
        if due:
            snapshot = self.client.get_sub_run(self.root_name, self.root_id, child.ref.run_id, self._retry())
            if snapshot is None or self._earlier_attempt(snapshot):
                # Listed before its record exists, or its new attempt has not begun: not yet.
                child.earlier = snapshot
                child.waiting = True
                child.next_details = now + child.interval
                child.interval = min(child.interval * 1.5, LIVE_CAP)
                return False
            child.waiting, child.earlier = False, None
            changed = self._observe(child, snapshot, final)
            child.interval = self.base if changed else min(child.interval * 1.5, LIVE_CAP)
            child.next_details = time.monotonic() + child.interval
        elif child.live and child.snapshot is not None and self.logs is SubRunLogs.ALL:
            changed = self._tail_running(child)
        return changed

    def _earlier_attempt(self, snapshot: RunSnapshot) -> bool:
        """Only log files of an attempt that ended before this follow (or before its
        calling step ran again): the child has not begun its new attempt yet."""
        logs = {step.stdout for step in snapshot.steps if step.stdout}
        return snapshot.is_over and bool(logs) and logs <= self._old_logs

    def _observe(self, child: _Child, snapshot: RunSnapshot, final: bool) -> bool:
        previous = child.snapshot
        child.snapshot = snapshot
        child.status = child.seen = snapshot.status
        changed = previous is None or previous.status != snapshot.status
        if not child.path:
            name = child.ref.dag_name or snapshot.dag_name or "?"
            child.path = child.parent_step + SEP + name + (f"[{child.label_hint}]" if child.label_hint else "")
            reader = _SubRunLogReader(self.client, self.root_name, self.root_id, child.ref.run_id)
            tailer = LogTailer(reader, snapshot.dag_name, child.ref.run_id, self._retry)
            child.log_feed = LogFeed(tailer, self.schedule, self.emit)
        if child.quiet:
            self._discover(snapshot.steps, child.path, child.depth + 1, quiet=True)
            child.ended = child.ended or snapshot.is_over or final
            return False
        if not child.announced and snapshot.status != RunStatus.NOT_STARTED:
            child.announced = True
            self.emit(
                Notice(f"{child.path}: sub-run {child.ref.run_id} of {snapshot.dag_name} {snapshot.status.label}")
            )
        self._discover(snapshot.steps, child.path, child.depth + 1)  # its own children, as soon as it names them
        over = snapshot.is_over or final
        if not (child.live or over):
            return changed  # told when it ends, each step whole in turn
        show_logs = self._shows_logs(child, snapshot, over)
        for step in snapshot.steps:
            changed |= self._observe_step(child, step, show_logs, over)
        if over:
            child.ended, child.live = True, False
            for step in snapshot.steps:
                self.schedule.forget(self._named(child, step).name)
            level = (
                Level.INFO if snapshot.status in (RunStatus.SUCCEEDED, RunStatus.PARTIALLY_SUCCEEDED) else Level.WARNING
            )
            self.emit(
                Notice(
                    f"{child.path}: {snapshot.status.label.replace('_', ' ')} in {format_duration(snapshot.duration)}",
                    level,
                )
            )
        return changed

    def _shows_logs(self, child: _Child, snapshot: RunSnapshot, over: bool) -> bool:
        if self.logs is SubRunLogs.NONE:
            return False
        if self.logs is SubRunLogs.FAILED:
            return over and snapshot.status not in (RunStatus.SUCCEEDED, RunStatus.PARTIALLY_SUCCEEDED)
        return True

    def _observe_step(self, child: _Child, step: StepSnapshot, show_logs: bool, over: bool) -> bool:
        """As the follower tells the run's own steps; at the child's end, a last read of each."""
        named = self._named(child, step)
        seen = child.finished.get(step.name)
        if seen is not None and (not step.status.is_finished or seen.stdout != step.stdout):
            del child.finished[step.name]  # a new attempt runs the step again
            child.started.discard(step.name)
        changed = False
        if step.status.has_started and step.name not in child.started:
            child.started.add(step.name)
            if step.ran:
                self.emit(StepStarted(named))
            changed = True
        if step.name not in child.started:
            return changed
        if show_logs and (over or step.name not in child.finished):
            mode = ReadMode.FINAL if over else ReadMode.FLUSH if step.status.is_finished else ReadMode.LIVE
            changed |= self._tail(child, step, mode)
        if step.name not in child.finished and (step.status.is_finished or over):
            child.finished[step.name] = step
            self.emit(StepFinished(named))
            changed = True
        return changed

    def _tail_running(self, child: _Child) -> bool:
        assert child.snapshot is not None
        changed = False
        for step in child.snapshot.steps:
            if step.name in child.started and step.name not in child.finished:
                changed |= self._tail(child, step, ReadMode.LIVE)
        return changed

    def _tail(self, child: _Child, step: StepSnapshot, mode: ReadMode) -> bool:
        assert child.log_feed is not None
        return child.log_feed.tail(step, mode, self._named(child, step).name)

    def _choose_live(self) -> None:
        if self.logs is not SubRunLogs.ALL:
            return
        live = [c for c in self._children.values() if c.live and not c.ended]
        for child in self._ordered():
            if len(live) >= MAX_LIVE:
                return
            if (
                not (child.live or child.ended or child.quiet)
                and child.snapshot is not None
                and child.status == RunStatus.RUNNING
            ):
                child.live = True
                child.next_details = 0.0
                if self._push and child.pushed is None:
                    # Seen while not live, so its running steps were not taken up: look again
                    # now (a push comes only when its details change, maybe not before its end).
                    child.pushed = child.snapshot
                live.append(child)

    @staticmethod
    def _named(child: _Child, step: StepSnapshot) -> StepSnapshot:
        return replace(step, name=child.path + SEP + step.name, depth=child.depth)


def read_tree(client: DaguClient, root: RunSnapshot, retry: Callable[[], Retry]) -> RunSnapshot:
    """One look at the whole tree (`status`, `logs`, a retry's earlier attempt): each
    child's details at every depth, no logs; a child without a record yet is left out.
    The root with its children (RunSnapshot.children)."""
    if not any(step.sub_runs for step in root.steps):
        return root
    survey = SubRunFollower(client, root.dag_name, root.run_id, lambda event: None, retry, 0.0, SubRunLogs.NONE)
    survey.walk_to_end(root, grace=0.0)
    return replace(root, children=survey.tree())


def sub_run_tailer(client: DaguClient, root: RunSnapshot, child: ChildRun, retry: Callable[[], Retry]) -> LogTailer:
    """A LogTailer reading one sub-run's step logs (its steps named as its DAG names them)."""
    reader = _SubRunLogReader(client, root.dag_name, root.run_id, child.run_id)
    return LogTailer(reader, child.dag_name, child.run_id, retry)


def _items(params: List[str]) -> List[str]:
    """What tells siblings apart, short and on one line: `eu-west` where they all set the
    one same param (`REGION=eu-west`, `{"REGION":"eu-west"}`), else their params."""
    texts = []
    for text in params:
        text = text.strip()
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, dict):
            text = " ".join(f"{key}={item}" for key, item in value.items())
        texts.append(" ".join(text.split()))
    keys = {text.split("=", 1)[0] for text in texts}
    if len(keys) == 1 and all("=" in text and " " not in text for text in texts):
        texts = [text.split("=", 1)[1] for text in texts]
    return [text if len(text) <= ITEM_WIDTH else text[: ITEM_WIDTH - 1] + "…" for text in texts]
