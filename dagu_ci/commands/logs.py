"""`logs`: a run's step logs, read once; or, with --follow, streamed until the run ends
through the core's Follower and reporters, as `run` shows them. Nothing here polls or
tails by itself."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Dict, List, Mapping, Optional

from dagu_ci.commands.connect import connected, find_run
from dagu_ci.commands.output import Output
from dagu_ci.controls import log_lines, one_line
from dagu_ci.errors import UsageError
from dagu_ci.follow.events import Event, StepFinished, StepLog, StepStarted
from dagu_ci.follow.follower import Follower, FollowOptions
from dagu_ci.follow.logtail import LogTailer, ReadMode
from dagu_ci.follow.subruns import read_tree, sub_run_tailer
from dagu_ci.hosts import make_reporter
from dagu_ci.hosts.base import Host
from dagu_ci.redaction import mask_values
from dagu_ci.reporters import Reporter
from dagu_ci.server.api import DaguClient
from dagu_ci.server.models import TREE_SEP, RunSnapshot, StepSnapshot
from dagu_ci.stdio import raise_if_reader_gone


@dataclass
class LogRequest:
    dag: str
    run_id: str
    step: Optional[str] = None
    stream: str = "stdout"
    tail: int = 0  # 0: the whole log


def logs(client: DaguClient, output: Output, request: LogRequest) -> int:
    """Every started step's log (or one step's), each under a header, read once; the
    steps of its sub-DAG runs too, named by their paths."""
    snapshot = with_tree(client, find_run(client, request.dag, request.run_id), request.step)
    steps = chosen_steps(snapshot, request.step)
    tailers: Dict[str, LogTailer] = {"": LogTailer(client, snapshot.dag_name, snapshot.run_id, client.retry_window)}
    owners = {step.name: child for child in snapshot.children for step in child.steps}
    collected: Dict[str, List[str]] = {}
    for step in steps:
        path = step.stderr if request.stream == "stderr" else step.stdout
        if not step.status.has_started or not path:
            collected[step.name] = []
            continue
        child = owners.get(step.name)
        own = replace(step, name=step.name[len(child.path) + len(TREE_SEP) :]) if child else step  # as its DAG names it
        if request.tail:
            retry = client.retry_window()
            if child is None:
                page = client.read_log(
                    snapshot.dag_name, snapshot.run_id, step.name, request.stream, retry, tail=request.tail
                )
            else:
                page = client.read_sub_log(
                    snapshot.dag_name, snapshot.run_id, child.run_id, own.name, request.stream, retry, tail=request.tail
                )
            collected[step.name] = list(page.lines) if page else []
        else:
            key = child.run_id if child else ""
            if child is not None and key not in tailers:
                tailers[key] = sub_run_tailer(client, snapshot, child, client.retry_window)
            # The run may still be going: FLUSH shows every line written so far.
            mode = ReadMode.FINAL if step.status.is_finished else ReadMode.FLUSH
            collected[step.name] = [
                line for chunk in tailers[key].read(own, request.stream, path, mode) for line in chunk.lines
            ]
    if output.as_json:
        output.document(
            {
                "dag": request.dag,
                "run_id": snapshot.run_id,
                "stream": request.stream,
                "steps": [
                    {"name": step.name, "status": step.status.label, "lines": collected[step.name]} for step in steps
                ],
            }
        )
        return 0
    lines: List[str] = []
    for step in steps:
        if request.step is None:
            name = one_line(step.name)
            header = (
                f"── {name} ({step.status.label.replace('_', ' ')}) ──"
                if output.style.unicode
                else f"== {name} ({step.status.label}) =="
            )
            lines.append(output.style.paint(header, "bold"))
        lines += [part for line in collected[step.name] for part in log_lines(line, output.style.remote_color)]
    output.lines(lines)
    return 0


def follow(
    connection: Mapping[str, Any],
    retry_for: float,
    host: Host,
    reporter_name: str,
    request: LogRequest,
    poll_interval: float,
) -> int:
    """`logs --follow`: the core's follower, shown by the reporter `reporter_name` picks for
    `host`, its events filtered to the chosen step and stream."""
    reporter = make_reporter(host, reporter_name, secrets=mask_values())
    with connected(connection, retry_for, reporter, no_run_is_usage=True) as client:
        try:
            snapshot = find_run(client, request.dag, request.run_id)
            step = request.step
            if step is not None:  # an unknown step is an error before anything streams
                [chosen] = chosen_steps(with_tree(client, snapshot, step), step)
                step = chosen.name  # a sub-run's step as the follower names it
            # A reader that went away (`| head`) ends the follow at the next poll.
            options = FollowOptions(poll_interval, check=raise_if_reader_gone)
            Follower(
                client, snapshot.dag_name, snapshot.run_id, LogFilter(reporter, step, request.stream).handle, options
            ).follow()
            return 0
        finally:
            reporter.close()


def with_tree(client: DaguClient, snapshot: RunSnapshot, step: Optional[str]) -> RunSnapshot:
    """The run with its sub-runs, unless the one step asked for is the run's own."""
    if step is not None and snapshot.step(step) is not None:
        return snapshot
    return read_tree(client, snapshot, client.retry_window)


def chosen_steps(snapshot: RunSnapshot, step: Optional[str]) -> List[StepSnapshot]:
    """All the steps (a sub-run's by their paths), or the one named: as shown
    (`deploy › leaf[eu] › migrate`) or with slashes (`deploy/leaf[eu]/migrate`)."""
    if step is None:
        return list(snapshot.all_steps())
    found = snapshot.step(step)
    if found is not None:
        return [found]
    wanted = _path_key(step)
    matches = [s for s in snapshot.all_steps() if _path_key(s.name) == wanted]
    if len(matches) == 1:
        return matches
    names = ", ".join(s.name for s in snapshot.steps)
    if snapshot.children:
        example = snapshot.children[0].steps[0].name.replace(TREE_SEP, "/") if snapshot.children[0].steps else ""
        names += f"; a sub-run's step by its path, e.g. {example}" if example else ""
    if matches:
        raise UsageError(
            f"more than one step of run {snapshot.run_id} matches {step!r}: " + ", ".join(s.name for s in matches)
        )
    raise UsageError(f"run {snapshot.run_id} has no step {step!r} (steps: {names})")


def _path_key(name: str) -> str:
    """A step path compared loosely: `›` or `/` between the parts, spaces around them ignored."""
    return "/".join(part.strip() for part in name.replace("›", "/").split("/"))


class LogFilter(Reporter):
    """`logs --follow`: pass on only the chosen step's and stream's events."""

    def __init__(self, inner: Reporter, step: Optional[str], stream: str):
        self.inner = inner
        self.step = step
        self.stream = stream

    def handle(self, event: Event) -> None:
        if isinstance(event, StepLog) and (event.stream != self.stream or self.step not in (None, event.step)):
            return
        if isinstance(event, (StepStarted, StepFinished)) and self.step not in (None, event.step.name):
            return
        self.inner.handle(event)

    def close(self) -> None:
        self.inner.close()
