"""Dagu's REST API as typed endpoints: models in, models out.

`DaguClient` adds to the connection (client.py: session, auth, TLS, retries, version
detection) one method for each endpoint dagu-ci uses. They take and return plain values
and models (models.py), never an HTTP answer; where servers differ they ask the
capabilities table (`self.api.features`). The start request's own types are here too.
"API.md §N" cites the section of the developers' write-up of Dagu's API (not part of
the repository) that first recorded a fact.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Dict, Iterable, List, Optional, Tuple
from urllib.parse import quote

import requests

from dagu_ci.errors import DaguCIError, MalformedAnswer, ServerError, UsageError
from dagu_ci.server.client import MB, ApiError, Retry, ServerConnection, error_fields
from dagu_ci.server.models import LogPage, RunSnapshot, dag_name_of

# A log page holds up to 10,000 lines (logtail.PAGE); at an average of 6 KB a line,
# JSON-escaped, that is 64 MB. A whole log file (only read for a line over 64 KB on Dagu
# 2.x) gets 256 MB. Other answers keep the connection's JSON_CAP.
LOG_PAGE_CAP = 64 * MB
LOG_FILE_CAP = 256 * MB

# Retry windows dagu-ci sets itself, whatever --retry-for says.
CONTROL_RETRY_FOR = 10.0  # stop, dequeue, reject, outputs: asked at the end, must not hold it up
QUEUE_LOOK_RETRY_FOR = 5.0  # where a queued run stands: a nicety
ARTIFACTS_RETRY_FOR = 30.0  # the artifact listing, after the run


class Started(Enum):
    """How a start request ended well."""

    NEW = "new"  # this request created the run (started or queued it)
    EXISTING = "existing"  # the run id was taken already: an earlier attempt of ours made it


@dataclass(frozen=True)
class RunStart:
    """What a start request asks for. Labels go in the field this server reads, if any."""

    run_id: str
    params: str = ""
    singleton: bool = False
    labels: Tuple[str, ...] = ()
    spec: str = ""  # an inline DAG (POST /dag-runs) instead of an installed one
    name: str = ""  # the inline DAG's name


class AlreadyRunning(ServerError):
    """409: the DAG runs already (--singleton, or maxActiveRuns on 1.22-1.26); nothing started."""


class LabelsRefused(ServerError):
    """400: the server refused the run labels (e.g. a value it does not accept); nothing started."""

    def __init__(self, server_message: str):
        super().__init__(f"the server refused the run labels: {server_message}")
        self.server_message = server_message


class StartFailed(ServerError):
    """500: the server could not start the run. It may have created it anyway (API.md §3.5)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason  # the answer alone, e.g. "HTTP 500 internal_error: ..."


class DaguClient(ServerConnection):
    """The endpoints of one Dagu server (see the module's docstring)."""

    def get_dag(self, file_name: str) -> Dict[str, Any]:
        """GET /dags/{file}: the DAG's definition; its `.dag.name` keys run endpoints."""
        try:
            url = f"{self.api.api_root}/dags/{_seg(file_name)}"
            return self._send("GET", url, retry=self.retry_window(), decode=self._json)
        except ApiError as exc:
            if exc.status in (404, 400) or exc.code == "not_found":
                raise UsageError(
                    f"DAG {file_name!r} not found on {self.display_url}"
                    + (f" ({exc.server_message})" if exc.status == 400 and exc.server_message else "")
                ) from None
            raise

    def dag_name(self, dag_file: str) -> str:
        """The name the DAG in `dag_file` keys its runs by."""
        return dag_name_of(self.get_dag(dag_file), dag_file)

    def run_of(self, dag_file: str, run_id: str) -> Tuple[str, Optional[RunSnapshot]]:
        """The DAG's name and its run `run_id` (`latest`: the newest), None when it has none."""
        name = self.dag_name(dag_file)
        return name, self.latest_run(name) if run_id == "latest" else self.find_run(name, run_id)

    def start_run(self, dag_file: str, start: RunStart, enqueue: bool, until: Optional[float] = None) -> Started:
        """One POST /dags/{file}/start (or /enqueue; with a spec, POST /dag-runs[/enqueue]),
        ended by `until`, never retried here: a retry may only follow a check that the run
        does not exist (the caller's, API.md §3). Raises what the answer means: the typed
        errors above, ServerError when no answer came."""
        body: Dict[str, Any] = {"dagRunId": start.run_id}  # always a JSON body: none is a 500
        if start.spec:
            body.update(spec=start.spec, name=start.name)
        if start.params:
            body["params"] = start.params
        if start.singleton:
            body["singleton"] = True
        label_field = self.api.features.label_field
        if start.labels and label_field:
            body[label_field] = list(start.labels)
        if start.spec:
            url = f"{self.api.api_root}/dag-runs" + ("/enqueue" if enqueue else "")
        else:
            url = f"{self.api.api_root}/dags/{_seg(dag_file)}/{'enqueue' if enqueue else 'start'}"
        response = self._send("POST", url, json=body, retry=Retry.single(until), allow=(400, 404, 409, 500))
        status = response.status_code
        code, message = error_fields(response)
        if status == 200:
            return Started.NEW
        if status == 409:
            if "dag-run id" in message.lower():
                return Started.EXISTING
            raise AlreadyRunning(
                f"{dag_file} was not started: {message or 'conflict'} (HTTP 409{' ' + code if code else ''})"
                + ("; another run is active and --singleton is set" if start.singleton else "")
            )
        if status == 400 and label_field in body and ("label" in message.lower() or "tag" in message.lower()):
            raise LabelsRefused(message)
        if status == 404:
            raise UsageError(f"DAG {dag_file!r} not found on {self.display_url}")
        if status == 400:
            raise UsageError(f"the server refused to start {dag_file}: {message or 'bad request'}")
        reason = f"HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
        raise StartFailed(
            f"Dagu at {self.display_url} could not start {dag_file}: {reason}"
            + (
                " (on Dagu 1.x this often means the params were rejected)"
                if self.api.features.param_refusal_is_500
                else ""
            ),
            reason,
        )

    def get_run(self, dag_name: str, run_id: str, retry: Optional[Retry] = None) -> RunSnapshot:
        url = self._run_url(dag_name, run_id)
        return self._send("GET", url, retry=retry or self.retry_window(), decode=self._run_details)

    def _run_details(self, response: requests.Response) -> RunSnapshot:
        details = self._json(response).get("dagRunDetails")
        if not isinstance(details, dict):
            raise MalformedAnswer(f"no run details in the answer from {self._path_of(response.url)}")
        return RunSnapshot.from_api(details)

    def find_run(self, dag_name: str, run_id: str) -> Optional[RunSnapshot]:
        """The run, or None if the server has no record of it (yet)."""
        try:
            return self.get_run(dag_name, run_id)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def read_log(
        self,
        dag_name: str,
        run_id: str,
        step: str,
        stream: str,
        retry: Retry,
        **query: int,
    ) -> Optional[LogPage]:
        """One step-log read; None while the log file does not exist (API.md §7.1)."""
        return self._read_log_page(self._run_url(dag_name, run_id), step, stream, retry, query)

    def _read_log_page(
        self, run_url: str, step: str, stream: str, retry: Retry, query: Dict[str, int]
    ) -> Optional[LogPage]:
        params: Dict[str, Any] = {"stream": stream}  # required: without it the server panics
        params.update({k: v for k, v in query.items() if v})
        url = f"{run_url}/steps/{_seg(step)}/log"
        try:
            return self._send(
                "GET",
                url,
                params=params,
                retry=retry,
                cap=LOG_PAGE_CAP,
                decode=lambda response: LogPage.from_api(self._json(response)),
            )
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def download_log(self, dag_name: str, run_id: str, step: str, stream: str, retry: Retry) -> Optional[str]:
        """The whole raw log file (>= 2.0); None where the server cannot."""
        return self._download_log_file(self._run_url(dag_name, run_id), step, stream, retry)

    def _download_log_file(self, run_url: str, step: str, stream: str, retry: Retry) -> Optional[str]:
        if not self.api.features.log_download:
            return None
        url = f"{run_url}/steps/{_seg(step)}/log/download"
        response = self._send("GET", url, params={"stream": stream}, retry=retry, allow=(404,), cap=LOG_FILE_CAP)
        if response.status_code != 200:
            return None
        return response.content.decode("utf-8", errors="replace")

    def list_runs(
        self,
        dag_name: str,
        statuses: Iterable[int] = (),
        labels: Iterable[str] = (),
        limit: int = 0,
    ) -> List[Dict[str, Any]]:
        """GET /dag-runs: summaries of the runs of exactly `dag_name` (newest first), filtered
        by status and labels (`tags` before 2.6), at most `limit` of each status if given.

        Every run, however old: the server's default is today's. `name` is a substring match
        from 2.4.1, so the exact name is checked here. Several
        `status` values in one query are a 400 before 2.4.2: one request per status there.
        """
        # Without fromDate (or toDate) every version lists only the runs filed since UTC midnight
        # (filedagrun's prepareListOptions, 1.17.0 to 2.6.5): ask for all of them.
        base: List[Tuple[str, Any]] = [("name", dag_name), ("fromDate", 0)]
        wanted = list(labels)
        if wanted:
            # The filter is named as the start body's field is (capabilities: labels, or tags).
            base.append((self.api.features.label_field or "labels", ",".join(wanted)))
        if limit:
            base.append(("limit", limit))
        codes = [int(status) for status in statuses]
        queries = [base + [("status", code) for code in codes]]
        if len(codes) > 1 and not self.api.features.status_filter_repeats:
            queries = [base + [("status", code)] for code in codes]
        runs: List[Dict[str, Any]] = []
        for query in queries:
            body = self._send(
                "GET", self.api.api_root + "/dag-runs", params=query, retry=self.retry_window(), decode=self._json
            )
            runs += [run for run in body.get("dagRuns") or [] if isinstance(run, dict) and run.get("name") == dag_name]
        return runs

    def run_history(self, dag_name: str, limit: int = 20) -> List[RunSnapshot]:
        """The DAG's newest runs first (summaries: no steps). `limit` is a query on 2.x;
        older servers ignore it, so the list is cut here too."""
        return [RunSnapshot.from_api(run) for run in self.list_runs(dag_name, limit=limit)][:limit]

    def latest_run(self, dag_name: str) -> Optional[RunSnapshot]:
        """The DAG's newest run with its steps; None when it never ran.

        `/dag-runs/{name}/latest` exists from 1.22.10; before that, the newest of the list.
        """
        if self.api.features.latest_alias:
            return self.find_run(dag_name, "latest")
        newest = self.run_history(dag_name, 1)
        return self.find_run(dag_name, newest[0].run_id) if newest else None

    def list_dags(self, per_page: int = 200, pages: int = 50) -> List[Dict[str, Any]]:
        """GET /dags, every page: one DAGFile per DAG (fileName, dag, suspended, latestDAGRun)."""
        items: List[Dict[str, Any]] = []
        for page in range(1, pages + 1):
            query = {"page": page, "perPage": per_page}
            body = self._send(
                "GET", self.api.api_root + "/dags", params=query, retry=self.retry_window(), decode=self._json
            )
            items += [item for item in body.get("dags") or [] if isinstance(item, dict)]
            if page >= int((body.get("pagination") or {}).get("totalPages") or 1):
                break
        return items

    def retry(self, dag_name: str, run_id: str, step: Optional[str] = None) -> None:
        """POST /retry: a new attempt of the same run id, or of one step (API.md §5.2).

        The body's id is the one 1.x actually retries, so it is always the path's id. Sent
        once: a second POST after an unclear failure could start a second attempt.
        """
        body: Dict[str, Any] = {"dagRunId": run_id}
        if step:
            body["stepName"] = step
        url = f"{self._run_url(dag_name, run_id)}/retry"
        self._send("POST", url, json=body, retry=Retry(None))

    def validate_spec(self, spec: str, name: str = "") -> Optional[List[str]]:
        """POST /dags/validate: the server's own errors for a DAG YAML (nothing is saved);
        None where the server has no such endpoint (before 1.23)."""
        if not self.api.features.validate:
            return None
        body = {"spec": spec, **({"name": name} if name else {})}
        response = self._send(
            "POST", self.api.api_root + "/dags/validate", json=body, retry=self.retry_window(), allow=(404, 405)
        )
        if response.status_code in (404, 405):
            return None
        return [str(error) for error in self._json(response).get("errors") or []]

    # DAG files, keyed by file name (the base name without .yaml), not by the `name:` in
    # them (Dagu's dags.go and filedag store at v1.17.0, v1.30.3, v2.0.0, v2.6.5). Writes
    # need the developer role or higher, and the server's permission to write DAGs (403).

    def get_spec(self, file_name: str) -> Optional[str]:
        """GET /dags/{file}/spec: the DAG file's text as stored; None when there is no such
        file (404 on 2.x; on 1.x a 500 whose code is not_found)."""
        url = f"{self.api.api_root}/dags/{_seg(file_name)}/spec"
        response = self._send("GET", url, retry=self.retry_window(), allow=(404, 500))
        if response.status_code == 404 or error_fields(response)[0] == "not_found":
            return None
        self._accept(response, ())  # any other 500 is an error (not retried: on 1.x it is an answer)
        return str(self._json(response).get("spec") or "")

    def put_spec(self, file_name: str, spec: str) -> List[str]:
        """PUT /dags/{file}/spec: replace an existing DAG file. The server checks the text
        first and writes nothing when it refuses it; its errors come back in a 200. Success
        is `{"errors": null}` on 2.x and an empty 200 on 1.x. A missing file is a 500."""
        url = f"{self.api.api_root}/dags/{_seg(file_name)}/spec"
        response = self._send("PUT", url, json={"spec": spec}, retry=self.retry_window(), role="developer")
        if not response.content.strip():
            return []
        return [str(error) for error in self._json(response).get("errors") or []]

    def create_dag(self, file_name: str, spec: str) -> List[str]:
        """POST /dags {name, spec} -> 201: a new DAG file with this text; the server's
        refusal otherwise (400 the spec's errors joined by "; ", or a bad name on 2.x; 409
        the file exists). Before 1.23 (`creates_with_spec` false) the server ignores `spec`
        and writes a template: the text must follow in a PUT. Sent once: a retry after a
        lost answer would meet 409."""
        body = {"name": file_name, **({"spec": spec} if self.creates_with_spec else {})}
        response = self._send(
            "POST", self.api.api_root + "/dags", json=body, retry=Retry(None), allow=(400, 409), role="developer"
        )
        if response.status_code == 409:
            return [f"{file_name} already exists on {self.display_url}"]
        if response.status_code == 400:
            return [error_fields(response)[1] or "refused by the server (HTTP 400)"]
        return []

    @property
    def creates_with_spec(self) -> bool:
        return self.api.features.creates_with_spec

    def delete_dag(self, file_name: str) -> None:
        """DELETE /dags/{file} -> 204 (404: already gone)."""
        url = f"{self.api.api_root}/dags/{_seg(file_name)}"
        self._send("DELETE", url, retry=self.retry_window(), allow=(404,), role="developer")

    def queue_position(self, dag_name: str, run_id: str) -> Optional[Tuple[str, int, int]]:
        """(queue, position, queued) of a queued run, where the server tells; None otherwise.

        1.x (and early 2.x) list the queued runs in `/queues`; later 2.x only counts
        them there and pages them at `/queues/{name}/items`.
        """
        retry = Retry.for_seconds(QUEUE_LOOK_RETRY_FOR)
        try:
            body = self._send("GET", self.api.api_root + "/queues", retry=retry, decode=self._json)
            for queue in body.get("queues") or []:
                name = str(queue.get("name") or "")
                queued = queue.get("queued")
                if queued is None and queue.get("queuedCount"):
                    queued = self._queue_items(name, retry)
                for index, item in enumerate(queued or []):
                    if item.get("dagRunId") == run_id and item.get("name") in (dag_name, None):
                        return name, index + 1, int(queue.get("queuedCount") or len(queued))
        except DaguCIError:
            return None  # a nicety: never fail a run over it
        return None

    def _queue_items(self, queue: str, retry: Retry, pages: int = 5) -> List[Dict[str, Any]]:
        items: List[Dict[str, Any]] = []
        cursor = ""
        for _ in range(pages):
            query = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            body = self._send(
                "GET", f"{self.api.api_root}/queues/{_seg(queue)}/items", params=query, retry=retry, decode=self._json
            )
            items += [item for item in body.get("items") or [] if isinstance(item, dict)]
            cursor = str(body.get("nextCursor") or "")
            if not cursor:
                break
        return items

    def list_artifacts(self, dag_name: str, run_id: str) -> List[Dict[str, Any]]:
        """The run's artifact tree (>= 2.5, API.md §9)."""
        body = self._send(
            "GET",
            f"{self._run_url(dag_name, run_id)}/artifacts",
            params={"recursive": "true"},
            retry=Retry.for_seconds(ARTIFACTS_RETRY_FOR),
            decode=self._json,
        )
        return [item for item in body.get("items") or [] if isinstance(item, dict)]

    def download_artifact(self, dag_name: str, run_id: str, path: str, target: str) -> None:
        """Stream one artifact to `target` (via a temporary file: never half a file)."""
        url = f"{self._run_url(dag_name, run_id)}/artifacts/download"
        self._download(url, {"path": path}, target, f"artifact {path}")

    def get_outputs(self, dag_name: str, run_id: str) -> Dict[str, Any]:
        """The run's collected outputs (>= 1.29; written before the final status, API.md §9)."""
        if not self.api.features.outputs:
            return {}
        url = f"{self._run_url(dag_name, run_id)}/outputs"
        body = self._send("GET", url, retry=Retry.for_seconds(CONTROL_RETRY_FOR), decode=self._json)
        outputs = body.get("outputs")
        return dict(outputs) if isinstance(outputs, dict) else {}

    def stop(self, dag_name: str, run_id: str, retry: Optional[Retry] = None) -> None:
        """POST /stop (no body needed); asynchronous, the run ends as aborted (API.md §5.1)."""
        url = f"{self._run_url(dag_name, run_id)}/stop"
        self._send("POST", url, json={}, retry=retry or Retry.for_seconds(CONTROL_RETRY_FOR))

    def reject(self, dag_name: str, run_id: str, step: str, reason: str) -> None:
        url = f"{self._run_url(dag_name, run_id)}/steps/{_seg(step)}/reject"
        self._send("POST", url, json={"reason": reason}, retry=Retry.for_seconds(CONTROL_RETRY_FOR))

    def dequeue(self, dag_name: str, run_id: str, retry: Optional[Retry] = None) -> None:
        url = f"{self._run_url(dag_name, run_id)}/dequeue"
        self._send("GET", url, retry=retry or Retry.for_seconds(CONTROL_RETRY_FOR))

    # -- sub-DAG runs (issue 13): always addressed by the ROOT run's name and id -------

    def _sub_url(self, root_name: str, root_id: str, sub_id: str) -> str:
        segment = self.api.features.sub_runs_path
        return f"{self._run_url(root_name, root_id)}/{segment}/{_seg(sub_id)}"

    def get_sub_run(self, root_name: str, root_id: str, sub_id: str, retry: Retry) -> Optional[RunSnapshot]:
        """A sub-run's details; None while it has no record yet (it is listed before that)."""
        try:
            return self._send("GET", self._sub_url(root_name, root_id, sub_id), retry=retry, decode=self._run_details)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list_sub_runs(
        self, root_name: str, root_id: str, retry: Retry, parent_sub_id: str = ""
    ) -> Optional[List[Dict[str, Any]]]:
        """Every child (with a record) of the root, or of sub-run `parent_sub_id`, with its
        status, in one request; None where the server cannot list them so."""
        features = self.api.features
        if not features.sub_runs_listed or (parent_sub_id and not features.sub_runs_nested_list):
            return None
        url = f"{self._run_url(root_name, root_id)}/sub-dag-runs"
        params = {"parentSubDAGRunId": parent_sub_id} if parent_sub_id else None
        body = self._send("GET", url, params=params, retry=retry, decode=self._json)
        runs = body.get("subRuns")
        if not isinstance(runs, list):
            raise MalformedAnswer(f"no sub-run list in the answer from {self._path_of(url)}")
        return [run for run in runs if isinstance(run, dict) and run.get("dagRunId")]

    def read_sub_log(
        self, root_name: str, root_id: str, sub_id: str, step: str, stream: str, retry: Retry, **query: int
    ) -> Optional[LogPage]:
        """One step-log read of a sub-run's step; None while there is no file."""
        return self._read_log_page(self._sub_url(root_name, root_id, sub_id), step, stream, retry, query)

    def download_sub_log(
        self, root_name: str, root_id: str, sub_id: str, step: str, stream: str, retry: Retry
    ) -> Optional[str]:
        return self._download_log_file(self._sub_url(root_name, root_id, sub_id), step, stream, retry)

    def _run_url(self, dag_name: str, run_id: str) -> str:
        """Where the API keeps one run; its steps, logs, sub-runs and actions are below."""
        return f"{self.api.api_root}/dag-runs/{_seg(dag_name)}/{_seg(run_id)}"

    def ui_url(self, dag_name: str, run_id: str) -> str:
        return f"{self.display_url}/dag-runs/{_seg(dag_name)}/{_seg(run_id)}"


def _seg(value: str) -> str:
    """Percent-encode one path segment (step names may hold spaces)."""
    return quote(value, safe="")
