"""Run-lifecycle endpoints of issue 6: run labels and the `/dag-runs` list filters, queues
with positions, inline-spec runs (`POST /dag-runs`) and artifacts.

Facts from Dagu's Go code (dagucloud/dagu, at the cited tags):

* Labels (`tags` on the start body from 2.2.0, `labels` from 2.6.0): parsed by
  `core.NewLabels` (key and value lower-cased, trimmed) and validated by
  `core.ValidateLabels` before anything starts (`extractLabelsParam` in dags.go): a key
  matches `^[a-zA-Z0-9][a-zA-Z0-9_.-]*$` (<= 63), a value `^[a-zA-Z0-9][a-zA-Z0-9_./-]*$`
  (<= 255), otherwise 400 `invalid labels: ...` (`invalid tags: ...` before 2.6). So a
  URL value (`https://...`) is refused. The run's labels are the DAG's labels followed by
  the body's (`cmd/start.go parseAndAppendLabels`; runstatus.go `Labels: dag.Labels`).
* `GET /dag-runs`: `name` is exact before 2.4.1 (a run directory) and a case-insensitive
  substring from 2.4.1 (pagination.go `containsFold`); `dagRunId` a substring; `status`
  a single integer before 2.4.2 and a repeated parameter (`StatusList`) from 2.4.2;
  `tags` (2.0.0+) / `labels` (2.6.0+, both set: 400) comma-separated filters, lower-cased,
  ANDed, each `key`, `key=value`, `!key` or a glob with `*`/`?` (core/label.go
  `ParseLabelFilter`); `limit` from 2.4.1, clamped to 1..500, with `nextCursor`.
* Queues: `/queues` from 1.22.0. 1.x lists each queue's `running` and `queued` runs; 2.x
  gives counts and `running`, and the queued runs are paged at `/queues/{name}/items`
  (`type`, `page`, `perPage` -> `{items, pagination}` in 2.0.0-2.4.1; `limit`, `cursor`
  -> `{items, nextCursor}` from 2.4.2, where `/queues/{name}` also appears). A DAG
  without a `queue:` is its own "dag-based" queue named after the DAG, maxConcurrency 1.
* `POST /dag-runs` (ExecuteDAGRunFromSpec) from 1.23.0, and `POST /dag-runs/enqueue`
  (EnqueueDAGRunFromSpec, the same body, the run starts queued) from 1.24.0: `spec` required (400 `spec is
  required`), a bad spec 400, an existing id 409, `singleton` 409, `tags` from 2.2.0 and
  `labels` from 2.6.0; 200 `{"dagRunId"}`. The fake reads the YAML with PyYAML (as
  /dags/validate does), and runs each step's `command` as a scripted step: `echo TEXT`
  prints TEXT (`$VAR`/`${VAR}` filled from the params), any other command prints its own
  command line. Steps form a chain unless the spec says `type: graph` or a step has
  `depends`.
* Artifacts (2.5.0+): only when the DAG enables them (the fake: `Dag(artifacts={...})`);
  written before the terminal status, so `artifactsAvailable` turns true with it. The
  list is `{"items": [ArtifactTreeNode]}` (directories first, then by name; a directory
  has `children` only with `recursive=true` and when not empty, a file has `size`).
  Download is `application/octet-stream` with Content-Disposition and Content-Length.
  No artifact directory, unknown run: 404 `artifact directory not found for dag-run X`;
  a path that escapes the directory (`..`, empty) or names no file: 404 `artifact file
  not found for dag-run X` (`ResolveExistingPathWithinBase`); no `path`: 400 text (the
  generated wrapper). The spec's pattern for `path` is not enforced (StrictValidation is
  off), so nothing else is a 400.
"""

from __future__ import annotations

import base64
import os
import re
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, Union

from . import render
from .dags import Dag, Step, out
from .engine import Run, uuid7
from .params import missing_required, resolve_params, start_refusal
from .transport import Reply

if TYPE_CHECKING:  # pragma: no cover
    from .api import DaguAPI, Request

LABEL_KEY_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
LABEL_VALUE_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_./-]*$")
DAG_NAME_RE = re.compile(r"^[a-zA-Z0-9_.-]+$")

ArtifactContent = Union[str, bytes]


# -- labels ------------------------------------------------------------------------


def parse_label(text: str) -> str:
    """core.ParseLabel, back to its string: trimmed, lower-cased key and value."""
    key, sep, value = text.strip().partition("=")
    key = key.strip().lower()
    return f"{key}={value.strip().lower()}" if sep and value.strip() else key


def label_problem(label: str, word: str) -> Optional[str]:
    """core.ValidateLabel (ValidateTag before 2.6) on a parsed label."""
    key, _, value = label.partition("=")
    if not key:
        return f"{word} key cannot be empty"
    if len(key) > 63:
        return f"{word} key exceeds max length 63"
    if not LABEL_KEY_RE.match(key):
        return f"{word} key {key!r} contains invalid characters (allowed: a-z, A-Z, 0-9, -, _, .)".replace("'", '"')
    if len(value) > 255:
        return f"{word} value exceeds max length 255"
    if value and not LABEL_VALUE_RE.match(value):
        return f'{word} value "{value}" contains invalid characters (allowed: a-z, A-Z, 0-9, -, _, ., /)'
    return None


def _glob(pattern: str, text: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.S) is not None


def label_matches(labels: List[str], wanted: str) -> bool:
    """One LabelFilter (key, key=value, !key, globs) against a run's labels."""
    pairs = [(label.partition("=")[0], label.partition("=")[2]) for label in labels]
    wanted = wanted.strip()
    if wanted.startswith("!"):
        key = wanted[1:].strip().lower()
        return all(k != key for k, _ in pairs)
    key, sep, value = wanted.partition("=")
    key, value = key.strip().lower(), value.strip().lower()
    if "*" in key or "?" in key or "*" in value or "?" in value:
        return any(_glob(key, k) and (not value or _glob(value, v)) for k, v in pairs)
    if sep:
        return (key, value) in pairs
    return any(k == key for k, _ in pairs)


# -- inline specs -------------------------------------------------------------------


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def _command_text(command: Any) -> str:
    if isinstance(command, list):
        return " ".join(str(c) for c in command)
    return str(command or "")


class InlineCommand(Step):
    """A step of an inline spec: prints what `echo` would, or the command line."""


def _spec_params(value: Any) -> Dict[str, str]:
    params: Dict[str, str] = {}
    items = value if isinstance(value, list) else [value] if value else []
    if isinstance(value, dict):
        items = [{k: v} for k, v in value.items()]
    if isinstance(value, str):
        items = value.split()
    for item in items:
        if isinstance(item, dict):
            for key, val in item.items():
                params[str(key)] = "" if val is None else str(val)
        elif isinstance(item, str) and "=" in item:
            key, _, val = item.partition("=")
            params[key] = val.strip('"')
    return params


def dag_from_spec(text: str, name_override: str, default_name: str = "inline") -> Tuple[Optional[Dag], Optional[str]]:
    """(Dag, None) or (None, the loader's complaint). The name: the override, the spec's
    `name:`, else `default_name` (a stored DAG's file name)."""
    import yaml  # the fake's one non-stdlib import, as for /dags/validate

    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return None, f"failed to unmarshal YAML: {exc}".replace("\n", " ")
    if not isinstance(spec, dict):
        return None, "invalid DAG definition: expected a mapping"
    steps = spec.get("steps")
    if not steps or not isinstance(steps, list):
        return None, "at least one step must be specified"
    name = name_override or str(spec.get("name") or default_name)
    params = _spec_params(spec.get("params"))
    chain = spec.get("type", "chain") != "graph"
    built: List[Step] = []
    for index, item in enumerate(steps):
        if isinstance(item, str):
            item = {"command": item}
        if not isinstance(item, dict):
            return None, f"invalid step definition at index {index}"
        step_name = str(item.get("name") or f"{index + 1}")
        command = _command_text(item.get("command") or item.get("script") or item.get("run") or item.get("call") or "")
        if not command:
            return None, f"step {step_name}: either command, script or call must be specified"
        depends = item.get("depends")
        if isinstance(depends, str):
            depends = [depends]
        if depends is None:
            depends = [built[-1].name] if chain and built else []
        words = command.split(None, 1)
        if words and words[0] == "echo":
            text_out = words[1] if len(words) > 1 else ""
            if len(text_out) >= 2 and text_out[0] == text_out[-1] and text_out[0] in "\"'":
                text_out = text_out[1:-1]
            text_out = _VAR.sub(lambda m: "{" + (m.group(1) or m.group(2)) + "}", text_out)
        else:
            text_out = command
        built.append(InlineCommand(step_name, [out(text_out)], depends=[str(d) for d in depends], command=command))
    labels = spec.get("labels") or spec.get("tags") or []
    if isinstance(labels, str):
        labels = [p for p in re.split(r"[,\s]+", labels) if p]
    try:
        dag = Dag(
            file=name,
            name=name,
            steps=built,
            params=params,
            labels=[parse_label(str(label)) for label in labels],
            description=str(spec.get("description") or ""),
        )
    except ValueError as exc:
        return None, str(exc)
    return dag, None


def artifacts_available(run: Run) -> bool:
    """artifactsAvailable (hasArtifactEntries): the DAG has artifacts and the run is final
    (the agent finalises them before it writes the terminal status)."""
    return bool(run.dag.artifacts) and run.status in (2, 3, 4, 6, 8)


# -- the handlers ----------------------------------------------------------------


class Lifecycle:
    """Handlers and state for labels, queues, inline specs and artifacts."""

    def __init__(self, api: "DaguAPI"):
        self.api = api
        self.v = api.v
        self.engine = api.engine
        # A listing to serve instead of the real tree (tests of a client's path checks):
        # ArtifactTreeNode dicts, or plain path strings (turned into file nodes).
        self.hostile_artifacts: Optional[List[Any]] = None
        self._artifact_lock = threading.Lock()

    # -- routing ---------------------------------------------------------------
    def add_routes(self, add: Callable[..., None], api: str) -> None:
        v = self.v
        if v.at_least(1, 22, 0):
            add("GET", api, "/queues", self.list_queues)
        if v.flavor == "v2x":
            add("GET", api, "/queues/{queue}/items", self.queue_items)
        if v.at_least(2, 4, 2):
            add("GET", api, "/queues/{queue}", self.get_queue)
        if v.at_least(1, 23, 0):
            add("POST", api, "/dag-runs", self.execute_spec, body=True)
        if v.at_least(1, 24, 0):
            add("POST", api, "/dag-runs/enqueue", self.enqueue_spec, body=True)
        if v.at_least(2, 5, 0):
            run = "/dag-runs/{name}/{run_id}"
            add("GET", api, run + "/artifacts", self.artifacts)
            add("GET", api, run + "/artifacts/download", self.artifact_download)

    # -- labels at start ---------------------------------------------------------
    def start_labels(self, dag: Dag, body: Dict[str, Any]) -> Tuple[List[str], Optional[Reply]]:
        """The run's labels (the DAG's, then the body's), or the 400 the server answers."""
        v = self.v
        if not v.at_least(2, 0, 0):
            return [], None
        labels = [parse_label(label) for label in dag.labels if label.strip()]
        if not v.at_least(2, 2, 0):
            return labels, None
        given_labels = body.get("labels") if v.at_least(2, 6, 0) else None
        given_tags = body.get("tags")
        if given_labels and given_tags:
            return [], Reply.error(400, "bad_request", "labels and deprecated tags cannot both be set")
        given = [parse_label(label) for label in (given_labels or given_tags or []) if label.strip()]
        word = "label" if v.at_least(2, 6, 0) else "tag"
        problems = [f'{word} "{label}": {p}' for label in given for p in [label_problem(label, word)] if p]
        if problems:
            return [], Reply.error(400, "bad_request", f"invalid {word}s: " + "\n".join(problems))
        return labels + given, None

    # -- GET /dag-runs -------------------------------------------------------------
    def list_runs(self, request: "Request") -> Reply:
        from .api import BadQuery

        v = self.v
        name = request.arg("name") or ""
        run_id = request.arg("dagRunId") or ""
        raw_statuses = request.query.get("status", [])
        if raw_statuses and not v.at_least(2, 4, 2) and len(raw_statuses) > 1:
            raise BadQuery("Invalid format for parameter status: multiple values for single value parameter 'status'")
        statuses: List[int] = []
        for value in raw_statuses:
            if value == "":
                continue
            try:
                statuses.append(int(value))
            except ValueError:
                raise BadQuery(  # noqa: B904 - the fake answers as Dagu does; the cause is not part of it
                    f"Invalid format for parameter status: error binding string parameter: "
                    f'strconv.ParseInt: parsing "{value}": invalid syntax'
                )
        filters: List[str] = []
        if v.at_least(2, 0, 0):
            labels_q = (request.arg("labels") or "") if v.at_least(2, 6, 0) else ""
            tags_q = request.arg("tags") or ""
            if labels_q and tags_q:
                return Reply.error(400, "bad_request", "labels and deprecated tags cannot both be set")
            for part in (labels_q or tags_q).split(","):
                part = part.strip().lower()
                if part and part not in filters:
                    filters.append(part)
        paged = v.at_least(2, 4, 1)
        limit = 0
        offset = 0
        if v.flavor == "v2x":
            limit = 100
            if paged:
                if request.arg("limit") not in (None, ""):
                    limit = min(max(request.int_arg("limit"), 1), 500)
                cursor = request.arg("cursor") or ""
                if cursor:
                    try:
                        offset = int(base64.urlsafe_b64decode(cursor.encode()).decode().split(":", 1)[1])
                    except (ValueError, IndexError, UnicodeDecodeError):
                        return Reply.error(400, "bad_request", "invalid query cursor")

        # Without fromDate or toDate, every version lists only the runs filed today (UTC):
        # filedagrun's prepareListOptions, 1.17.0 to 2.6.5.
        from_q, to_q = request.arg("fromDate") or "", request.arg("toDate") or ""
        try:
            window = (float(from_q) if from_q else None, float(to_q) if to_q else None)
        except ValueError:
            return Reply.error(400, "bad_request", "invalid fromDate or toDate")
        if window == (None, None):
            window = (self.engine.day_start(), None)

        def in_window(run: Run) -> bool:
            return (window[0] is None or run.created_wall >= window[0]) and (
                window[1] is None or run.created_wall <= window[1]
            )

        def name_ok(run: Run) -> bool:
            if not name:
                return True
            return name.lower() in run.name.lower() if paged else run.name == name

        with self.engine.lock:
            runs = [
                r
                for r in reversed(self.engine.all_runs())
                if name_ok(r)
                and in_window(r)
                and (not run_id or run_id in r.run_id)
                and (not statuses or r.status in statuses)
                and all(label_matches(r.labels, f) for f in filters)
            ]
            page = runs[offset : offset + limit] if limit else runs
            body: Dict[str, Any] = {"dagRuns": [render.run_summary(v, r) for r in page]}
            if paged and limit and offset + limit < len(runs):
                body["nextCursor"] = base64.urlsafe_b64encode(f"o:{offset + limit}".encode()).decode()
        return Reply.json(200, body)

    # -- queues ------------------------------------------------------------------
    @staticmethod
    def queue_of(run: Run) -> str:
        return run.name  # dag-based: the process group is the DAG name

    def _queues(self) -> Dict[str, Dict[str, List[Run]]]:
        queues: Dict[str, Dict[str, List[Run]]] = {}
        for run in self.engine.all_runs():  # creation order: the queue's FIFO order
            if run.status == 1:
                queues.setdefault(self.queue_of(run), {"running": [], "queued": []})["running"].append(run)
            elif run.status == 5:
                queues.setdefault(self.queue_of(run), {"running": [], "queued": []})["queued"].append(run)
        return dict(sorted(queues.items()))

    def _queue_json(self, name: str, runs: Dict[str, List[Run]]) -> Dict[str, Any]:
        v = self.v
        body: Dict[str, Any] = {"name": name, "type": "dag-based", "maxConcurrency": 1}
        running = [render.run_summary(v, r) for r in runs["running"]]
        if v.flavor == "v2x":
            body.update(runningCount=len(running), queuedCount=len(runs["queued"]), running=running)
        else:
            body.update(running=running, queued=[render.run_summary(v, r) for r in runs["queued"]])
        return body

    def list_queues(self, request: "Request") -> Reply:
        with self.engine.lock:
            queues = self._queues()
            items = [self._queue_json(name, runs) for name, runs in queues.items()]
        running = sum(len(q["running"]) for q in queues.values())
        queued = sum(len(q["queued"]) for q in queues.values())
        capacity = len(items)
        summary = {
            "totalQueues": len(items),
            "totalRunning": running,
            "totalQueued": queued,
            "totalCapacity": capacity,
            "utilizationPercentage": (running / capacity * 100.0) if capacity else 0,
        }
        return Reply.json(200, {"queues": items, "summary": summary})

    def get_queue(self, request: "Request") -> Reply:
        name = request.params["queue"]
        with self.engine.lock:
            runs = self._queues().get(name)
            if runs is None:
                return Reply.error(404, "not_found", f'Queue "{name}" not found')
            return Reply.json(200, self._queue_json(name, runs))

    def queue_items(self, request: "Request") -> Reply:
        name = request.params["queue"]
        with self.engine.lock:
            runs = self._queues().get(name, {"running": [], "queued": []})
            if not self.v.at_least(2, 4, 2):
                kind = request.arg("type") or "queued"
                chosen = runs["running"] if kind == "running" else runs["queued"]
                page = max(request.int_arg("page"), 1)
                per_page = request.int_arg("perPage") or 50
                per_page = min(per_page, 200) if per_page > 0 else per_page
                start = min((page - 1) * per_page, len(chosen))
                items = [render.run_summary(self.v, r) for r in chosen[start : start + per_page]]
                pages = (len(chosen) - 1) // per_page + 1 if per_page > 0 else 1
                pagination = {
                    "totalRecords": len(chosen),
                    "currentPage": page,
                    "totalPages": pages,
                    "nextPage": min(page + 1, pages),
                    "prevPage": max(page - 1, 1),
                }
                # `var items []DAGRunSummary`: null when nothing is listed.
                return Reply.json(200, {"items": items or None, "pagination": pagination})
            limit = request.int_arg("limit")
            limit = 100 if limit <= 0 else min(limit, 500)
            offset = 0
            cursor = request.arg("cursor") or ""
            if cursor:
                try:
                    offset = int(base64.urlsafe_b64decode(cursor.encode()).decode().split(":", 1)[1])
                except (ValueError, IndexError, UnicodeDecodeError):
                    return Reply.error(400, "bad_request", "Invalid queue cursor")
            queued = runs["queued"]
            body: Dict[str, Any] = {"items": [render.run_summary(self.v, r) for r in queued[offset : offset + limit]]}
            if offset + limit < len(queued):
                body["nextCursor"] = base64.urlsafe_b64encode(f"q:{offset + limit}".encode()).decode()
            return Reply.json(200, body)

    # -- POST /dag-runs ------------------------------------------------------------
    def enqueue_spec(self, request: "Request", body: Dict[str, Any]) -> Reply:
        return self.execute_spec(request, body, enqueue=True)

    def execute_spec(self, request: "Request", body: Dict[str, Any], enqueue: bool = False) -> Reply:
        from .api import _run_id_problem

        v, api = self.v, self.api
        text = body.get("spec") or ""
        if not text:
            return Reply.error(400, "bad_request", "spec is required")
        run_id = body.get("dagRunId") or ""
        if run_id and v.validates_run_id:
            problem = _run_id_problem(run_id)
            if problem:
                return Reply.error(400, "bad_request", problem)
        name = body.get("name") or ""
        if name and (not DAG_NAME_RE.match(name) or len(name) > 40):
            return Reply.error(400, "bad_request", "invalid DAG name: " + name)
        dag, problem = dag_from_spec(text, name)
        if dag is None:
            return Reply.error(400, "bad_request", problem or "invalid DAG")
        run_id = run_id or uuid7()
        resolved = resolve_params(body.get("params") or "", dag.params, v, self.engine.env)
        refusal = start_refusal(v, resolved.received, dag.params, dag.param_defs)
        if refusal:
            return Reply.error(400, "bad_request", refusal)
        with self.engine.lock:
            if self.engine.find(dag.dag_name, run_id) is not None:
                return Reply.error(409, "already_exists", f"dag-run ID {run_id} already exists for DAG {dag.dag_name}")
            if body.get("singleton") and self.engine.alive_runs(dag.dag_name):
                return Reply.error(409, "already_exists", f"DAG {dag.dag_name} is already running (singleton mode)")
            labels, refusal = self.start_labels(dag, body)
            if refusal is not None:
                return refusal
            if missing_required(dag.required_params, dict(resolved.effective)) or (
                not v.validates_run_id and _run_id_problem(run_id)
            ):
                return Reply.error(500, "internal_error", "failed to start dag-run: DAG did not start")
            self.engine.create_run(dag, dag.dag_name, run_id, resolved, labels, enqueue, api.config.queue_delay)
        return Reply.json(200, {"dagRunId": run_id})

    # -- artifacts -----------------------------------------------------------------
    def _archive_dir(self, run: Run) -> Optional[str]:
        """The run's artifact directory, written once the run is final; None if none."""
        if run.dag.artifacts is None:
            return None
        first = run.attempts[0]
        directory = os.path.join(os.path.dirname(first.directory), "artifacts")
        with self._artifact_lock:
            if run.status in (2, 3, 4, 6, 8) and not os.path.isdir(directory):
                os.makedirs(directory + ".tmp", exist_ok=True)
                for rel, content in run.dag.artifacts.items():
                    target = os.path.join(directory + ".tmp", *rel.split("/"))
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with open(target, "wb") as handle:
                        handle.write(content.encode("utf-8") if isinstance(content, str) else content)
                os.replace(directory + ".tmp", directory)
        return directory if os.path.isdir(directory) else None

    def _tree(self, root: str, current: str, recursive: bool) -> List[Dict[str, Any]]:
        nodes = []
        for entry in os.scandir(current):
            if entry.is_symlink():
                continue
            rel = os.path.relpath(entry.path, root).replace(os.sep, "/")
            node: Dict[str, Any] = {"name": entry.name, "path": rel, "type": "directory" if entry.is_dir() else "file"}
            if entry.is_dir() and recursive:
                children = self._tree(root, entry.path, recursive)
                if children:
                    node["children"] = children
            else:
                node["size"] = entry.stat().st_size
            nodes.append(node)
        nodes.sort(key=lambda n: (n["type"] != "directory", n["name"].lower(), n["name"]))
        return nodes

    def _run(self, request: "Request") -> Optional[Run]:
        name, run_id = request.params["name"], request.params["run_id"]
        return self.engine.latest(name) if run_id == "latest" else self.engine.find(name, run_id)

    def artifacts(self, request: "Request") -> Reply:
        run_id = request.params["run_id"]
        missing = Reply.error(404, "not_found", f"artifact directory not found for dag-run {run_id}")
        run = self._run(request)
        if run is None:
            return missing
        if self.hostile_artifacts is not None:
            items = [
                {"name": item.rsplit("/", 1)[-1] or item, "path": item, "type": "file", "size": 6}
                if isinstance(item, str)
                else item
                for item in self.hostile_artifacts
            ]
            return Reply.json(200, {"items": items})
        directory = self._archive_dir(run)
        if directory is None:
            return missing
        recursive = (request.arg("recursive") or "").lower() in ("true", "1", "t")
        return Reply.json(200, {"items": self._tree(directory, directory, recursive)})

    def artifact_download(self, request: "Request") -> Reply:
        run_id = request.params["run_id"]
        path = request.arg("path")
        if path is None:
            return Reply.text(400, "Query argument path is required, but not found\n")
        run = self._run(request)
        if run is None:
            return Reply.error(404, "not_found", f"artifact directory not found for dag-run {run_id}")
        if self.hostile_artifacts is not None:
            # A hostile server serves whatever it listed: the client must refuse the path.
            return self._file_reply(path.rsplit("/", 1)[-1] or "file", b"pwned\n")
        directory = self._archive_dir(run)
        if directory is None:
            return Reply.error(404, "not_found", f"artifact directory not found for dag-run {run_id}")
        not_found = Reply.error(404, "not_found", f"artifact file not found for dag-run {run_id}")
        clean = os.path.normpath(path) if path else "."
        if clean in (".", "..") or clean.startswith(".." + os.sep):
            return not_found
        base = os.path.realpath(directory)
        target = os.path.realpath(os.path.join(base, clean.lstrip("/")))
        if os.path.commonpath([base, target]) != base or not os.path.isfile(target):
            return not_found
        with open(target, "rb") as handle:
            content = handle.read()
        return self._file_reply(os.path.basename(target), content)

    @staticmethod
    def _file_reply(filename: str, content: bytes) -> Reply:
        safe = re.sub(r"[^a-zA-Z0-9._-]", "_", filename)
        return Reply(
            200,
            content,
            [("Content-Type", "application/octet-stream"), ("Content-Disposition", f'attachment; filename="{safe}"')],
        )
