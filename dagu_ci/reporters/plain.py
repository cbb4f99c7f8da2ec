"""Plain text for any terminal or CI log: live step lines, logs, a summary table."""
from __future__ import annotations

import sys
from typing import IO, List, Optional, Set

from dagu_ci.events import (
    Level,
    Notice,
    RunAccepted,
    RunFinished,
    RunStatusChanged,
    ServerDetected,
    StepFinished,
    StepLog,
    StepStarted,
)
from dagu_ci.models import RunSnapshot, RunStatus, StepSnapshot, StepStatus
from dagu_ci.reporters import Reporter
from dagu_ci.result import Ending
from dagu_ci.term import Style, format_duration, table

PREFIX = "dagu-ci: "


class PlainReporter(Reporter):
    def __init__(self, out: Optional[IO[str]] = None, style: Optional[Style] = None):
        self.out = out or sys.stdout
        self.style = style or Style.for_stream(self.out)
        self._running: Set[str] = set()
        self.run_url = ""
        self._parallel: Set[str] = set()  # steps that ran alongside another: their lines get a tag

    # -- events ---------------------------------------------------------------

    def on_server(self, event: ServerDetected) -> None:
        self.say(f"Dagu {event.server.version_text or 'of unknown version'} at {event.url}")

    def on_accepted(self, event: RunAccepted) -> None:
        self.run_url = event.url
        verb = "attached to existing" if event.attached else ("queued" if event.queued else "started")
        name = event.dag_name if event.dag_name == event.dag_file else f"{event.dag_name} (file {event.dag_file})"
        self.say(f"{verb} run {event.run_id} of {name}")
        if event.params:
            self.say(f"params: {event.params}")
        self.say(f"view: {event.url}")

    def on_status(self, event: RunStatusChanged) -> None:
        status = event.snapshot.status
        if status == RunStatus.QUEUED:
            self.say("run is queued; waiting for the scheduler to start it")
        elif status == RunStatus.WAITING:
            self.say(f"run is waiting for approval of {waiting_steps(event.snapshot)}: approve or reject it at {self.run_url}")
        elif status == RunStatus.RUNNING and event.previous in (RunStatus.QUEUED, RunStatus.WAITING):
            self.say("run is running")
        elif event.snapshot.auto_retry_pending:
            snap = event.snapshot
            self.say(
                f"run failed; Dagu will retry it (attempt {snap.auto_retry_count + 2} "
                f"of {snap.auto_retry_limit + 1})"  # type: ignore[operator]
            )

    def on_step_started(self, event: StepStarted) -> None:
        self._running.add(event.step.name)
        if len(self._running) > 1:
            self._parallel |= self._running
        arrow = "▶" if self.style.unicode else ">>"
        self.write([self.style.paint(f"{arrow} {event.step.name}", "bold")])

    def on_log(self, event: StepLog) -> None:
        lines = event.lines
        if event.step in self._parallel:
            tag = f"[{event.step}] "
            lines = [tag + line for line in lines]
        if event.stream == "stderr" and self.style.color:
            lines = [self.style.paint(line, "yellow") for line in lines]
        self.write(lines)

    def on_step_finished(self, event: StepFinished) -> None:
        self._running.discard(event.step.name)
        self.write([self._step_line(event.step)])

    def on_notice(self, event: Notice) -> None:
        color = {Level.INFO: "dim", Level.WARNING: "yellow", Level.ERROR: "red"}[event.level]
        label = "" if event.level is Level.INFO else f"{event.level.value}: "
        self.say(label + event.text, color)

    def on_finished(self, event: RunFinished) -> None:
        result = event.result
        rows = [_row(step) for step in result.snapshot.steps] if result.snapshot else []
        if rows:
            self.say("summary")
            self.write(self._table(["STEP", "STATUS", "DURATION"], rows, result.snapshot.steps))
        status = result.status
        word = {Ending.TIMEOUT: "timed out", Ending.CANCELLED: "cancelled", Ending.ERROR: "error"}.get(result.ending)
        headline = f"{result.dag_name} run {result.run_id} {status.label.replace('_', ' ')}"
        if word:
            headline += f" ({word})"
        if result.duration is not None:
            headline += f" in {format_duration(result.duration)}"
        self.say(f"{headline}; exit code {result.exit_code}", self.style.status_color(status))
        self.say(f"view: {result.url}")

    # -- output ---------------------------------------------------------------

    def say(self, text: str, color: str = "") -> None:
        line = PREFIX + text
        self.write([self.style.paint(line, color) if color else line])

    def write(self, lines: List[str]) -> None:
        if not lines:
            return
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()

    def _step_line(self, step: StepSnapshot) -> str:
        symbol = self.style.symbol(step.status)
        text = f"{symbol} {step.name} {step.status.label.replace('_', ' ')}"
        if step.duration is not None:
            text += f" in {format_duration(step.duration)}"
        return self.style.paint(text, self.style.status_color(step.status))

    def _table(self, header: List[str], rows: List[List[str]], steps) -> List[str]:
        return table(header, rows, self.style, [self.style.status_color(step.status) for step in steps])


def waiting_steps(snapshot: RunSnapshot) -> str:
    return ", ".join(s.name for s in snapshot.steps if s.status == StepStatus.WAITING) or "a step"


def _row(step: StepSnapshot) -> List[str]:
    return [step.name, step.status.label.replace("_", " "), format_duration(step.duration)]
