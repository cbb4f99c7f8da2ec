"""Typed run and step snapshots, normalised across Dagu server versions.

Status integers are stable across versions; the labels are not (API.md §4.3),
so everything here keys on the integers and carries its own spelling.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import IntEnum
from typing import Any, List, Mapping, Optional, Tuple

from dagu_ci.errors import MalformedAnswer


class _Status:
    """Shared by run and step statuses: lenient parsing and our own spelling."""

    NOT_STARTED: "_Status"

    @classmethod
    def parse(cls, value: Any) -> Any:
        try:
            return cls(int(value))  # type: ignore[call-arg]
        except (TypeError, ValueError):
            return cls.NOT_STARTED

    @classmethod
    def known(cls, value: Any) -> bool:
        """Is this one of the statuses we know (a newer server may send others)?"""
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            return False
        try:
            cls(int(value))  # type: ignore[call-arg]
        except ValueError:
            return False
        return True

    @property
    def label(self) -> str:
        return self.name.lower()  # type: ignore[attr-defined]


class RunStatus(_Status, IntEnum):
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


class StepStatus(_Status, IntEnum):
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
