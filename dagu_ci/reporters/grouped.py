"""Shared by the host reporters: one collapsible group per step, never interleaved."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, Dict, List, Optional, Union

from dagu_ci.follow.events import Notice, RunFinished, StepFinished, StepLog, StepStarted
from dagu_ci.reporters.plain import PlainReporter
from dagu_ci.server.models import StepSnapshot, StepStatus
from dagu_ci.term import Style


@dataclass
class _Held:
    """A step whose output waits while another step's group is open."""

    step: StepSnapshot
    events: List[Union[StepLog, Notice]] = field(default_factory=list)
    finished: Optional[StepSnapshot] = None


class GroupedReporter(PlainReporter):
    """Plain output, but each step's log sits in one host group, never interleaved.

    One step at a time streams live into an open group. Steps that start meanwhile
    (parallel steps) are held back and shown whole, as their own group, once the
    live group closes: finished ones first, then the next running one goes live.
    Subclasses say how a group opens and closes and how log lines are written.
    """

    def __init__(self, out: Optional[IO[str]] = None, style: Optional[Style] = None):
        super().__init__(out, style)
        self._live: Optional[StepSnapshot] = None
        self._held: Dict[str, _Held] = {}

    # -- host specifics -------------------------------------------------------

    def open_group(self, step: StepSnapshot, finished: Optional[StepSnapshot]) -> None:
        raise NotImplementedError

    def close_group(self, step: StepSnapshot) -> None:
        raise NotImplementedError

    def write_log(self, lines: List[str]) -> None:
        self.write(lines)

    # -- events ---------------------------------------------------------------

    def on_step_started(self, event: StepStarted) -> None:
        if self._live is None:
            self._go_live(event.step, [])
        else:
            self._held[event.step.name] = _Held(event.step)

    def on_log(self, event: StepLog) -> None:
        held = self._held.get(event.step)
        if held is not None:
            held.events.append(event)
        elif self._live is not None and self._live.name == event.step:
            self._show_log(event)
        else:  # late lines of a step whose group has closed (the final read)
            late = StepSnapshot(f"{event.step} (more output)", StepStatus.NOT_STARTED)
            self._whole_group(_Held(late, [event]), announce=False)

    def on_notice(self, event: Notice) -> None:
        held = self._held.get(event.step or "")
        if held is not None:
            held.events.append(event)
        else:
            super().on_notice(event)

    def on_step_finished(self, event: StepFinished) -> None:
        held = self._held.get(event.step.name)
        if held is not None:
            held.finished = event.step
            return
        if not event.step.ran and self._live is not None:  # its end line waits for the open group
            self._held[event.step.name] = _Held(event.step, finished=event.step)
            return
        if self._live is not None and self._live.name == event.step.name:
            self.close_group(event.step)
            self._live = None
        self.write([self._step_line(event.step)])
        self._release()

    def on_finished(self, event: RunFinished) -> None:
        self.flush_groups()
        super().on_finished(event)

    def close(self) -> None:
        self.flush_groups()
        super().close()

    def flush_groups(self) -> None:
        """The run ended (or we stopped following): show everything still held."""
        if self._live is not None:
            self.close_group(self._live)
            self._live = None
        for name in list(self._held):
            self._whole_group(self._held.pop(name), announce=True)

    # -- internals ------------------------------------------------------------

    def _release(self) -> None:
        for name in [n for n, held in self._held.items() if held.finished is not None]:
            self._whole_group(self._held.pop(name), announce=True)
        if self._held and self._live is None:
            name = next(iter(self._held))
            held = self._held.pop(name)
            self._go_live(held.step, held.events)

    def _go_live(self, step: StepSnapshot, backlog: List[Union[StepLog, Notice]]) -> None:
        self._live = step
        self.open_group(step, None)
        self._replay(backlog)

    def _whole_group(self, held: _Held, announce: bool) -> None:
        if held.events or held.step.ran:  # a step that never began has no group, only its end line
            self.open_group(held.step, held.finished)
            self._replay(held.events)
            self.close_group(held.finished or held.step)
        if announce and held.finished is not None:
            self.write([self._step_line(held.finished)])

    def _replay(self, events: List[Union[StepLog, Notice]]) -> None:
        for event in events:
            if isinstance(event, StepLog):
                self._show_log(event)
            else:
                super().on_notice(event)

    def _show_log(self, event: StepLog) -> None:
        self.write_log(self.log_text(event))
