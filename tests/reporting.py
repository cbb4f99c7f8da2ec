"""Synthetic follower events for reporter unit tests, and a model of GitHub's
workflow-command parser to check what a log would make the runner do."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Sequence

from dagu_ci.follow.events import RunAccepted, RunFinished, StepFinished, StepLog, StepStarted, Tick
from dagu_ci.run.result import Ending, RunResult, exit_code_for
from dagu_ci.server.models import RunSnapshot, RunStatus, StepSnapshot, StepStatus
from dagu_ci.term import Style

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
URL = "http://dagu.test/dag-runs/deploy/r-1"


def step(
    name: str,
    status: StepStatus = StepStatus.SUCCEEDED,
    start: float = 0.0,
    seconds: Optional[float] = 1.25,
    error: str = "",
    handler: bool = False,
) -> StepSnapshot:
    finished = status.is_finished and seconds is not None
    return StepSnapshot(
        name=name,
        status=status,
        started_at=T0 + timedelta(seconds=start) if status.has_started else None,
        finished_at=T0 + timedelta(seconds=start + seconds) if finished else None,
        error=error,
        handler=handler,
    )


def running(name: str) -> StepSnapshot:
    return step(name, StepStatus.RUNNING)


def snapshot(status: RunStatus, *steps: StepSnapshot, seconds: float = 3.5) -> RunSnapshot:
    return RunSnapshot(
        dag_name="deploy",
        run_id="r-1",
        status=status,
        steps=tuple(steps),
        started_at=T0,
        finished_at=T0 + timedelta(seconds=seconds) if status.is_terminal else None,
    )


def accepted(params: str = '{"VERSION":"1.2.3"}') -> RunAccepted:
    return RunAccepted(
        dag_file="deploy", dag_name="deploy", run_id="r-1", url=URL, attached=False, queued=False, params=params
    )


def finished(
    status: RunStatus,
    *steps: StepSnapshot,
    outputs: Optional[Dict[str, Any]] = None,
    ending: Ending = Ending.FINISHED,
    code: Optional[int] = None,
) -> RunFinished:
    snap = snapshot(status, *steps)
    return RunFinished(
        RunResult(
            dag_file="deploy",
            dag_name="deploy",
            run_id="r-1",
            url=URL,
            snapshot=snap,
            exit_code=int(exit_code_for(status)) if code is None else code,
            ending=ending,
            duration=3.5,
            outputs=outputs or {},
        )
    )


def log(name: str, *lines: str, stream: str = "stdout") -> StepLog:
    return StepLog(name, stream, list(lines))


def started(name: str) -> StepStarted:
    return StepStarted(running(name))


def done(name: str, status: StepStatus = StepStatus.SUCCEEDED, start: float = 0.0) -> StepFinished:
    return StepFinished(step(name, status, start))


def tick(status: RunStatus, *steps: StepSnapshot) -> Tick:
    return Tick(snapshot(status, *steps))


class Out(io.StringIO):
    """Captured output that is not a terminal and can carry any character."""

    encoding = "utf-8"  # type: ignore[assignment]

    def isatty(self) -> bool:
        return False


PLAIN = Style(color=False, unicode=True)


def feed(reporter, events: Sequence[Any]):
    for event in events:
        reporter.handle(event)
    reporter.close()
    return reporter


# -- GitHub's runner, as far as workflow commands go -----------------------------


@dataclass
class Command:
    name: str
    properties: Dict[str, str]
    data: str


@dataclass
class Runner:
    """What the GitHub runner would execute and show for a log (ActionCommandManager):
    lines split on CR/LF, `::name k=v::data` after trimming, legacy `##[name k=v;]data`
    anywhere, and nothing but `::<token>::` while commands are stopped."""

    commands: List[Command] = field(default_factory=list)
    visible: List[str] = field(default_factory=list)

    @classmethod
    def read(cls, text: str) -> "Runner":
        runner = cls()
        stop_token: Optional[str] = None
        for line in re.split(r"\r\n|\r|\n", text):
            trimmed = line.strip()
            if stop_token is not None:
                if trimmed == f"::{stop_token}::":
                    stop_token = None
                else:
                    runner.visible.append(line)
                continue
            command = _v2(trimmed) or _v1(line)
            if command is None:
                runner.visible.append(line)
                continue
            runner.commands.append(command)
            if command.name == "stop-commands":
                stop_token = command.data
        return runner

    def named(self, name: str) -> List[Command]:
        return [command for command in self.commands if command.name == name]


def _unescape(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",").replace("%25", "%")


def _v2(line: str) -> Optional[Command]:
    match = re.match(r"^::([^\s:]+)(?: ([^:]*))?::(.*)$", line)
    if not match:
        return None
    props = {}
    for pair in (match.group(2) or "").split(","):
        if "=" in pair:
            key, value = pair.split("=", 1)
            props[key.strip()] = _unescape(value)
    return Command(match.group(1), props, _unescape(match.group(3)))


def _v1(line: str) -> Optional[Command]:
    match = re.search(r"##\[([^\]\s;]+)([^\]]*)\](.*)$", line)
    return Command("v1:" + match.group(1), {}, match.group(3)) if match else None
