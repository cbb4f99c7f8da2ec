"""Typed answers of the server (its identity, run and step snapshots, log pages),
normalised across Dagu server versions.

Status integers are stable across versions; the labels are not (API.md §4.3),
so everything here keys on the integers and carries its own spelling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import IntEnum
from typing import Any, Dict, List, Mapping, Optional, Tuple

from dagu_ci.errors import MalformedAnswer
from dagu_ci.server.capabilities import Capabilities, Version


def dag_name_of(definition: Mapping[str, Any], file_name: str) -> str:
    """The name runs are keyed by (GET /dags/{file}'s `.dag.name`), which may differ from
    the file name; the file name where the definition has none (API.md §1)."""
    return str((definition.get("dag") or {}).get("name") or file_name)


@dataclass(frozen=True)
class ServerInfo:
    """The server dagu-ci talks to: where its API is, its version, and what it can do."""

    version: Optional[Version]
    version_text: str
    api_root: str  # absolute, e.g. http://host/base/api/v1
    modern_v1: bool  # True: 2.x at /api/v1; False: 1.17-1.30 at /api/v2
    features: Capabilities = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", Capabilities.of(self.version, self.modern_v1))


class _Status(IntEnum):
    """Shared by run and step statuses: lenient parsing and our own spelling (an enum
    without members, so both can extend it)."""

    @classmethod
    def parse(cls, value: Any) -> Any:
        try:
            return cls(int(value))
        except (TypeError, ValueError):
            return cls["NOT_STARTED"]

    @classmethod
    def known(cls, value: Any) -> bool:
        """Is this one of the statuses we know (a newer server may send others)?"""
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            return False
        try:
            cls(int(value))
        except ValueError:
            return False
        return True

    @property
    def label(self) -> str:
        return self.name.lower()


class RunStatus(_Status):
    NOT_STARTED = 0
    RUNNING = 1
    FAILED = 2
    ABORTED = 3
    SUCCEEDED = 4
    QUEUED = 5
    PARTIALLY_SUCCEEDED = 6
    WAITING = 7
    REJECTED = 8

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_RUN


_TERMINAL_RUN = {
    RunStatus.FAILED,
    RunStatus.ABORTED,
    RunStatus.SUCCEEDED,
    RunStatus.PARTIALLY_SUCCEEDED,
    RunStatus.REJECTED,
}


class StepStatus(_Status):
    NOT_STARTED = 0
    RUNNING = 1
    FAILED = 2
    ABORTED = 3
    SUCCEEDED = 4
    SKIPPED = 5
    PARTIALLY_SUCCEEDED = 6
    WAITING = 7
    REJECTED = 8
    RETRYING = 9

    @property
    def is_finished(self) -> bool:
        """Its log will not grow any more (the final drain may run)."""
        return self in _FINISHED_STEP

    @property
    def has_started(self) -> bool:
        return self != StepStatus.NOT_STARTED


_FINISHED_STEP = {
    StepStatus.FAILED,
    StepStatus.ABORTED,
    StepStatus.SUCCEEDED,
    StepStatus.SKIPPED,
    StepStatus.PARTIALLY_SUCCEEDED,
    StepStatus.REJECTED,
}

LOCAL_WORKER = "local"  # the workerId of a run the server executes itself (cmd/start.go)
TREE_SEP = " › "  # between the parts of a sub-run step's path: `deploy › leaf[eu] › migrate`
HANDLER_KEYS = ("onInit", "onSuccess", "onFailure", "onAbort", "onCancel", "onWait", "onExit")

_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def parse_time(value: Any) -> Optional[datetime]:
    """RFC 3339 as Go writes it; "" and "-" mean "not set" (API.md §4.2)."""
    if not isinstance(value, str) or value in ("", "-") or value.startswith("0001-01-01"):
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    text = _FRACTION.sub(lambda m: m.group(1), text, count=1)  # Go may write nanoseconds
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    """A JSON object of the answer (absent: empty); MalformedAnswer when it is something else."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MalformedAnswer(f"the server's answer has a malformed {what}")
    return value


def _objects(value: Any, what: str) -> List[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedAnswer(f"the server's answer has a malformed {what}")
    return [_mapping(item, what) for item in value]


def _int(value: Any, what: str) -> int:
    if value is None or value == "":
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        raise MalformedAnswer(f"the server's answer has a malformed {what}") from None


def _seconds_between(start: Optional[datetime], end: Optional[datetime]) -> Optional[float]:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


@dataclass(frozen=True)
class SubRunRef:
    """A sub-DAG run a step started (`call`/`run`, one per `parallel` item): API.md §6."""

    run_id: str
    params: str = ""
    dag_name: str = ""  # 2.x only; 1.x says it in the sub-run's own details
    repeated: bool = False  # an earlier run of a repeated step


def _sub_run_refs(node: Mapping[str, Any]) -> Tuple[SubRunRef, ...]:
    # `subRuns` from 1.24, `children` before.
    refs = []
    for key, repeated in (
        ("subRuns", False),
        ("children", False),
        ("subRunsRepeated", True),
        ("childrenRepeated", True),
    ):
        for item in _objects(node.get(key), "sub-run list"):
            if item.get("dagRunId"):
                refs.append(
                    SubRunRef(
                        str(item["dagRunId"]), str(item.get("params") or ""), str(item.get("dagName") or ""), repeated
                    )
                )
    return tuple(refs)


@dataclass(frozen=True)
class StepSnapshot:
    name: str
    status: StepStatus
    stdout: str = ""
    stderr: str = ""
    started_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
    retry_count: int = 0
    handler: bool = False
    error: str = ""
    sub_runs: Tuple[SubRunRef, ...] = ()
    depth: int = 0  # a sub-run's step: how deep (1 = a child of the run's own step)
    handler_key: str = ""  # the run's key for a handler node: onExit, onSuccess, ...

    @classmethod
    def from_api(cls, node: Mapping[str, Any], handler_key: str = "") -> "StepSnapshot":
        step = _mapping(node.get("step"), "step")
        return cls(
            name=str(step.get("name") or ""),
            status=StepStatus.parse(node.get("status")),
            stdout=str(node.get("stdout") or ""),
            stderr=str(node.get("stderr") or ""),
            started_at=parse_time(node.get("startedAt")),
            finished_at=parse_time(node.get("finishedAt")),
            retry_count=_int(node.get("retryCount"), "retryCount"),
            handler=bool(handler_key),
            error=str(node.get("error") or ""),
            sub_runs=_sub_run_refs(node),
            handler_key=handler_key,
        )

    @property
    def ran(self) -> bool:
        """It began at some point. A step aborted or skipped before it could begin (its
        upstream failed) has an end status but no start time and no log."""
        if not self.status.has_started:
            return False
        return not (self.status.is_finished and self.started_at is None and not self.stdout)

    @property
    def merged(self) -> bool:
        """stdout and stderr are one file (logOutput: merged): read it once."""
        return bool(self.stdout) and self.stdout == self.stderr

    @property
    def duration(self) -> Optional[float]:
        return _seconds_between(self.started_at, self.finished_at)


@dataclass(frozen=True)
class ChildRun:
    """A sub-DAG run as dagu-ci followed it: `path` names it (`deploy › leaf[eu]`), its
    steps are named by their paths (`deploy › leaf[eu] › migrate`)."""

    path: str
    depth: int  # 1: started by one of the run's own steps
    parent_step: str  # the path of the step that started it
    run_id: str
    dag_name: str
    params: str
    status: RunStatus
    steps: Tuple[StepSnapshot, ...] = ()
    started_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None

    @property
    def duration(self) -> Optional[float]:
        return _seconds_between(self.started_at, self.finished_at)


@dataclass(frozen=True)
class RunSnapshot:
    dag_name: str
    run_id: str
    status: RunStatus
    steps: Tuple[StepSnapshot, ...] = ()
    started_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
    params: str = ""
    auto_retry_count: int = 0
    auto_retry_limit: Optional[int] = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    unknown_status: str = field(default="", compare=False)  # the server's status, when not one we know
    worker_id: str = ""  # the worker that executes the run (Dagu 1.30+); "local" on the server itself
    children: Tuple[ChildRun, ...] = field(default=(), compare=False)  # sub-DAG runs, tree order (issue 13)

    @classmethod
    def from_api(cls, details: Mapping[str, Any]) -> "RunSnapshot":
        """From the API's DAGRunDetails (or a run summary); MalformedAnswer on a wrong shape."""
        details = _mapping(details, "run")
        steps = [StepSnapshot.from_api(node) for node in _objects(details.get("nodes"), "step list")]
        for key in HANDLER_KEYS:
            node = details.get(key)
            if isinstance(node, Mapping) and _mapping(node.get("step"), "handler").get("name"):
                steps.append(StepSnapshot.from_api(node, handler_key=key))
        limit = details.get("autoRetryLimit")
        status = details.get("status")
        return cls(
            dag_name=str(details.get("name") or ""),
            run_id=str(details.get("dagRunId") or ""),
            status=RunStatus.parse(status),
            unknown_status="" if RunStatus.known(status) else repr(status),
            steps=tuple(steps),
            started_at=parse_time(details.get("startedAt")),
            finished_at=parse_time(details.get("finishedAt")),
            params=str(details.get("params") or ""),
            auto_retry_count=_int(details.get("autoRetryCount"), "autoRetryCount"),
            auto_retry_limit=int(limit) if isinstance(limit, int) else None,
            raw=details,
            worker_id=str(details.get("workerId") or ""),
        )

    @property
    def auto_retry_pending(self) -> bool:
        """Failed, but Dagu (>= 2.3) will run it again as a new attempt (API.md §4.3)."""
        return (
            self.status == RunStatus.FAILED
            and self.auto_retry_limit is not None
            and self.auto_retry_count < self.auto_retry_limit
        )

    @property
    def on_worker(self) -> bool:
        """Executed by a distributed worker, not by the server itself (which says "local")."""
        return self.worker_id not in ("", LOCAL_WORKER)

    @property
    def is_over(self) -> bool:
        return self.status.is_terminal and not self.auto_retry_pending

    @property
    def duration(self) -> Optional[float]:
        return _seconds_between(self.started_at, self.finished_at)

    def step(self, name: str) -> Optional[StepSnapshot]:
        for step in self.steps:
            if step.name == name:
                return step
        return None

    def tree_rows(self) -> List[Tuple[int, str, StepSnapshot]]:
        """(depth, label, step) for a table of the tree: each step, then the sub-runs it
        started (as rows of their own) and their steps, indented by depth."""
        runs: Dict[str, List[ChildRun]] = {}
        for child in self.children:
            runs.setdefault(child.parent_step, []).append(child)
        rows: List[Tuple[int, str, StepSnapshot]] = []

        def add(step: StepSnapshot, label: str, depth: int) -> None:
            rows.append((depth, label, step))
            for child in runs.get(step.name, ()):  # one level below the step that started it
                status = (
                    StepStatus.NOT_STARTED if child.status == RunStatus.QUEUED else StepStatus.parse(int(child.status))
                )
                row = StepSnapshot(
                    child.path, status, started_at=child.started_at, finished_at=child.finished_at, depth=child.depth
                )
                rows.append((depth + 1, child.path[len(child.parent_step) + len(TREE_SEP) :], row))
                for sub in child.steps:
                    add(sub, sub.name[len(child.path) + len(TREE_SEP) :], depth + 2)

        for step in self.steps:
            add(step, step.name, 0)
        return rows

    def all_steps(self) -> Tuple[StepSnapshot, ...]:
        """The run's steps, each followed by the steps of the sub-runs it started, at any
        depth (named by their paths): the tree, in order."""
        if not self.children:
            return self.steps
        below: Dict[str, List[StepSnapshot]] = {}
        for child in self.children:
            below.setdefault(child.parent_step, []).extend(child.steps)
        ordered: List[StepSnapshot] = []

        def add(step: StepSnapshot) -> None:
            ordered.append(step)
            for sub in below.get(step.name, ()):
                add(sub)

        for step in self.steps:
            add(step)
        return tuple(ordered)


@dataclass(frozen=True)
class LogPage:
    """One step-log read (API.md §7.1). Zero and false fields are omitted by the server."""

    lines: Tuple[str, ...]
    total_lines: int = 0
    has_more: bool = False
    is_estimate: bool = False
    too_long: bool = False

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> "LogPage":
        content = str(body.get("content") or "")
        count = _int(body.get("lineCount"), "lineCount")
        too_long = count == 0 and content == "Error: Line too long to read."
        # lineCount tells one empty line (content "") from no lines at all.
        lines = tuple(content.split("\n")) if count > 0 else ()
        return cls(
            lines=lines,
            total_lines=_int(body.get("totalLines"), "totalLines"),
            has_more=bool(body.get("hasMore")),
            is_estimate=bool(body.get("isEstimate")),
            too_long=too_long,
        )
