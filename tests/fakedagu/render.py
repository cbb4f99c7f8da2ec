"""JSON shapes of the modern API, per version (API.md §4.2, transformer.go at each tag).

Go's `ptrOf()` drops zero values, so optional fields are omitted when empty; a few
fields are always present (autoRetryCount, artifactsAvailable) and two are `null`
when a run has no labels (labels/tags are `&s.Labels` on a nil slice).
"""

from __future__ import annotations

import json
import shlex
from typing import Any, Dict, List, Optional

from .dags import Dag, Output, Step
from .engine import Attempt, NodeState, Run
from .lifecycle import artifacts_available
from .params import escaped_defaults, param_strings
from .versions import ServerVersion, node_status_label, status_label


def _command_entry(command: Optional[str]) -> Dict[str, Any]:
    """Dagu splits a step's command line into the program and its args (omitted when none)."""
    words = shlex.split(command) if command else ["fake-step"]
    entry: Dict[str, Any] = {"command": words[0] if words else ""}
    if words[1:]:
        entry["args"] = words[1:]
    return entry


def step_json(step: Step, version: ServerVersion, from_spec: bool = False) -> Dict[str, Any]:
    body: Dict[str, Any] = {"name": step.name, "commands": [_command_entry(step.command)]}
    if version.at_least(2, 0, 0):
        body["preconditions"] = []
    elif from_spec:
        # 1.x (checked on 1.30.3): a step loaded from its file has an empty executor config;
        # a run's stored status drops it. Step preconditions are a nil slice: omitted.
        body["executorConfig"] = {"config": {}}
    if step.depends:
        body["depends"] = list(step.depends)
    outputs = [a.key for a in step.actions if isinstance(a, Output)]
    if outputs:
        body["output"] = outputs[0]  # the step's `output:` variable name
    if step.is_approval and version.has_approval:
        body["approval"] = {}
    return body


def node_json(node: NodeState, version: ServerVersion, from_spec: bool = False) -> Dict[str, Any]:
    body: Dict[str, Any] = {
        "step": step_json(node.step, version, from_spec),
        "stdout": node.stdout,
        "stderr": node.stderr,
        "startedAt": node.started_at,
        "finishedAt": node.finished_at,
        "status": node.status,
        "statusLabel": node_status_label(version, node.status),
        "retryCount": node.retry_count,
        "doneCount": node.done_count,
    }
    # v1.24.0 renamed children -> subRuns; 1.x (checked on 1.30.3) omits them when empty (nil slices).
    subs, repeated = _sub_runs(node.sub_runs, version), _sub_runs(node.sub_runs_repeated, version)
    if version.at_least(2, 0, 0):
        body["subRuns"], body["subRunsRepeated"] = subs, repeated
    elif version.at_least(1, 24, 0):
        if subs:
            body["subRuns"] = subs
        if repeated:
            body["subRunsRepeated"] = repeated
    else:
        body["children"], body["childrenRepeated"] = subs, repeated
    if node.error:
        body["error"] = node.error
    if node.approved_at:
        body["approvedAt"] = node.approved_at
    if node.rejected_at:
        body["rejectedAt"] = node.rejected_at
    return body


def _sub_runs(entries: List[Any], version: ServerVersion) -> List[Dict[str, Any]]:
    """SubDAGRun: dagRunId, params (ptrOf: omitted when empty), dagName from 2.0.0."""
    items = []
    for run_id, params, dag_name in entries:
        item: Dict[str, Any] = {"dagRunId": run_id}
        if params:
            item["params"] = params
        if dag_name and version.at_least(2, 0, 0):
            item["dagName"] = dag_name
        items.append(item)
    return items


def _handler_key(key: str, version: ServerVersion) -> str:
    return "onCancel" if key == "onAbort" and not version.at_least(2, 3, 0) else key


def _labels(run: Optional[Run]) -> Optional[List[str]]:
    return list(run.labels) if run is not None and run.labels else None


def _common(
    version: ServerVersion,
    run: Optional[Run],
    attempt: Optional[Attempt],
    name: str,
    details: bool,
) -> Dict[str, Any]:
    run_id = run.run_id if run else ""
    status = attempt.status if attempt else 0
    body: Dict[str, Any] = {
        "name": name,
        "dagRunId": run_id,
        "status": status,
        "statusLabel": status_label(version, status),
        "startedAt": attempt.started_at if attempt else "",
        "finishedAt": attempt.finished_at if attempt else "",
    }
    # DAGRunSummary lost log/root*/parent* in v2.1.0; details keep them.
    if details or not version.at_least(2, 1, 0):
        # A sub-DAG run names its root (and, ptrOf, its parent): toDAGRunDetails.
        body["rootDAGRunName"] = run.root.name if run else ""
        body["rootDAGRunId"] = run.root.run_id if run else ""
        if run is not None and run.parent is not None:
            body["parentDAGRunName"] = run.parent.name
            body["parentDAGRunId"] = run.parent.run_id
        body["log"] = attempt.log_file if attempt else ""
    if run is not None and run.resolved.joined:
        body["params"] = run.resolved.joined
    # 1.x details leave queuedAt out (toDAGRunDetails at 1.30.3); summaries carry it.
    if run is not None and run.queued_at and (not details or version.at_least(2, 0, 0)):
        body["queuedAt"] = run.queued_at
    if version.at_least(1, 30, 0) and attempt is not None and attempt.started_at:
        body["workerId"] = (run.dag.worker if run is not None else None) or "local"
    if version.at_least(2, 0, 0) and attempt is not None:
        body["triggerType"] = attempt.trigger_type
    if version.at_least(2, 3, 0):
        body["autoRetryCount"] = attempt.auto_retry_count if attempt else 0
        body["autoRetryLimit"] = run.auto_retry_limit if run is not None else None
    if version.at_least(2, 5, 0):
        body["artifactsAvailable"] = run is not None and artifacts_available(run)
    if version.at_least(2, 0, 0):
        labels = _labels(run)
        body["tags"] = labels  # null when the run has none
        if version.at_least(2, 6, 0):
            body["labels"] = labels
    return body


def run_details(version: ServerVersion, run: Run, attempt: Optional[Attempt] = None) -> Dict[str, Any]:
    attempt = attempt or run.attempt
    body = _common(version, run, attempt, run.name, details=True)
    body["preconditions"] = []
    body["nodes"] = [node_json(n, version) for n in attempt.nodes.values()]
    for key, node in attempt.handlers.items():
        body[_handler_key(key, version)] = node_json(node, version)
    return body


def initial_details(version: ServerVersion, dag: Dag) -> Dict[str, Any]:
    """exec.InitialStatus(dag): what latestDAGRun shows for a DAG that never ran."""
    body = _common(version, None, None, dag.dag_name, details=True)
    body["preconditions"] = []
    body["nodes"] = [node_json(NodeState(s), version, from_spec=True) for s in dag.steps]
    for key, step in dag.handlers.items():
        body[_handler_key(key, version)] = node_json(NodeState(step), version)
    return body


def run_summary(version: ServerVersion, run: Run) -> Dict[str, Any]:
    return _common(version, run, run.attempt, run.name, details=False)


def dag_details(version: ServerVersion, dag: Dag) -> Dict[str, Any]:
    body: Dict[str, Any] = {
        "name": dag.dag_name,
        "schedule": [{"expression": e} for e in dag.schedule],
        "preconditions": [],
        "steps": [step_json(s, version, from_spec=True) for s in dag.steps],
        "maxActiveRuns": 1,
    }
    if not version.at_least(2, 0, 0):
        # 1.x (checked on 1.30.3): nil slices are omitted; histRetentionDays defaults to 30.
        del body["preconditions"]
        if not dag.schedule:
            del body["schedule"]
        body["histRetentionDays"] = 30
    if dag.description:
        body["description"] = dag.description
    if dag.params:
        body["params"] = param_strings(dag.params)
        body["defaultParams"] = escaped_defaults(dag.params)
    if version.at_least(2, 5, 0) and (dag.param_defs or dag.params):
        # Untyped params are listed as strings with their defaults (spec/dag.go buildParamDefs).
        body["paramDefs"] = dag.param_defs or [
            {"name": k, "type": "string", "default": v} for k, v in dag.params.items()
        ]
    handler_on = {
        {"onSuccess": "success", "onFailure": "failure", "onAbort": "abort", "onExit": "exit"}[k]: step_json(s, version)
        for k, s in dag.handlers.items()
    }
    if handler_on:
        if not version.at_least(2, 3, 0) and "abort" in handler_on:
            handler_on["cancel"] = handler_on.pop("abort")
        body["handlerOn"] = handler_on
    if dag.labels:
        body["tags"] = list(dag.labels)
        if version.at_least(2, 6, 0):
            body["labels"] = list(dag.labels)
    return body


def dag_summary(version: ServerVersion, dag: Dag) -> Dict[str, Any]:
    body: Dict[str, Any] = {"name": dag.dag_name, "schedule": [{"expression": e} for e in dag.schedule]}
    if dag.description:
        body["description"] = dag.description
    if dag.params:
        body["params"] = param_strings(dag.params)
        body["defaultParams"] = escaped_defaults(dag.params)
    if dag.labels:
        body["tags"] = list(dag.labels)
        if version.at_least(2, 6, 0):
            body["labels"] = list(dag.labels)
    return body


def outputs_json(version: ServerVersion, run: Run) -> Dict[str, Any]:
    """GetDAGRunOutputs: outputs are written just before the final status (API.md §9)."""
    attempt = run.attempt
    if not attempt.finished or not attempt.outputs:
        empty: Dict[str, Any] = {
            "metadata": {
                "dagName": "",
                "dagRunId": "",
                "attemptId": "",
                "status": "",
                "completedAt": "0001-01-01T00:00:00Z",
            },
            "outputs": {},
        }
        if not version.at_least(2, 0, 0):
            empty["metadata"]["params"] = ""  # 1.x: `&Metadata.Params`, never omitted (1.30.3)
        return empty
    metadata: Dict[str, Any] = {
        "dagName": run.name,
        "dagRunId": run.run_id,
        "attemptId": attempt.attempt_id,
        "status": status_label(version, attempt.status),
        "completedAt": attempt.finished_at,
    }
    if run.resolved.effective:
        metadata["params"] = json.dumps(dict(run.resolved.effective), separators=(",", ":"))
    elif not version.at_least(2, 0, 0):
        metadata["params"] = ""
    return {"metadata": metadata, "outputs": dict(attempt.outputs)}
