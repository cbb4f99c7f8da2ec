"""What the follower tells reporters. Reporters turn these into host-native output."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Optional, Sequence, Union

from dagu_ci.run.result import RunResult
from dagu_ci.server.models import RunSnapshot, RunStatus, ServerInfo, StepSnapshot


class Level(Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class ServerDetected:
    url: str
    server: ServerInfo


@dataclass(frozen=True)
class RunAccepted:
    """The run exists on the server: started by us, or attached to (409 already_exists)."""

    dag_file: str
    dag_name: str
    run_id: str
    url: str
    attached: bool
    queued: bool
    params: str


@dataclass(frozen=True)
class RunStatusChanged:
    snapshot: RunSnapshot
    previous: Optional[RunStatus]


@dataclass(frozen=True)
class StepStarted:
    step: StepSnapshot


@dataclass(frozen=True)
class StepLog:
    step: str
    stream: str  # "stdout" or "stderr"
    lines: Sequence[str]
    # lines[0] continues this stream's previous line, shown before its end (a prompt, a
    # quiet step's last line): the rest of that line, not a line of its own.
    continued: bool = False


@dataclass(frozen=True)
class StepFinished:
    step: StepSnapshot


@dataclass(frozen=True)
class Notice:
    text: str
    level: Level = Level.INFO
    step: Optional[str] = None


def on_worker_notice(worker_id: str, bursts: bool) -> str:
    """What the follower says, once, when a run executes on a distributed worker (`bursts`:
    on a server whose workers may send their logs through the coordinator, Dagu 2.0+)."""
    text = f"the run executes on worker {worker_id}"
    if bursts:
        text += (
            "; a worker without shared storage sends its output to the server in blocks of about "
            "64 KB and at each step's end, so the live log may arrive in bursts: dagu-ci shows "
            "only whole lines, and a step's last line may wait for the next burst"
        )
    return text


@dataclass(frozen=True)
class Tick:
    """Once per poll, whether or not anything changed: lets reporters show progress
    or a heartbeat without a timer of their own."""

    snapshot: RunSnapshot
    # Running steps whose last line is held back until it ends (a worker's next burst).
    pending: Sequence[str] = ()


@dataclass(frozen=True)
class RunFinished:
    result: RunResult


@dataclass(frozen=True)
class Failed:
    """dagu-ci ends on an error (bad input, an unreachable server, ...), before the run
    exists or while following it: the one-line error (secrets already hidden) and exit code."""

    message: str
    exit_code: int
    dag: str = ""


Event = Union[
    ServerDetected, RunAccepted, RunStatusChanged, StepStarted, StepLog, StepFinished, Notice, Tick, RunFinished, Failed
]
