"""`status`: one snapshot of a run and its steps, its sub-DAG runs under the steps that
started them; the exit code says how the run stands."""

from __future__ import annotations

from dagu_ci.commands.connect import find_run
from dagu_ci.commands.output import Output
from dagu_ci.errors import ExitCode, NoRun
from dagu_ci.follow.subruns import read_tree
from dagu_ci.remotetext import inert
from dagu_ci.run.result import RunResult, exit_code_for
from dagu_ci.server.api import DaguClient
from dagu_ci.server.models import RunStatus
from dagu_ci.term import format_ago, format_duration, table

ACTIVE = (RunStatus.RUNNING, RunStatus.QUEUED, RunStatus.WAITING, RunStatus.NOT_STARTED)


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
