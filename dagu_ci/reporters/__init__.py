"""Reporters turn follower events into output for one CI host."""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional

from dagu_ci.follow.events import (
    Event,
    Failed,
    Notice,
    RunAccepted,
    RunFinished,
    RunStatusChanged,
    ServerDetected,
    StepFinished,
    StepLog,
    StepStarted,
    Tick,
)

if TYPE_CHECKING:
    from dagu_ci.files import Target


class Reporter:
    """Base: dispatch each event to an `on_*` method. Subclasses override what they need."""

    def handle(self, event: Event) -> None:
        method = getattr(self, _HANDLERS[type(event)])
        method(event)

    def on_server(self, event: ServerDetected) -> None: ...
    def on_accepted(self, event: RunAccepted) -> None: ...
    def on_status(self, event: RunStatusChanged) -> None: ...
    def on_step_started(self, event: StepStarted) -> None: ...
    def on_log(self, event: StepLog) -> None: ...
    def on_step_finished(self, event: StepFinished) -> None: ...
    def on_notice(self, event: Notice) -> None: ...
    def on_tick(self, event: Tick) -> None: ...
    def on_finished(self, event: RunFinished) -> None: ...
    def on_failed(self, event: Failed) -> None: ...

    def targets(self) -> "List[Target]":
        """The files this reporter will write, checked before the run starts."""
        return []

    def close(self) -> None:
        """Called once at the very end, whatever happened."""


class Fanout(Reporter):
    """Several reporters at once (e.g. a host's console plus a JUnit file)."""

    def __init__(self, *reporters: Reporter):
        self.reporters = list(reporters)

    def handle(self, event: Event) -> None:
        """Every reporter gets the event, even after one could not write its file."""
        failure: Optional[OSError] = None
        for reporter in self.reporters:
            try:
                reporter.handle(event)
            except OSError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def targets(self) -> "List[Target]":
        return [target for reporter in self.reporters for target in reporter.targets()]

    def close(self) -> None:
        for reporter in self.reporters:
            reporter.close()


_HANDLERS = {
    ServerDetected: "on_server",
    RunAccepted: "on_accepted",
    RunStatusChanged: "on_status",
    StepStarted: "on_step_started",
    StepLog: "on_log",
    StepFinished: "on_step_finished",
    Notice: "on_notice",
    Tick: "on_tick",
    RunFinished: "on_finished",
    Failed: "on_failed",
}
