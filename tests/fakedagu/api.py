"""Routing and handlers: what each endpoint answers, per version (API.md §2–§11).

Only request bodies, query parsing and status/label rules live here; run state is the
engine's and JSON shapes are render.py's.
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, unquote

from . import render
from .dags import Dag
from .definitions import Definitions
from .engine import Engine, Run, rfc3339, uuid7
from .lifecycle import Lifecycle
from .logs import LineTooLong, read_log_lines
from .params import missing_required, resolve_params, start_refusal
from .subruns import SubRunAPI
from .transport import Incoming, Reply
from .versions import ServerVersion, node_status_label, status_label

RUN_ID_RE = re.compile(r"^[-a-zA-Z0-9_]+$")
DAG_FILE_RE = re.compile(r"^[-a-zA-Z0-9_.]+$")
DAG_NAME_RE = re.compile(r"^[-a-zA-Z0-9_.]+$")
GENERIC_500 = ("internal_error", "An unexpected error occurred")


class BadBody(Exception):
    """The generated strict handler failed to decode the body: a recovered panic, 500 empty."""


class BadQuery(Exception):
    """Invalid query parameter syntax: the wrapper's plain-text 400."""


@dataclass
class Request:
    method: str
    path: str  # below the base path
    query: Dict[str, List[str]]
    headers: Dict[str, str]
    body: bytes
    params: Dict[str, str]

    def arg(self, name: str) -> Optional[str]:
        values = self.query.get(name)
        return values[0] if values else None

    def int_arg(self, name: str) -> int:
        value = self.arg(name)
        if value is None or value == "":
            return 0
        try:
            return int(value)
        except ValueError:
            raise BadQuery(  # noqa: B904 - the fake answers as Dagu does; the cause is not part of it
                f"Invalid format for parameter {name}: error binding string parameter: "
                f'strconv.ParseInt: parsing "{value}": invalid syntax'
            )


_BODY_TYPES = {
    "params": str,
    "dagRunId": str,
    "dagName": str,
    "queue": str,
    "stepName": str,
    "reason": str,
    "singleton": bool,
    "labels": list,
    "tags": list,
    "inputs": dict,
    "spec": str,
    "name": str,
}


def decode_body(raw: bytes) -> Dict[str, Any]:
    """json.NewDecoder(r.Body).Decode(&body) into a struct: first value only, keys
    matched case-insensitively, null = zero struct, wrong types are errors."""
    text = raw.decode("utf-8", errors="replace").lstrip(" \t\r\n")
    try:
        value, _ = json.JSONDecoder().raw_decode(text)
    except ValueError:
        raise BadBody("can't decode JSON body") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadBody("can't decode JSON body")
    fields: Dict[str, Any] = {}
    for key, item in value.items():
        for name, kind in _BODY_TYPES.items():
            if key == name or (key.lower() == name.lower() and name not in value):
                if item is None:
                    break
                if kind is bool and not isinstance(item, bool):
                    raise BadBody("can't decode JSON body")
                if kind is str and not isinstance(item, str):
                    raise BadBody("can't decode JSON body")
                if kind is list and not (isinstance(item, list) and all(isinstance(i, str) for i in item)):
                    raise BadBody("can't decode JSON body")
                if kind is dict and not (isinstance(item, dict) and all(isinstance(i, str) for i in item.values())):
                    raise BadBody("can't decode JSON body")
                fields[name] = item
                break
    return fields


@dataclass
class Route:
    method: str
    segments: Tuple[str, ...]
    handler: Callable[..., Reply]
    public: bool = False
    body: bool = False  # the strict handler decodes a JSON body before the handler runs

    def match(self, parts: List[str]) -> Optional[Dict[str, str]]:
        if len(parts) != len(self.segments):
            return None
        params: Dict[str, str] = {}
        for pattern, part in zip(self.segments, parts):
            if pattern.startswith("{"):
                if not part:
                    return None
                params[pattern[1:-1]] = unquote(part)
            elif pattern != part:
                return None
        return params


class Config:
    """Knobs shared with FakeDagu (mutable at runtime)."""

    def __init__(self, start_timeout: float, start_latency: float, queue_delay: Optional[float]):
        self.start_timeout = start_timeout
        self.start_latency = start_latency
        self.queue_delay = queue_delay


class DaguAPI:
    def __init__(
        self,
        version: ServerVersion,
        engine: Engine,
        dags: Dict[str, Dag],
        config: Config,
        auth: Optional[Tuple[str, ...]],
        started_at: float,
    ):
        self.v = version
        self.engine = engine
        self.dags = dags
        self.config = config
        self.auth = auth
        self.started_at = started_at
        self.lifecycle = Lifecycle(self)  # labels, queues, inline specs, artifacts (issue 6)
        self.definitions = Definitions(self)  # the DAG files: GET/PUT spec, POST, DELETE
        self.sub_runs = SubRunAPI(self)  # sub-DAG runs (issue 13)
        self.routes = self._routes()

    # -- routing -----------------------------------------------------------------
    def _routes(self) -> List[Route]:
        v = self.v
        routes: List[Route] = []

        def add(method: str, prefix: str, pattern: str, handler: Callable[..., Reply], **kw: Any) -> None:
            segments = tuple(s for s in (prefix + pattern).split("/") if s)
            routes.append(Route(method, segments, handler, **kw))

        if v.flavor == "legacy":
            add("GET", "/api/v1", "/health", self.health)
            add("GET", "/api/v1", "/dags", self.legacy_dags)
            return routes
        api = v.api_prefix
        add("GET", api, "/health", self.health, public=v.health_is_public)
        if v.flavor == "v1x":  # the legacy action API is still served beside /api/v2
            add("GET", "/api/v1", "/health", self.health, public=v.health_is_public)
            add("GET", "/api/v1", "/dags", self.legacy_dags)
        add("GET", api, "/dags", self.list_dags)
        add("GET", api, "/dags/{file}", self.get_dag)
        if v.has_validate:
            add("POST", api, "/dags/validate", self.validate_dag, body=True)
        self.definitions.add_routes(add, api)
        add("POST", api, "/dags/{file}/start", self.start, body=True)
        add("POST", api, "/dags/{file}/enqueue", self.enqueue, body=True)
        add("GET", api, "/dags/{file}/dag-runs/{run_id}", self.get_dag_run_by_file)
        add("GET", api, "/dag-runs", self.lifecycle.list_runs)
        add("GET", api, "/dag-runs/{name}", self.list_runs_by_name)
        run = "/dag-runs/{name}/{run_id}"
        add("GET", api, run, self.get_run)
        add("GET", api, run + "/log", self.run_log)
        add("GET", api, run + "/steps/{step}/log", self.step_log)
        add("POST", api, run + "/stop", self.stop)
        add("POST", api, run + "/retry", self.retry, body=True)
        add("GET", api, run + "/dequeue", self.dequeue)
        if v.has_download:
            add("GET", api, run + "/steps/{step}/log/download", self.step_log_download)
        if v.has_approval:
            add("POST", api, run + "/steps/{step}/approve", self.approve, body=True)
            add("POST", api, run + "/steps/{step}/reject", self.reject, body=True)
        if v.has_outputs:
            add("GET", api, run + "/outputs", self.outputs)
        self.lifecycle.add_routes(add, api)
        self.sub_runs.add_routes(add, api)
        return routes

    def dispatch(self, incoming: Incoming, path: str, query_string: str) -> Reply:
        parts = path.split("/")[1:]
        for route in self.routes:
            params = route.match(parts)
            if params is None or route.method != incoming.method:
                continue
            if self.auth and not route.public and not self._authorized(incoming.headers):
                return self._unauthorized()
            request = Request(
                incoming.method,
                path,
                parse_qs(query_string, keep_blank_values=True),
                incoming.headers,
                incoming.body,
                params,
            )
            try:
                if "file" in params and self.v.at_least(2, 3, 1) and not DAG_FILE_RE.match(params["file"]):
                    return Reply.error(
                        400,
                        "bad_request",
                        "name must only contain alphanumeric characters, dashes, dots, and underscores",
                    )
                if route.body:
                    return route.handler(request, decode_body(incoming.body))
                return route.handler(request)
            except BadBody:
                return Reply.empty(500)
            except BadQuery as exc:
                return Reply.text(400, str(exc) + "\n")
        # No API route: chi's catch-all serves the web UI for GET, anything else is 405.
        if incoming.method == "GET":
            return Reply.html()
        return Reply.empty(405)

    def _authorized(self, headers: Dict[str, str]) -> bool:
        assert self.auth is not None
        given = headers.get("authorization", "")
        if self.auth[0] == "basic":
            expected = base64.b64encode(f"{self.auth[1]}:{self.auth[2]}".encode()).decode()
            return given.startswith("Basic ") and given[6:].strip() == expected
        return given == f"Bearer {self.auth[1]}"

    def _unauthorized(self) -> Reply:
        assert self.auth is not None
        scheme = "Basic" if self.auth[0] == "basic" else "Bearer"
        return Reply(401, b"", [("WWW-Authenticate", f'{scheme} realm="restricted"')])

    # -- helpers -----------------------------------------------------------------
    def _generic_500(self) -> Reply:
        return Reply.error(500, *GENERIC_500)

    def _dag_by_file(self, file: str) -> Optional[Dag]:
        return self.dags.get(file)

    def _run_not_found(self, name: str, run_id: str) -> Reply:
        return Reply.error(404, "not_found", f"dag-run ID {run_id} not found for DAG {name}")

    def _lookup(self, name: str, run_id: str, allow_latest: bool) -> Tuple[Optional[Run], Optional[Reply]]:
        if run_id == "latest" and allow_latest and self.v.has_latest_alias:
            run = self.engine.latest(name)
            if run is None:
                return None, Reply.error(404, "not_found", f"no dag-runs found for DAG {name}")
            return run, None
        run = self.engine.find(name, run_id)
        if run is None:
            return None, self._run_not_found(name, run_id)
        return run, None

    # -- health and DAGs ------------------------------------------------------------
    def health(self, request: Request) -> Reply:
        return Reply.json(
            200,
            {
                "status": "healthy",
                "version": self.v.raw,
                "uptime": int(time.monotonic() - self.started_at),
                "timestamp": rfc3339(),
            },
        )

    def legacy_dags(self, request: Request) -> Reply:
        items = [
            {
                "File": f"{dag.file}.yaml",
                "Dir": "/dags",
                "DAG": {"Name": dag.dag_name},
                "Suspended": False,
                "Error": "",
                "ErrorT": None,
            }
            for dag in self.dags.values()
        ]
        return Reply.json(200, {"DAGs": items, "Errors": [], "HasError": False, "PageCount": 1})

    def list_dags(self, request: Request) -> Reply:
        wanted = request.arg("name") or ""
        items = []
        for dag in self.dags.values():
            if wanted and wanted not in dag.dag_name and wanted not in dag.file:
                continue
            latest = self.engine.latest(dag.dag_name)
            items.append(
                {
                    "fileName": dag.file,
                    "dag": render.dag_summary(self.v, dag),
                    "latestDAGRun": render.run_summary(self.v, latest) if latest else self._initial_summary(dag),
                    "suspended": dag.suspended,
                    "errors": [],
                }
            )
        pagination = {"totalRecords": len(items), "currentPage": 1, "totalPages": 1, "nextPage": 0, "prevPage": 0}
        return Reply.json(200, {"dags": items, "errors": [], "pagination": pagination})

    def _initial_summary(self, dag: Dag) -> Dict[str, Any]:
        body = render.initial_details(self.v, dag)
        for key in ("nodes", "preconditions", "onExit", "onSuccess", "onFailure", "onAbort", "onCancel"):
            body.pop(key, None)
        if self.v.at_least(2, 1, 0):
            for key in ("rootDAGRunName", "rootDAGRunId", "log"):
                body.pop(key, None)
        return body

    def get_dag(self, request: Request) -> Reply:
        file = request.params["file"]
        dag = self._dag_by_file(file)
        if dag is None:
            if self.v.flavor == "v2x":
                message = (
                    f"failed to load DAG {file}: failed to locate DAG {file}: DAG {file} not found: file does not exist"
                )
            else:
                message = f"DAG {file} not found"
            return Reply.error(404, "not_found", message)
        latest = self.engine.latest(dag.dag_name)
        return Reply.json(
            200,
            {
                "dag": render.dag_details(self.v, dag),
                "latestDAGRun": render.run_details(self.v, latest) if latest else render.initial_details(self.v, dag),
                "suspended": dag.suspended,
                # 1.x (checked on 1.30.3): nil slices, so null.
                "localDags": [] if self.v.at_least(2, 0, 0) else None,
                "errors": [] if self.v.at_least(2, 0, 0) else None,
            },
        )

    def validate_dag(self, request: Request, body: Dict[str, Any]) -> Reply:
        """ValidateDAGSpec: nothing is saved; errors as strings, valid when there are none."""
        errors = validate_spec(body.get("spec") or "")
        return Reply.json(200, {"valid": not errors, "errors": errors})

    # -- starting runs ------------------------------------------------------------
    def start(self, request: Request, body: Dict[str, Any]) -> Reply:
        return self._start(request, body, enqueue=False)

    def enqueue(self, request: Request, body: Dict[str, Any]) -> Reply:
        return self._start(request, body, enqueue=True)

    def _start(self, request: Request, body: Dict[str, Any], enqueue: bool) -> Reply:
        v = self.v
        file = request.params["file"]
        dag = self._dag_by_file(file)
        if dag is None:
            return Reply.error(404, "not_found", f"DAG {file} not found")
        run_id = body.get("dagRunId") or ""
        raw_params = body.get("params") or ""
        singleton = bool(body.get("singleton"))
        if enqueue and not v.at_least(1, 26, 4):
            singleton = False
        if not enqueue and not v.at_least(1, 21, 0):
            singleton = False
        if run_id and v.validates_run_id:
            problem = _run_id_problem(run_id)
            if problem:
                return Reply.error(400, "bad_request", problem)
        name = dag.dag_name
        override = (body.get("dagName") or "").strip() if v.at_least(1, 24, 0) else ""
        if override:
            if not DAG_NAME_RE.match(override) or len(override) > 40:
                return Reply.error(400, "bad_request", f"invalid DAG name: {override}")
            name = override
        if not run_id:
            run_id = uuid7()
        resolved = resolve_params(raw_params, dag.params, v, self.engine.env)
        refusal = start_refusal(v, resolved.received, dag.params, dag.param_defs)
        if refusal:
            return Reply.error(400, "bad_request", refusal)
        missing = missing_required(dag.required_params, dict(resolved.effective))
        subprocess_fails = bool(missing) or (not v.validates_run_id and _run_id_problem(run_id) is not None)
        if self.config.start_latency:
            time.sleep(self.config.start_latency)  # spawning `dagu start` and its first status write
        with self.engine.lock:
            conflict = self._singleton_conflict(name, singleton, enqueue)
            if conflict is not None:
                return conflict
            if self.engine.find(name, run_id) is not None:
                return Reply.error(409, "already_exists", f"dag-run ID {run_id} already exists for DAG {name}")
            labels, refusal = self.lifecycle.start_labels(dag, body)
            if refusal is not None:
                return refusal
            if missing and v.flavor == "v2x":
                return Reply.error(400, "bad_request", f"missing required parameter: {', '.join(missing)}")
            if not subprocess_fails:
                self.engine.create_run(dag, name, run_id, resolved, labels, enqueue, self.config.queue_delay)
                return Reply.json(200, {"dagRunId": run_id})
        # v1.x: `dagu start` exits before writing a record; the handler times out (API.md §3.5).
        time.sleep(self.config.start_timeout)
        return self._generic_500()

    def _singleton_conflict(self, name: str, singleton: bool, enqueue: bool) -> Optional[Reply]:
        v = self.v
        alive = self.engine.alive_runs(name)
        if not enqueue and v.at_least(1, 22, 0) and not v.at_least(1, 27, 0):
            # maxActiveRuns defaults to 1: an implicit singleton on these versions.
            if alive:
                return Reply.error(409, "max_run_reached", f"DAG {name} is already running, cannot start")
            return None
        if not singleton:
            return None
        if not enqueue and not v.at_least(1, 22, 0):
            if alive:
                return Reply.error(
                    409, "already_running", f"DAG {name} is already running, cannot start in singleton mode"
                )
            return None
        if alive:
            return Reply.error(409, "already_exists", f"DAG {name} is already running (singleton mode)")
        if enqueue and self.engine.queued_runs(name):
            return Reply.error(409, "already_exists", f"DAG {name} is already in queue (singleton mode)")
        return None

    # -- reading runs -------------------------------------------------------------
    def list_runs_by_name(self, request: Request) -> Reply:
        """listDAGRunsByName: the /dag-runs list with the name taken from the path."""
        request.query = {**request.query, "name": [request.params["name"]]}
        return self.lifecycle.list_runs(request)

    def get_run(self, request: Request) -> Reply:
        run, error = self._lookup(request.params["name"], request.params["run_id"], allow_latest=True)
        if error is not None:
            return error
        assert run is not None
        with self.engine.lock:
            return Reply.json(200, {"dagRunDetails": render.run_details(self.v, run)})

    def get_dag_run_by_file(self, request: Request) -> Reply:
        file, run_id = request.params["file"], request.params["run_id"]
        dag = self._dag_by_file(file)
        if dag is None:
            return Reply.error(404, "not_found", f"DAG {file} not found")
        run = self.engine.latest(dag.dag_name) if run_id == "latest" else self.engine.find(dag.dag_name, run_id)
        if run is None:
            if self.v.flavor == "v1x":  # handleError keeps the code, loses the status
                return Reply.error(500, "not_found", "dag-run ID not found")
            return self._run_not_found(dag.dag_name, run_id)
        with self.engine.lock:
            return Reply.json(200, {"dagRun": render.run_details(self.v, run)})

    # -- logs ----------------------------------------------------------------------
    def _read(self, path: str, request: Request) -> Any:
        return read_log_lines(
            path,
            head=request.int_arg("head"),
            tail=request.int_arg("tail"),
            offset=request.int_arg("offset"),
            limit=request.int_arg("limit"),
            too_long_as_content_for_range=self.v.at_least(1, 26, 0),
            too_long_as_content_for_head_tail=self.v.at_least(1, 18, 0),
        )

    def _step_node(self, request: Request) -> Tuple[Any, Optional[Reply]]:
        """The named step of the run (latest not allowed on log endpoints), or the error reply."""
        name, run_id, step = request.params["name"], request.params["run_id"], request.params["step"]
        run, error = self._lookup(name, run_id, allow_latest=False)
        if error is not None:
            return None, error
        assert run is not None
        node = run.attempt.node(step)
        if node is None:
            return None, Reply.error(404, "not_found", f"step {step} not found in DAG {name}")
        return node, None

    def step_log(self, request: Request) -> Reply:
        step = request.params["step"]
        with self.engine.lock:
            node, error = self._step_node(request)
            if error is not None:
                return error
            stream = request.arg("stream")
            if stream is None:
                return Reply.empty(500)  # *request.Params.Stream on a nil pointer
            path = node.stderr if stream == "stderr" else node.stdout
        try:
            result = self._read(path, request)
        except FileNotFoundError:
            if self.v.log_not_found_is_404:
                return Reply.error(404, "not_found", f"log file not found for step {step}")
            return self._generic_500()
        except LineTooLong:
            return self._generic_500()
        return Reply.json(200, result.to_json())

    def step_log_download(self, request: Request) -> Reply:
        name, run_id, step = request.params["name"], request.params["run_id"], request.params["step"]
        with self.engine.lock:
            node, error = self._step_node(request)
            if error is not None:
                return error
            stream = "stderr" if request.arg("stream") == "stderr" else "stdout"
            path = node.stderr if stream == "stderr" else node.stdout
        if not path:
            return self._generic_500()  # os.ReadFile(filepath.Clean("")) reads "." -> not ErrNotExist
        try:
            with open(path, "rb") as handle:
                content = handle.read()
        except FileNotFoundError:
            return Reply.error(404, "not_found", f"log file not found for step {step}")
        filename = "-".join(_sanitize(p) for p in (name, run_id, step, stream)) + ".log"
        return Reply(
            200,
            content,
            [("Content-Type", "text/plain"), ("Content-Disposition", f'attachment; filename="{filename}"')],
        )

    def run_log(self, request: Request) -> Reply:
        run, error = self._lookup(request.params["name"], request.params["run_id"], allow_latest=False)
        if error is not None:
            return error
        assert run is not None
        try:
            result = self._read(run.attempt.log_file, request)
        except FileNotFoundError:
            if self.v.log_not_found_is_404:
                return Reply.error(404, "not_found", f"log file not found for dag-run {run.run_id}")
            return self._generic_500()
        except LineTooLong:
            return self._generic_500()
        return Reply.json(200, result.to_json())

    # -- controlling runs ----------------------------------------------------------
    def stop(self, request: Request) -> Reply:
        name, run_id = request.params["name"], request.params["run_id"]
        run = self.engine.find(name, run_id)
        if run is None:
            return self._run_not_found(name, run_id)
        with self.engine.lock:
            status = run.status
            if status == 2 and self.v.has_auto_retry:
                if not run.retry_pending:
                    return Reply.error(
                        400, "bad_request", "failed DAG run is not pending auto-retry and cannot be canceled"
                    )
                self.engine.stop(run)
                return Reply.empty(200)
            if status != 1:
                return Reply.error(400, "not_running", "DAG is not running")
            self.engine.stop(run)
        return Reply.empty(200)

    def retry(self, request: Request, body: Dict[str, Any]) -> Reply:
        name, run_id = request.params["name"], request.params["run_id"]
        body_id = body.get("dagRunId") or ""
        if self.v.flavor == "v2x":
            if body_id and body_id != run_id:
                return Reply.error(400, "bad_request", "dagRunId in the request body must match the path parameter")
            run, error = self._lookup(name, run_id, allow_latest=True)
            if error is not None:
                return error
            assert run is not None
            step = body.get("stepName") or ""
            if step and run.attempt.node(step) is None:
                return Reply.error(404, "not_found", f"step {step} not found in DAG {name}")
            self.engine.retry(run, step)  # an active run: the subprocess refuses, the handler still says 200
            return Reply.empty(200)
        run = self.engine.find(name, run_id)
        if run is None:
            return self._run_not_found(name, run_id)
        # v1.x spawns `dagu retry --run-id=<body id>`: the path id is not used for it (API.md §5.2).
        target = self.engine.find(name, body_id) if body_id else None
        step = body.get("stepName") or ""
        if target is not None and (not step or target.attempt.node(step) is not None):
            self.engine.retry(target, step)  # an unknown step: the subprocess fails, silently
        return Reply.empty(200)

    def dequeue(self, request: Request) -> Reply:
        name, run_id = request.params["name"], request.params["run_id"]
        run = self.engine.find(name, run_id)
        if run is None:
            return self._run_not_found(name, run_id)
        with self.engine.lock:
            if run.status != 5:
                return Reply.error(
                    400, "bad_request", f"DAGRun status is not queued: {status_label(self.v, run.status)}"
                )
            self.engine.dequeue(run)
        return Reply.empty(200)

    def _decision(self, request: Request, decision: str) -> Reply:
        name, run_id, step = request.params["name"], request.params["run_id"], request.params["step"]
        run = self.engine.find(name, run_id)
        if run is None:
            return self._run_not_found(name, run_id)
        with self.engine.lock:
            node = run.attempt.nodes.get(step)
            if node is None:
                return Reply.error(404, "not_found", f"step {step} not found in DAG {name}")
            if node.status != 7:
                label = node_status_label(self.v, node.status)
                return Reply.error(400, "bad_request", f"step {step} is not waiting for approval (status: {label})")
            self.engine.decide(run, step, decision)
        answer: Dict[str, Any] = {"dagRunId": run_id, "stepName": step}
        if decision == "approve":
            answer["resumed"] = True
        return Reply.json(200, answer)

    def approve(self, request: Request, body: Dict[str, Any]) -> Reply:
        return self._decision(request, "approve")

    def reject(self, request: Request, body: Dict[str, Any]) -> Reply:
        return self._decision(request, "reject")

    def outputs(self, request: Request) -> Reply:
        run, error = self._lookup(request.params["name"], request.params["run_id"], allow_latest=True)
        if error is not None:
            return error
        assert run is not None
        with self.engine.lock:
            return Reply.json(200, render.outputs_json(self.v, run))


def validate_spec(text: str) -> List[str]:
    """The loader's complaints the fake can tell: YAML, a mapping, steps, step names."""
    import yaml

    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [f"failed to unmarshal YAML: {exc}"]
    if not isinstance(spec, dict):
        return ["invalid DAG definition: expected a mapping"]
    steps = spec.get("steps")
    if not steps:
        return ["at least one step must be specified"]
    errors = []
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, dict) and not (
            step.get("command") or step.get("script") or step.get("run") or step.get("call")
        ):
            errors.append(f"step {step.get('name') or '?'}: either command, script or call must be specified")
    return errors


def _run_id_problem(run_id: str) -> Optional[str]:
    """exec.ValidateDAGRunID's messages."""
    if not RUN_ID_RE.match(run_id):
        return "dag-run ID must only contain alphanumeric characters, dashes, and underscores"
    if len(run_id) > 64:
        return "dag-run ID length must be less than 64 characters"
    return None


def _sanitize(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)
