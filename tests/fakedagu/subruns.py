"""Sub-DAG runs: `call`/`run` steps, `parallel` fan-outs, nesting (API.md §6).

What the real server does, read from Dagu 1.30.3 (`internal/runtime/node.go`
BuildSubDAGRuns, `internal/service/frontend/api/v2/dagruns.go` GetSubDAGRun*) and
2.6.5 (`internal/service/frontend/api/v1/dagruns.go`):

- A step that calls a DAG lists its children in its node (`subRuns`, 1.24+; `children`
  before) as soon as it starts, before their records exist: a child's details answer
  404 until then, and the list endpoint skips it (`srv.engine.sub_record_gate` holds
  the records back so a test can see that window).
- A child's id is a digest of the parent run id, the step name and its params
  (GenerateSubDAGRunID); a repeated call adds randomness, and the earlier children
  move to `subRunsRepeated`.
- Children, at any depth, are stored under the root run: every endpoint is addressed
  by the ROOT run's name and id (`/dag-runs/{root}/{rootId}/sub-dag-runs/{subId}`).
- `GET …/sub-dag-runs` lists the children of the root's nodes with their status
  (1.24+); `?parentSubDAGRunId=X` lists the children of sub-run X (1.26.7+, the
  "multiple-level nested local DAGs" change; older servers ignore the query).
- A stop of the root cancels its steps, and a calling step cancels its children:
  they end aborted.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from .dags import Call, fill
from .params import resolve_params
from .transport import Reply
from .versions import status_label

if TYPE_CHECKING:
    import threading

    from .api import DaguAPI, Request
    from .engine import Engine, NodeState, Run
    from .logs import LogWriter

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _base58(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    text = ""
    while number:
        number, digit = divmod(number, 58)
        text = _BASE58[digit] + text
    return text or "1"


def sub_run_id(parent_run_id: str, step: str, params: str, repeated: bool) -> str:
    """stringutil.Base58EncodeSHA256 of "runId:step:params" (plus random bytes when repeated)."""
    seed = f"{parent_run_id}:{step}:{params}"
    if repeated:
        seed += ":" + os.urandom(8).hex()
    return _base58(hashlib.sha256(seed.encode()).digest())


def _child_params(action: Call, values: Dict[str, str]) -> List[str]:
    if action.items is None:
        return [fill(action.params, values)]
    if not action.params:
        return list(action.items)
    return [fill(action.params, {**values, "ITEM": item}) for item in action.items]


def run_call(
    engine: "Engine",
    run: "Run",
    node: "NodeState",
    action: Call,
    values: Dict[str, str],
    cancel: Optional["threading.Event"],
    stdout: "LogWriter",
) -> Tuple[str, int]:
    """Run the children of one calling step to their end: ("ok"|"failed"|"aborted", exit code)."""
    dag = engine.dags.get(action.dag)
    if dag is None:
        stdout.write(f"failed to find DAG {action.dag}\n")
        return "failed", 1
    for round_number in range(action.repeat):
        repeated = action.repeat > 1
        entries = [
            (sub_run_id(run.run_id, node.name, params, repeated), params) for params in _child_params(action, values)
        ]
        with engine.changed:
            if round_number:
                node.sub_runs_repeated.extend(node.sub_runs)
            node.sub_runs = [(sub_id, params, dag.dag_name) for sub_id, params in entries]
            engine.changed.notify_all()
        children: List["Run"] = []
        for sub_id, params in entries:
            gate = engine.sub_record_gate
            if gate is not None and not engine.hold(gate, cancel):
                return "aborted", 0
            children.append(_start_child(engine, run, dag, sub_id, params))
        outcome = _await_children(engine, children, cancel)
        if outcome != "ok":
            return outcome, 1 if outcome == "failed" else 0
    return "ok", 0


def _start_child(engine: "Engine", parent: "Run", dag: Any, sub_id: str, params: str) -> "Run":
    from .engine import Run

    root = parent.root
    with engine.changed:
        child = root.sub_runs.get(sub_id)
        if child is None:  # a retry of the root runs the same child again: a new attempt of it
            resolved = resolve_params(params, dag.params, engine.version, engine.env)
            child = Run(dag, dag.dag_name, sub_id, resolved, [], queued=False)
            child.root, child.parent = root, parent
            root.sub_runs[sub_id] = child
        attempt = engine._new_attempt(child, "manual" if not child.attempts else "retry", auto_retry_count=0)
        engine._begin(child, attempt)
        return child


def _await_children(engine: "Engine", children: List["Run"], cancel: Optional["threading.Event"]) -> str:
    with engine.changed:
        while not all(child.attempt.finished for child in children):
            if cancel is not None and cancel.is_set():
                for child in children:
                    if not child.attempt.finished:
                        child.attempt.canceled = True
                        child.attempt.cancel.set()
            engine.changed.wait(0.1)
        if cancel is not None and cancel.is_set():
            return "aborted"
        if any(child.status in (2, 3, 8) for child in children):
            return "failed"
        return "ok"


# -- the API ----------------------------------------------------------------------


class SubRunAPI:
    def __init__(self, api: "DaguAPI"):
        self.api = api
        self.v = api.v
        self.engine = api.engine

    def add_routes(self, add: Callable[..., None], prefix: str) -> None:
        run = "/dag-runs/{name}/{run_id}"
        if self.v.at_least(1, 24, 0):
            add("GET", prefix, run + "/sub-dag-runs", self.list)
            base = run + "/sub-dag-runs/{sub}"
        else:
            base = run + "/children/{sub}"
        add("GET", prefix, base, self.details)
        add("GET", prefix, base + "/log", self.run_log)
        add("GET", prefix, base + "/steps/{step}/log", self.step_log)
        if self.v.has_download:
            add("GET", prefix, base + "/steps/{step}/log/download", self.step_log_download)

    def _sub(self, request: "Request") -> Tuple[Optional["Run"], Optional[Reply]]:
        name, run_id, sub = request.params["name"], request.params["run_id"], request.params["sub"]
        root = self.engine.find(name, run_id)
        child = root.sub_runs.get(sub) if root is not None else None
        if child is None:
            return None, Reply.error(404, "not_found", f"sub dag-run ID {sub} not found for DAG {name}")
        return child, None

    def details(self, request: "Request") -> Reply:
        from . import render

        with self.engine.lock:
            child, error = self._sub(request)
            if error is not None:
                return error
            assert child is not None
            return Reply.json(200, {"dagRunDetails": render.run_details(self.v, child)})

    def run_log(self, request: "Request") -> Reply:
        with self.engine.lock:
            child, error = self._sub(request)
            if error is not None:
                return error
            assert child is not None
            path = child.attempt.log_file
        try:
            return Reply.json(200, self.api._read(path, request).to_json())
        except (FileNotFoundError, ValueError):
            return self.api._generic_500()

    def _node_path(self, request: "Request") -> Tuple[str, Optional[Reply]]:
        with self.engine.lock:
            child, error = self._sub(request)
            if error is not None:
                return "", error
            assert child is not None
            step = request.params["step"]
            node = child.attempt.node(step)
            if node is None:
                return "", Reply.error(404, "not_found", f"step {step} not found in DAG {request.params['name']}")
            stream = request.arg("stream")
            if stream is None:
                return "", Reply.empty(500)  # *request.Params.Stream on a nil pointer
            return (node.stderr if stream == "stderr" else node.stdout), None

    def step_log(self, request: "Request") -> Reply:
        from .logs import LineTooLong

        path, error = self._node_path(request)
        if error is not None:
            return error
        try:
            result = self.api._read(path, request)
        except FileNotFoundError:
            if self.v.log_not_found_is_404:
                return Reply.error(404, "not_found", f"log file not found for step {request.params['step']}")
            return self.api._generic_500()
        except LineTooLong:
            return self.api._generic_500()
        return Reply.json(200, result.to_json())

    def step_log_download(self, request: "Request") -> Reply:
        path, error = self._node_path(request)
        if error is not None:
            return error
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            return Reply.error(404, "not_found", f"log file not found for step {request.params['step']}")
        return Reply(200, data, [("Content-Type", "text/plain")])

    def list(self, request: "Request") -> Reply:
        """GetSubDAGRuns: the children of the root's nodes, or of sub-run parentSubDAGRunId."""
        name, run_id = request.params["name"], request.params["run_id"]
        parent_id = request.arg("parentSubDAGRunId") if self.v.at_least(1, 26, 7) else None
        with self.engine.lock:
            root = self.engine.find(name, run_id)
            if root is None:
                return Reply.error(404, "not_found", f"dag-run ID {run_id} not found for DAG {name}")
            parent = root
            if parent_id:
                found = root.sub_runs.get(parent_id)
                if found is None:
                    return Reply.error(
                        404, "not_found", f"sub dag-run ID {parent_id} not found for root DAG {name}/{run_id}"
                    )
                parent = found
            items: List[Dict[str, Any]] = []
            for node in parent.attempt.nodes.values():
                for sub_id, params, dag_name in node.sub_runs + node.sub_runs_repeated:
                    child = root.sub_runs.get(sub_id)
                    if child is None:
                        continue  # no record yet: skipped, not an error
                    item: Dict[str, Any] = {
                        "dagRunId": sub_id,
                        "status": child.status,
                        "statusLabel": status_label(self.v, child.status),
                        "startedAt": child.attempt.started_at,
                        "finishedAt": child.attempt.finished_at,
                    }
                    if params:
                        item["params"] = params
                    if dag_name and self.v.at_least(2, 0, 0):
                        item["dagName"] = dag_name
                    items.append(item)
            return Reply.json(200, {"subRuns": items})
