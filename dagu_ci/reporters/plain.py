"""Plain text for any terminal or CI log: live step lines, logs, a summary table.

dagu-ci's own lines start in column 0 (`dagu-ci: `, `▶`, `✔` ...); a step's log lines
never do: each starts with a gutter (`│ `), so a DAG that prints `✔ deploy succeeded`
cannot pass for dagu-ci saying it.
"""

from __future__ import annotations

import sys
from typing import IO, List, Optional, Set

from dagu_ci.controls import log_lines, one_line
from dagu_ci.follow.events import (
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
from dagu_ci.redaction import redact
from dagu_ci.remotetext import inert
from dagu_ci.reporters import Reporter
from dagu_ci.run.result import Ending
from dagu_ci.server.models import RunSnapshot, RunStatus, StepSnapshot, StepStatus
from dagu_ci.term import Style, format_duration, table

PREFIX = "dagu-ci: "
GUTTER = "│"
GUTTER_ASCII = "|"
# Before the rest of a line whose beginning was shown already (a prompt that waited).
CONTINUED = "┆"
CONTINUED_ASCII = ":"


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
            self.say(
                f"run is waiting for approval of {waiting_steps(event.snapshot)}: approve or reject it at {self.run_url}"
            )
        elif status == RunStatus.RUNNING and event.previous in (RunStatus.QUEUED, RunStatus.WAITING):
            self.say("run is running")
        elif event.snapshot.auto_retry_pending:
            snap = event.snapshot
            self.say(
                f"run failed; Dagu will retry it (attempt {snap.auto_retry_count + 2} "
                f"of {(snap.auto_retry_limit or 0) + 1})"
            )

    def on_step_started(self, event: StepStarted) -> None:
        self._running.add(event.step.name)
        if len(self._running) > 1:
            self._parallel |= self._running
        self.write([self.style.paint(f"{self.arrow} {one_line(event.step.name)}", "bold")])

    def on_log(self, event: StepLog) -> None:
        tag = f"[{one_line(event.step)}] " if event.step in self._parallel else ""
        self.write(self.log_text(event, tag))

    def on_step_finished(self, event: StepFinished) -> None:
        self._running.discard(event.step.name)
        self.write([self._step_line(event.step)])

    def on_notice(self, event: Notice) -> None:
        color = {Level.INFO: "dim", Level.WARNING: "yellow", Level.ERROR: "red"}[event.level]
        label = "" if event.level is Level.INFO else f"{event.level.value}: "
        self.say(label + event.text, color)

    def on_finished(self, event: RunFinished) -> None:
        result = event.result
        tree = result.snapshot.tree_rows() if result.snapshot else []
        rows = [self._row(step, "  " * depth + label) for depth, label, step in tree]
        if rows:
            self.say("summary")
            self.write(self._table(["STEP", "STATUS", "DURATION"], rows, [step for _, _, step in tree]))
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

    @property
    def arrow(self) -> str:
        return "▶" if self.style.unicode else ">>"

    def log_text(self, event: StepLog, tag: str = "") -> List[str]:
        """A step's log lines as shown: neutralised, behind the gutter, stderr in yellow."""
        gutter = self.style.paint(GUTTER if self.style.unicode else GUTTER_ASCII, "dim") + " " + tag
        continued = self.style.paint(CONTINUED if self.style.unicode else CONTINUED_ASCII, "dim") + " " + tag
        shown: List[str] = []
        for index, line in enumerate(event.lines):
            for part in log_lines(line, self.style.remote_color):
                if event.stream == "stderr" and self.style.color:
                    part = self.style.paint(part, "yellow")
                shown.append((continued if index == 0 and event.continued and not shown else gutter) + part)
        return shown

    def say(self, text: str, color: str = "") -> None:
        line = PREFIX + one_line(text)
        self.write([self.style.paint(line, color) if color else line])

    def write(self, lines: List[str]) -> None:
        """Lines that may carry remote text: no CI runner reading the log may run them."""
        self.emit([inert(line) for line in lines])

    def cell(self, text: str) -> str:
        """Remote text for a table cell, made inert before the columns are aligned."""
        return inert(text)

    def emit(self, lines: List[str]) -> None:
        """Lines exactly as given (a host's own commands); every line a reporter shows
        passes here, so no secret gets through."""
        if not lines:
            return
        self.out.write(redact("\n".join(lines)) + "\n")
        self.out.flush()

    def _step_line(self, step: StepSnapshot) -> str:
        symbol = self.style.symbol(step.status)
        text = f"{symbol} {one_line(step.name)} {step.status.label.replace('_', ' ')}"
        if step.duration is not None:
            text += f" in {format_duration(step.duration)}"
        return self.style.paint(text, self.style.status_color(step.status))

    def _row(self, step: StepSnapshot, label: str = "") -> List[str]:
        return [
            self.cell(one_line(label or step.name)),
            step.status.label.replace("_", " "),
            format_duration(step.duration),
        ]

    def _table(self, header: List[str], rows: List[List[str]], steps: List[StepSnapshot]) -> List[str]:
        return table(header, rows, self.style, [self.style.status_color(step.status) for step in steps])


def waiting_steps(snapshot: RunSnapshot) -> str:
    return ", ".join(one_line(s.name) for s in snapshot.steps if s.status == StepStatus.WAITING) or "a step"
