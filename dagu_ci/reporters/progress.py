"""Signs of life: a live progress line on a terminal, a heartbeat in CI logs.

A terminal gets a spinner line (steps done of total, elapsed) redrawn each poll
and wiped before any other output. The line is cut to the terminal's width, read
again at every redraw (so a resize counts from the next one): a line that wrapped
would leave a stale row behind, as the wipe clears only the cursor's row. A
non-interactive log gets one line about once a minute while nothing else was
printed, so "no output" timeouts never kill a healthy job. Both ride on the
follower's Tick event: no timer thread.
"""

from __future__ import annotations

import os
import time
from typing import IO, Callable, Optional

from dagu_ci.controls import one_line
from dagu_ci.follow.events import RunAccepted, RunFinished, Tick
from dagu_ci.redaction import redact
from dagu_ci.reporters import Reporter
from dagu_ci.server.models import RunSnapshot, RunStatus, StepStatus
from dagu_ci.term import can_encode, fit, format_duration

HEARTBEAT_SECONDS = 60.0
DEFAULT_COLUMNS = 80  # when the terminal will not say
_CLEAR = "\r\033[2K"
_SPINNER_UNICODE = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_SPINNER_ASCII = "|/-\\"


class Screen:
    """The output stream, knowing when it was last written and wiping the progress line first."""

    def __init__(self, stream: IO[str], clock: Callable[[], float] = time.monotonic):
        self.stream = stream
        self.clock = clock
        self.last_write = clock()
        self._status_shown = False

    @property
    def encoding(self) -> Optional[str]:
        return getattr(self.stream, "encoding", None)

    def isatty(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def write(self, text: str) -> int:
        self.clear_status()
        self.last_write = self.clock()
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def columns(self) -> int:
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, ValueError, OSError):  # no descriptor, closed, or not a terminal
            return DEFAULT_COLUMNS
        return columns or DEFAULT_COLUMNS

    def show_status(self, text: str) -> None:
        """One row, never wrapped: the last column stays free, as some terminals wrap on it."""
        ellipsis = "…" if can_encode(self, "…") else "..."
        self.stream.write(_CLEAR + fit(redact(text), self.columns() - 1, ellipsis))
        self.stream.flush()
        self._status_shown = True

    def clear_status(self) -> None:
        if self._status_shown:
            self.stream.write(_CLEAR)
            self._status_shown = False


class Progress(Reporter):
    def __init__(
        self,
        screen: Screen,
        say: Callable[[str], None],
        interactive: Optional[bool] = None,
        heartbeat: float = HEARTBEAT_SECONDS,
    ):
        self.screen = screen
        self.say = say  # the host reporter's own line writer, so hosts keep their rules
        self.interactive = screen.isatty() if interactive is None else interactive
        self.heartbeat = heartbeat
        self.spinner = _SPINNER_UNICODE if can_encode(screen, _SPINNER_UNICODE) else _SPINNER_ASCII
        self._frame = 0
        self._began = screen.clock()

    def on_accepted(self, event: RunAccepted) -> None:
        self._began = self.screen.clock()

    def on_tick(self, event: Tick) -> None:
        text = describe(event.snapshot, self.screen.clock() - self._began)
        if self.interactive:
            if event.pending:
                text += f"; output pending: {', '.join(one_line(name) for name in event.pending)}"
            self._frame = (self._frame + 1) % len(self.spinner)
            self.screen.show_status(f"{self.spinner[self._frame]} {text}")
        elif self.screen.clock() - self.screen.last_write >= self.heartbeat:
            self.say(f"still {text}")

    def on_finished(self, event: RunFinished) -> None:
        self.screen.clear_status()

    def close(self) -> None:
        self.screen.clear_status()
        self.screen.flush()


def describe(snapshot: RunSnapshot, elapsed: float) -> str:
    """'running: 2/5 steps done, 1m 03s elapsed (now: build, test)'."""
    steps = [step for step in snapshot.steps if not step.handler]
    done = sum(step.status.is_finished for step in steps)
    running = [
        one_line(" ".join(step.name.split()))
        for step in steps
        if step.status in (StepStatus.RUNNING, StepStatus.RETRYING)
    ]
    state = snapshot.status.label.replace("_", " ") if snapshot.status != RunStatus.NOT_STARTED else "starting"
    text = f"{state}: {done}/{len(steps)} steps done, {format_duration(elapsed)} elapsed"
    if running:
        text += f" (now: {', '.join(running)})"
    return text
