"""`dags`: the server's DAGs, each with its schedule and latest run."""

from __future__ import annotations

from typing import Any, Dict

from dagu_ci.commands.output import Output
from dagu_ci.remotetext import inert
from dagu_ci.server.api import DaguClient
from dagu_ci.server.models import RunSnapshot, RunStatus, parse_time
from dagu_ci.term import format_ago, table


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
