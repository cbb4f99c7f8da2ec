"""Read-only commands: `status`, `logs`, `dags`, `history`, `outputs`.

Each one asks the server, then prints either an aligned table for people or, with
--json, a document for scripts. Following a run (`logs --follow`) goes through the
core's Follower and reporters like `run` does; nothing here polls or tails by itself.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from typing import IO, Any, Dict, List, Optional, Sequence

from dagu_ci.controls import log_lines, one_line
from dagu_ci.errors import ExitCode, NoRun, UsageError
from dagu_ci.follow.events import Event, StepFinished, StepLog, StepStarted
from dagu_ci.follow.follower import Follower, FollowOptions
from dagu_ci.follow.logtail import LogTailer, ReadMode
from dagu_ci.follow.subruns import read_tree, sub_run_tailer
from dagu_ci.redaction import redact, redact_value
from dagu_ci.remotetext import EnvFormat, env_file, inert, json_text
from dagu_ci.reporters import Reporter
from dagu_ci.run.result import RunResult, exit_code_for
from dagu_ci.server.api import DaguClient
from dagu_ci.server.capabilities import Capabilities
from dagu_ci.server.models import TREE_SEP, RunSnapshot, RunStatus, StepSnapshot, parse_time
from dagu_ci.term import Style, format_ago, format_duration, table

ACTIVE = (RunStatus.RUNNING, RunStatus.QUEUED, RunStatus.WAITING, RunStatus.NOT_STARTED)


@dataclass
class Output:
    """Where a command writes: stdout, styled by the same rules as `run`'s output."""

    out: IO[str] = field(default_factory=lambda: sys.stdout)
    as_json: bool = False

    def __post_init__(self) -> None:
        self.style = Style.for_stream(self.out)

    def lines(self, lines: Sequence[str]) -> None:
        """Text for people; what came from the server may be in it, so no CI runner
        reading it as a log may take a line for a command."""
        self.text("".join(inert(line) + "\n" for line in lines))

    def document(self, value: Any) -> None:
        self.text(json_text(redact_value(value), indent=2) + "\n")  # stays valid JSON

    def text(self, text: str) -> None:
        if text:
            self.out.write(redact(text))
            self.out.flush()

    def status(self, status: RunStatus) -> str:
        return self.style.paint(status.label.replace("_", " "), self.style.status_color(status))


def find_run(client: DaguClient, dag_file: str, run_id: str) -> RunSnapshot:
    """The run (`latest`: the newest); NoRun when the DAG has no such run."""
    _, snapshot = client.run_of(dag_file, run_id)
    if snapshot is None:
        what = "never ran" if run_id == "latest" else f"has no run {run_id!r}"
        raise NoRun(f"{dag_file} {what} on {client.display_url}")
    return snapshot


# -- status -----------------------------------------------------------------------


def status_exit_code(status: RunStatus) -> int:
    """0 succeeded (or partially), 1 failed, 3 aborted/rejected, 5 still active."""
    if status in ACTIVE:
        return int(ExitCode.ACTIVE)
    return int(exit_code_for(status))


def status(client: DaguClient, output: Output, dag_file: str, run_id: str) -> int:
    try:
        snapshot = find_run(client, dag_file, run_id)
    except NoRun as exc:
        if output.as_json:  # a monitor's script still gets a document
            output.document(
                {
                    "dag": dag_file,
                    "run_id": None,
                    "status": None,
                    "exit_code": int(ExitCode.NO_RUN),
                    "message": exc.message,
                }
            )
            return int(ExitCode.NO_RUN)
        raise
    snapshot = read_tree(client, snapshot, client.retry_window)  # its sub-DAG runs, at every depth
    code = status_exit_code(snapshot.status)
    url = client.ui_url(snapshot.dag_name, snapshot.run_id)
    if output.as_json:
        # The document `run --json` prints, outputs included once the run has ended.
        values = client.get_outputs(snapshot.dag_name, snapshot.run_id) if snapshot.is_over else {}
        result = RunResult(
            dag_file,
            snapshot.dag_name,
            snapshot.run_id,
            url,
            snapshot,
            code,
            duration=snapshot.duration,
            outputs=values,
        )
        output.document(result.to_dict())
        return code
    headline = f"{snapshot.dag_name} run {snapshot.run_id} {output.status(snapshot.status)}"
    if snapshot.started_at:
        headline += f", started {format_ago(snapshot.started_at)}"
    if snapshot.duration is not None:
        headline += f", took {format_duration(snapshot.duration)}"
    lines = [headline]
    tree = snapshot.tree_rows()  # each sub-run under the step that started it, indented
    if tree:
        rows = [
            [
                "  " * depth + inert(label),
                s.status.label.replace("_", " "),
                format_ago(s.started_at),
                format_duration(s.duration),
            ]
            for depth, label, s in tree
        ]
        colors = [output.style.status_color(s.status) for _, _, s in tree]
        lines += table(["STEP", "STATUS", "STARTED", "DURATION"], rows, output.style, colors)
    lines.append(f"view: {url}")
    output.lines(lines)
    return code


# -- history and dags -------------------------------------------------------------


def history(client: DaguClient, output: Output, dag_file: str, limit: int) -> int:
    runs = client.run_history(client.dag_name(dag_file), limit)
    if output.as_json:
        output.document([_run_summary(run) for run in runs])
        return 0
    if not runs:
        output.lines([f"{dag_file} has no runs"])
        return 0
    rows = [
        [
            inert(run.run_id),
            run.status.label.replace("_", " "),
            format_ago(run.started_at),
            format_duration(run.duration),
        ]
        for run in runs
    ]
    colors = [output.style.status_color(run.status) for run in runs]
    output.lines(table(["RUN ID", "STATUS", "STARTED", "DURATION"], rows, output.style, colors, indent=""))
    return 0


def dags(client: DaguClient, output: Output) -> int:
    items = client.list_dags()
    summaries = [_dag_summary(item) for item in items]
    if output.as_json:
        output.document(summaries)
        return 0
    if not summaries:
        output.lines([f"no DAGs on {client.display_url}"])
        return 0
    rows, colors = [], []
    for dag in summaries:
        status = RunStatus.parse(dag["latest_status_code"]) if dag["latest_run_id"] else None
        rows.append(
            [
                inert(dag["file"]),
                inert(dag["name"]),
                ", ".join(dag["schedule"]) or "-",
                "yes" if dag["suspended"] else "no",
                status.label.replace("_", " ") if status else "never ran",
                format_ago(parse_time(dag["latest_started_at"])) if status else "-",
            ]
        )
        colors.append(output.style.status_color(status) if status else "dim")
    output.lines(
        table(
            ["FILE", "NAME", "SCHEDULE", "SUSPENDED", "LATEST", "STARTED"],
            rows,
            output.style,
            colors,
            color_column=4,
            indent="",
        )
    )
    return 0


def _run_summary(run: RunSnapshot) -> Dict[str, Any]:
    return {
        "run_id": run.run_id,
        "status": run.status.label,
        "status_code": int(run.status),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "duration": round(run.duration, 3) if run.duration is not None else None,
    }


def _dag_summary(item: Dict[str, Any]) -> Dict[str, Any]:
    dag = item.get("dag") or {}
    latest = RunSnapshot.from_api(item.get("latestDAGRun") or {})
    schedule = [str(s.get("expression") if isinstance(s, dict) else s) for s in dag.get("schedule") or []]
    return {
        "file": str(item.get("fileName") or ""),
        "name": str(dag.get("name") or item.get("fileName") or ""),
        "schedule": schedule,
        "suspended": bool(item.get("suspended")),
        # A DAG that never ran reports an initial status with an empty run id (API.md §4.1).
        "latest_run_id": latest.run_id or None,
        "latest_status": latest.status.label if latest.run_id else None,
        "latest_status_code": int(latest.status) if latest.run_id else None,
        "latest_started_at": latest.started_at.isoformat() if latest.started_at else None,
    }


# -- outputs ----------------------------------------------------------------------


def outputs(
    client: DaguClient, output: Output, dag_file: str, run_id: str, fmt: Optional[EnvFormat] = EnvFormat.ENV
) -> int:
    """FMT None: JSON. A name or value FMT cannot carry safely ends it (exit 1) before
    anything is printed, so a redirect into GITHUB_ENV never gets half a file."""
    snapshot = find_run(client, dag_file, run_id)
    if not client.api.features.outputs:
        raise UsageError(
            f"outputs need Dagu {Capabilities.needs('outputs')} or newer; {client.display_url} runs {client.api.version_text or 'an older version'}"
        )
    values = client.get_outputs(snapshot.dag_name, snapshot.run_id)
    if fmt is None:
        output.document(values)
    else:
        output.text(env_file(values, fmt))
    return 0


# -- logs -------------------------------------------------------------------------


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
            if key not in tailers:
                tailers[key] = sub_run_tailer(client, snapshot, child, client.retry_window)  # type: ignore[arg-type]
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


def follow_logs(client: DaguClient, reporter: Reporter, request: LogRequest, options: FollowOptions) -> int:
    """`logs --follow`: the core's follower, its events filtered to the chosen step and stream."""
    snapshot = find_run(client, request.dag, request.run_id)
    step = request.step
    if step is not None:  # an unknown step is an error before anything streams
        [chosen] = chosen_steps(with_tree(client, snapshot, step), step)
        step = chosen.name  # a sub-run's step as the follower names it
    Follower(
        client, snapshot.dag_name, snapshot.run_id, LogFilter(reporter, step, request.stream).handle, options
    ).follow()
    return 0


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
