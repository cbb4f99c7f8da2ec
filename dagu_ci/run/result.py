"""The outcome of a run: exit code rules and the JSON result document."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, Optional

from dagu_ci.errors import ExitCode
from dagu_ci.files import write_atomic
from dagu_ci.server.models import TREE_SEP, RunSnapshot, RunStatus, StepSnapshot


class Ending(Enum):
    """Why we stopped following."""

    FINISHED = "finished"  # the run reached a terminal status by itself
    TIMEOUT = "timeout"
    QUEUE_TIMEOUT = "queue-timeout"  # never left the queue in time; dequeued
    LEFT_WAITING = "left-waiting"  # --on-waiting fail: the run still waits for approval
    CANCELLED = "cancelled"  # CI cancelled us (SIGINT/SIGTERM)
    ERROR = "error"  # dagu-ci could not go on (server lost, malformed answers, a bug); the run was stopped


def exit_code_for(status: RunStatus, fail_on_partial: bool = False) -> ExitCode:
    if status == RunStatus.SUCCEEDED:
        return ExitCode.SUCCEEDED
    if status == RunStatus.PARTIALLY_SUCCEEDED:
        return ExitCode.FAILED if fail_on_partial else ExitCode.SUCCEEDED
    if status == RunStatus.FAILED:
        return ExitCode.FAILED
    if status in (RunStatus.ABORTED, RunStatus.REJECTED):
        return ExitCode.ABORTED
    return ExitCode.SERVER  # still active: we could not see it end


@dataclass
class RunResult:
    dag_file: str
    dag_name: str
    run_id: str
    url: str
    snapshot: Optional[RunSnapshot]
    exit_code: int
    ending: Ending = Ending.FINISHED
    duration: Optional[float] = None
    message: str = ""
    outputs: Dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> RunStatus:
        return self.snapshot.status if self.snapshot else RunStatus.NOT_STARTED

    def to_dict(self) -> Dict[str, Any]:
        steps = [_step(step) for step in self.snapshot.steps] if self.snapshot else []
        children = [
            {
                "path": child.path,
                "parent_step": child.parent_step,
                "depth": child.depth,
                "run_id": child.run_id,
                "dag": child.dag_name,
                "params": child.params,
                "status": child.status.label,
                "status_code": int(child.status),
                "duration": _round(child.duration),
                # Named within the child, as its DAG names them (the path is the child's).
                "steps": [dict(_step(step), name=step.name[len(child.path) + len(TREE_SEP) :]) for step in child.steps],
            }
            for child in (self.snapshot.children if self.snapshot else ())
        ]
        return {
            "run_id": self.run_id,
            "dag": self.dag_file,
            "name": self.dag_name,
            "status": self.status.label,
            "status_code": int(self.status),
            "exit_code": int(self.exit_code),
            "ending": self.ending.value,
            "url": self.url,
            "duration": _round(self.duration),
            "started_at": _iso(self.snapshot.started_at if self.snapshot else None),
            "finished_at": _iso(self.snapshot.finished_at if self.snapshot else None),
            "steps": steps,
            "children": children,
            "outputs": self.outputs,
        }

    def write(self, path: str) -> None:
        write_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")


def _step(step: StepSnapshot) -> Dict[str, Any]:
    return {
        "name": step.name,
        "status": step.status.label,
        "status_code": int(step.status),
        "duration": _round(step.duration),
        "handler": step.handler,
    }


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 3)


def _iso(value: Any) -> Optional[str]:
    return value.isoformat() if value is not None else None
