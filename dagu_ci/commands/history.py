"""`history`: a DAG's past runs, newest first."""

from __future__ import annotations

from typing import Any, Dict

from dagu_ci.commands.output import Output
from dagu_ci.remotetext import inert
from dagu_ci.server.api import DaguClient
from dagu_ci.server.models import RunSnapshot
from dagu_ci.term import format_ago, format_duration, table


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


def _run_summary(run: RunSnapshot) -> Dict[str, Any]:
    return {
        "run_id": run.run_id,
        "status": run.status.label,
        "status_code": int(run.status),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "duration": round(run.duration, 3) if run.duration is not None else None,
    }
