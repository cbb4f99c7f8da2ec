"""HTTP client for Dagu's REST API: auth, retries, version detection, endpoints.

Facts this module leans on were read from Dagu's API handlers and OpenAPI documents at
each release it supports; tests/fakedagu reproduces them. "API.md §N" below cites the
section of the developers' write-up of Dagu's API (not part of the repository) that
first recorded a fact.
"""

from __future__ import annotations

import email.utils
import os
import random
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, TypeVar, overload
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import requests

from dagu_ci import __version__
from dagu_ci.errors import DaguCIError, MalformedAnswer, ServerError, UsageError
from dagu_ci.follow.events import Level, Notice
from dagu_ci.redaction import learn, without_userinfo
from dagu_ci.server.capabilities import api_root, format_version, modern_api, parse_version, supported
from dagu_ci.server.models import LogPage, RunSnapshot, ServerInfo, dag_name_of
from dagu_ci.server.transport import CutShort, TooLarge, TooSlow, fetch

Decoded = TypeVar("Decoded")

RETRYABLE_STATUSES = {429, 500, 502, 503, 504}
# A 500 with a Dagu JSON error body is usually a deterministic answer, not a blip.
MAX_JSON_500_RETRIES = 2
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0  # per socket read; the wall-clock bound of a whole request is below
REQUEST_LIMIT = 60.0  # the longest one request may take, however long its retry window
ATTEMPT_FLOOR = 5.0  # ...and the least, even at the very end of a window (or with none left)

# What one answer may cost at most (decoded bytes). An answer over its cap is refused
# unread. Run details, DAGs, lists and outputs are kilobytes, rarely a megabyte: 16 MB
# is far above any real one. A log page holds up to 10,000 lines (logtail.PAGE); at an
# average of 6 KB a line, JSON-escaped, that is 64 MB. A whole log file (only read for a
# line over 64 KB on Dagu 2.x) gets 256 MB.
MB = 1024 * 1024
JSON_CAP = 16 * MB
LOG_PAGE_CAP = 64 * MB
LOG_FILE_CAP = 256 * MB

# Retry windows dagu-ci sets itself, whatever --retry-for says.
CONTROL_RETRY_FOR = 10.0  # stop, dequeue, reject, outputs: asked at the end, must not hold it up
QUEUE_LOOK_RETRY_FOR = 5.0  # where a queued run stands: a nicety
ARTIFACTS_RETRY_FOR = 30.0  # the artifact listing, after the run


@dataclass(frozen=True)
class Connection:
    """Everything needed to talk to one server. Secrets never leave this object."""

    url: str = "http://localhost:8080"
    api_path: Optional[str] = None
    token: Optional[str] = None
    username: Optional[str] = None
    password: Optional[str] = None
    ca_cert: Optional[str] = None
    client_cert: Optional[str] = None  # mutual TLS: our certificate (may hold the key too)
    client_key: Optional[str] = None
    insecure: bool = False

    @property
    def has_credentials(self) -> bool:
        return bool(self.token or (self.username and self.password))


@dataclass
class Retry:
    """How long to keep trying. `deadline` is a monotonic time; None means no retries.

    Every attempt also ends by the deadline (or after ATTEMPT_FLOOR where little is left),
    so a deadline holds even against a server that never finishes its answer.
    """

    deadline: Optional[float]
    once: bool = False  # one attempt, bounded by the deadline
    option: str = ""  # the option that set this window, named when it is announced

    @classmethod
    def for_seconds(cls, seconds: Optional[float], option: str = "") -> "Retry":
        return cls(None if seconds is None else time.monotonic() + seconds, option=option)

    @classmethod
    def single(cls, deadline: Optional[float]) -> "Retry":
        return cls(deadline, once=True)

    def remaining(self) -> float:
        return 0.0 if self.deadline is None or self.once else self.deadline - time.monotonic()

    def attempt_limit(self) -> float:
        if self.deadline is None:
            return REQUEST_LIMIT
        return min(REQUEST_LIMIT, max(self.deadline - time.monotonic(), ATTEMPT_FLOOR))


class RetryNotices:
    """Say at once that the server is not answering and how long dagu-ci will keep trying
    (naming the option that sets that), then how it goes every PROGRESS_EVERY seconds, and
    when it answers again. One per client, made with it: detection and the start are
    covered as well as the follow."""

    PROGRESS_EVERY = 10.0

    def __init__(self, notify: Callable[[Notice], None], url: str):
        self.notify = notify
        self.url = url
        self._since: Optional[float] = None
        self._last = 0.0

    def on_retry(self, reason: str, retry: Retry) -> None:
        now = time.monotonic()
        remaining = retry.remaining()
        if self._since is None:
            self._since = self._last = now
            why = f" ({retry.option})" if retry.option else ""
            self.notify(
                Notice(
                    f"{self.url}: server not answering ({reason}); retrying for up to {remaining:.0f}s{why}",
                    Level.WARNING,
                )
            )
        elif now - self._last >= self.PROGRESS_EVERY:
            self._last = now
            self.notify(
                Notice(
                    f"{self.url}: still not answering ({reason}) after {now - self._since:.0f}s; "
                    f"retrying for {remaining:.0f}s more"
                )
            )

    def on_recover(self) -> None:
        if self._since is not None:
            self._since = None
            self.notify(Notice(f"{self.url} is answering again"))


class ApiError(ServerError):
    """A non-2xx answer that retrying did not (or should not) fix."""

    def __init__(self, message: str, status: int, code: str = "", server_message: str = ""):
        super().__init__(message)
        self.status = status
        self.code = code
        self.server_message = server_message


class RetriesExhausted(ServerError):
    """Transient failures went on until the retry window (ending at `until`) ran out."""

    def __init__(self, message: str, until: Optional[float]):
        super().__init__(message)
        self.until = until


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


@dataclass
class _Transient:
    reason: str
    retry_after: Optional[float] = None
    json_500: bool = False


class DaguClient:
    def __init__(
        self,
        connection: Connection,
        retry_for: float = 60.0,
        retry_option: str = "",
        notify: Optional[Callable[[Notice], None]] = None,
    ):
        """`retry_for` seconds (set by `retry_option`) bound each request's retries unless a
        caller sets its own window; `notify` hears when the server is not answering."""
        self.connection = connection
        learn([connection.token], [connection.username], [connection.password], [connection.url])
        self.base_url, url_user, url_password = _split_url(connection.url)
        self.display_url = self.base_url
        self.retry_for = retry_for
        self.retry_option = retry_option
        self._notices = RetryNotices(notify, self.display_url) if notify else None
        self.server: Optional[ServerInfo] = None
        self._token = header_token(connection.token)
        self._username = connection.username or url_user
        self._password = basic_password(connection.password or url_password)
        self._has_credentials = bool(self._token or (self._username and self._password))
        if connection.insecure:
            import urllib3

            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self._session = self.new_session()

    def new_session(self) -> requests.Session:
        """A session with our auth and TLS settings (one per thread: Session is not thread-safe)."""
        session = requests.Session()
        session.headers.update({"Accept": "application/json", "User-Agent": f"dagu-ci/{__version__}"})
        if self._token:
            session.headers["Authorization"] = f"Bearer {self._token}"
        elif self._username and self._password:
            # UTF-8, as Go compares them (requests would encode a str as Latin-1).
            # Bytes from argv that are not UTF-8 go as they came (surrogateescape).
            session.auth = requests.auth.HTTPBasicAuth(
                self._username.encode("utf-8", "surrogateescape"), self._password.encode("utf-8", "surrogateescape")
            )
        if self.connection.insecure:
            session.verify = False
        elif self.connection.ca_cert:
            session.verify = self.connection.ca_cert
        if self.connection.client_cert:
            session.cert = (
                (self.connection.client_cert, self.connection.client_key)
                if self.connection.client_key
                else self.connection.client_cert
            )
        return session

    def retry_window(self) -> Retry:
        """The retries a request may take by default: --retry-for (or --start-timeout)."""
        return Retry.for_seconds(self.retry_for, self.retry_option)

    # -- detection -------------------------------------------------------------

    def detect(self) -> ServerInfo:
        """Find the API root and server version (API.md §2.3)."""
        retry = self.retry_window()
        if self.connection.api_path:
            root = self.base_url + "/" + self.connection.api_path.strip("/")
            health = self._probe_json(root + "/health", retry)
            if health is None:
                raise UsageError(
                    f"{self.display_url} with API path {self.connection.api_path} "
                    "does not look like a Dagu server API (no JSON at /health)"
                )
            text = str(health.get("version", ""))
            version = parse_version(text)
            modern_v1 = modern_api(version) if version else not root.endswith("/api/v2")
            return self._remember(ServerInfo(version, text, root, modern_v1))

        health = self._probe_json(self.base_url + "/api/v1/health", retry)
        if health is not None and "version" in health:
            text = str(health.get("version"))
            version = parse_version(text)
            if version is not None:
                if not supported(version):
                    raise UsageError(
                        f"Dagu {format_version(version)} at {self.display_url} is not supported: "
                        "dagu-ci needs Dagu 1.17 or newer"
                    )
                return self._remember(ServerInfo(version, text, self.base_url + api_root(version), modern_api(version)))
        reported = str(health.get("version", "")) if health else ""
        return self._remember(self._probe_family(retry, reported))

    def _probe_family(self, retry: Retry, reported: str) -> ServerInfo:
        """The version did not say; ask the endpoints each family has."""
        v2_health = self._probe_json(self.base_url + "/api/v2/health", retry)
        if v2_health is not None and "status" in v2_health:
            text = str(v2_health.get("version", ""))
            return ServerInfo(parse_version(text), text, self.base_url + "/api/v2", False)
        runs = self._probe_json(self.base_url + "/api/v1/dag-runs", retry, params={"limit": 1})
        if runs is not None and "dagRuns" in runs:
            return ServerInfo(None, reported, self.base_url + "/api/v1", True)
        dags = self._probe_json(self.base_url + "/api/v1/dags", retry)
        if dags is not None and "DAGs" in dags:
            raise UsageError(f"the Dagu server at {self.display_url} is older than 1.17 and not supported")
        raise UsageError(
            f"{self.display_url} does not look like a Dagu server API "
            "(check --url; use --api-path for a custom API base path)"
        )

    def _remember(self, info: ServerInfo) -> ServerInfo:
        self.server = info
        return info

    def _probe_json(self, url: str, retry: Retry, params: Optional[Dict[str, Any]] = None) -> Optional[Dict[str, Any]]:
        """GET url; a JSON object, or None when the answer is not Dagu's JSON."""
        response = self._send("GET", url, params=params, retry=retry, allow=(404,))
        if response.status_code == 401:
            raise self._auth_error()
        if response.status_code != 200 or not _is_json(response):
            return None
        try:
            body = response.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    # -- endpoints ------------------------------------------------------------

    @property
    def api(self) -> ServerInfo:
        if self.server is None:
            self.detect()
        assert self.server is not None
        return self.server

    def get_dag(self, file_name: str) -> Dict[str, Any]:
        """GET /dags/{file}: the DAG's definition; its `.dag.name` keys run endpoints."""
        try:
            return self._get_json(f"/dags/{_seg(file_name)}", self.retry_window())
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

    def start_run(self, dag_file: str, start: "RunStart", enqueue: bool, until: Optional[float] = None) -> "Started":
        """One POST /dags/{file}/start (or /enqueue; with a spec, POST /dag-runs[/enqueue]),
        ended by `until`, never retried here: a retry may only follow a check that the run
        does not exist (the caller's, API.md §3). Raises what the answer means: the typed
        errors below, ServerError when no answer came."""
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
        url = f"{self.api.api_root}/dag-runs/{_seg(dag_name)}/{_seg(run_id)}"
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
        return self._read_log_page(
            f"{self.api.api_root}/dag-runs/{_seg(dag_name)}/{_seg(run_id)}", step, stream, retry, query
        )

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
        return self._download_log_file(
            f"{self.api.api_root}/dag-runs/{_seg(dag_name)}/{_seg(run_id)}", step, stream, retry
        )

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
        label_param: str = "labels",
        limit: int = 0,
    ) -> List[Dict[str, Any]]:
        """GET /dag-runs: summaries of the runs of exactly `dag_name` (newest first), filtered
        by status and labels (`tags` before 2.6), at most `limit` of each status if given.

        `name` is a substring match from 2.4.1, so the exact name is checked here. Several
        `status` values in one query are a 400 before 2.4.2: one request per status there.
        """
        base: List[Tuple[str, Any]] = [("name", dag_name)]
        wanted = list(labels)
        if wanted:
            base.append((label_param, ",".join(wanted)))
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
        url = f"{self.api.api_root}/dag-runs/{_seg(dag_name)}/{_seg(run_id)}/retry"
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
        base = f"/dag-runs/{_seg(dag_name)}/{_seg(run_id)}/artifacts"
        body = self._send(
            "GET",
            self.api.api_root + base,
            params={"recursive": "true"},
            retry=Retry.for_seconds(ARTIFACTS_RETRY_FOR),
            decode=self._json,
        )
        return [item for item in body.get("items") or [] if isinstance(item, dict)]

    def download_artifact(self, dag_name: str, run_id: str, path: str, target: str) -> None:
        """Stream one artifact to `target` (via a temporary file: never half a file)."""
        url = f"{self.api.api_root}/dag-runs/{_seg(dag_name)}/{_seg(run_id)}/artifacts/download"
        temp = f"{target}.part"
        try:
            response = self._session.get(
                url,
                params={"path": path},
                stream=True,
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                verify=self._session.verify,
            )
            with response:
                self._accept(response, ())
                with open(temp, "wb") as handle:
                    for block in response.iter_content(64 * 1024):
                        handle.write(block)
        except requests.exceptions.RequestException as exc:
            raise ServerError(f"could not download artifact {path}: {_describe_transport_error(exc)}") from None
        os.replace(temp, target)

    def get_outputs(self, dag_name: str, run_id: str) -> Dict[str, Any]:
        """The run's collected outputs (>= 1.29; written before the final status, API.md §9)."""
        if not self.api.features.outputs:
            return {}
        body = self._get_json(
            f"/dag-runs/{_seg(dag_name)}/{_seg(run_id)}/outputs", Retry.for_seconds(CONTROL_RETRY_FOR)
        )
        outputs = body.get("outputs")
        return dict(outputs) if isinstance(outputs, dict) else {}

    def stop(self, dag_name: str, run_id: str, retry: Optional[Retry] = None) -> None:
        """POST /stop (no body needed); asynchronous, the run ends as aborted (API.md §5.1)."""
        url = f"{self.api.api_root}/dag-runs/{_seg(dag_name)}/{_seg(run_id)}/stop"
        self._send("POST", url, json={}, retry=retry or Retry.for_seconds(CONTROL_RETRY_FOR))

    def reject(self, dag_name: str, run_id: str, step: str, reason: str) -> None:
        url = f"{self.api.api_root}/dag-runs/{_seg(dag_name)}/{_seg(run_id)}/steps/{_seg(step)}/reject"
        self._send("POST", url, json={"reason": reason}, retry=Retry.for_seconds(CONTROL_RETRY_FOR))

    def dequeue(self, dag_name: str, run_id: str, retry: Optional[Retry] = None) -> None:
        url = f"{self.api.api_root}/dag-runs/{_seg(dag_name)}/{_seg(run_id)}/dequeue"
        self._send("GET", url, retry=retry or Retry.for_seconds(CONTROL_RETRY_FOR))

    # -- sub-DAG runs (issue 13): always addressed by the ROOT run's name and id -------

    def _sub_url(self, root_name: str, root_id: str, sub_id: str) -> str:
        segment = self.api.features.sub_runs_path
        return f"{self.api.api_root}/dag-runs/{_seg(root_name)}/{_seg(root_id)}/{segment}/{_seg(sub_id)}"

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
        url = f"{self.api.api_root}/dag-runs/{_seg(root_name)}/{_seg(root_id)}/sub-dag-runs"
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

    def ui_url(self, dag_name: str, run_id: str) -> str:
        return f"{self.display_url}/dag-runs/{_seg(dag_name)}/{_seg(run_id)}"

    # -- transport ------------------------------------------------------------

    def _get_json(self, path: str, retry: Retry) -> Dict[str, Any]:
        return self._send("GET", self.api.api_root + path, retry=retry, decode=self._json)

    def _json(self, response: requests.Response) -> Dict[str, Any]:
        """The answer's JSON object; MalformedAnswer (retried where _send decodes) if none."""
        path = self._path_of(response.url)
        if not _is_json(response):
            raise MalformedAnswer(
                f"an answer of {response.headers.get('Content-Type') or 'no content type'}, not JSON, from {path}"
            )
        try:
            body = response.json()
        except ValueError:
            raise MalformedAnswer(f"invalid JSON from {path}") from None
        if not isinstance(body, dict):
            raise MalformedAnswer(f"unexpected JSON from {path}")
        return body

    @overload
    def _send(
        self,
        method: str,
        url: str,
        *,
        retry: Retry,
        params: Any = None,
        json: Optional[Mapping[str, Any]] = None,
        allow: Tuple[int, ...] = (),
        role: str = "operator",
        cap: int = JSON_CAP,
        decode: None = None,
    ) -> requests.Response: ...

    @overload  # no call decodes and allows another status: a 2xx answer is the only one returned
    def _send(
        self,
        method: str,
        url: str,
        *,
        retry: Retry,
        params: Any = None,
        json: Optional[Mapping[str, Any]] = None,
        allow: Tuple[int, ...] = (),
        role: str = "operator",
        cap: int = JSON_CAP,
        decode: Callable[[requests.Response], Decoded],
    ) -> Decoded: ...

    def _send(
        self,
        method: str,
        url: str,
        *,
        retry: Retry,
        params: Any = None,
        json: Optional[Mapping[str, Any]] = None,
        allow: Tuple[int, ...] = (),
        role: str = "operator",
        cap: int = JSON_CAP,
        decode: Optional[Callable[[requests.Response], Any]] = None,
    ) -> Any:
        """Send with retries on connection errors, 5xx and 429 until retry.deadline.

        2xx and the `allow`ed statuses are returned; 401/403 and other errors raise (a 403
        names `role`, the least a key needs for this request). With `decode`, a 2xx answer
        is returned decoded; an answer it finds malformed (MalformedAnswer) is retried like
        a 503 once the server has been identified as Dagu. So is an answer that does not
        finish within retry.attempt_limit(), or is larger than `cap` bytes.
        """
        began = time.monotonic()
        attempt = 0
        json_500s = 0
        failing_since: Optional[float] = None
        while True:
            transient: Optional[_Transient]
            response: Optional[requests.Response]
            decoded: Any = None
            limit = retry.attempt_limit()
            try:
                response = fetch(
                    self._session,
                    method,
                    url,
                    limit=limit,
                    cap=cap,
                    params=params,
                    json=json,
                    timeout=(min(CONNECT_TIMEOUT, limit), min(READ_TIMEOUT, limit)),
                    allow_redirects=method == "GET",
                    # Explicit: requests lets REQUESTS_CA_BUNDLE override a session's verify.
                    verify=self._session.verify,
                )
            except TooSlow:
                response = None
                transient = _Transient(f"no complete answer within {limit:g}s")
                # The stalled request keeps the old session to itself (Session is not thread-safe).
                stalled, self._session = self._session, self.new_session()
                stalled.close()
            except TooLarge:
                response = None
                transient = self._malformed(f"an answer larger than {cap // MB} MB from {self._path_of(url)}")
            except CutShort as exc:
                response = None
                transient = _Transient(f"answer cut short: {_describe_body_error(exc.cause)}")
            except requests.exceptions.SSLError as exc:
                raise self._tls_error(exc) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                if self.server is None and _name_unknown(exc):
                    # Before the first answer: a name that does not resolve will not start to.
                    raise UsageError(f"{self.display_url}: host name not found (check --url)") from None
                response = None
                transient = _Transient(_describe_transport_error(exc))
            except requests.exceptions.InvalidURL:
                raise UsageError(f"bad --url {self.display_url}") from None
            except requests.exceptions.RequestException as exc:
                response = None
                transient = _Transient(f"bad answer ({type(exc).__name__})")
            except OSError as exc:  # e.g. a client certificate file that is not PEM
                raise UsageError(
                    f"TLS setup failed: {exc.strerror or exc} (check --client-cert/--client-key)"
                ) from None
            else:
                transient = self._transient(response)
                if transient and transient.json_500:
                    json_500s += 1
                    if json_500s > MAX_JSON_500_RETRIES or 500 in allow:
                        transient = None
                if transient is None and decode is not None and 200 <= response.status_code < 300:
                    try:
                        decoded = decode(response)
                    except MalformedAnswer as exc:
                        transient = self._malformed(exc.message)
            if transient is None:
                assert response is not None
                if failing_since is not None and self._notices:
                    self._notices.on_recover()
                accepted = self._accept(response, allow, role)
                return decoded if decode is not None and 200 <= response.status_code < 300 else accepted
            attempt += 1
            if failing_since is None:
                failing_since = time.monotonic()
            delay = backoff_delay(attempt, transient.retry_after)
            if delay > retry.remaining():
                raise RetriesExhausted(
                    f"Dagu at {self.display_url} is unreachable or failing: {transient.reason}"
                    f" ({method} {self._path_of(url)}, {attempt} attempt{'s' if attempt > 1 else ''}"
                    + (f" in {time.monotonic() - began:.0f}s" if attempt > 1 else "")
                    + ")",
                    retry.deadline,
                )
            if self._notices:
                self._notices.on_retry(transient.reason, retry)
            time.sleep(delay)

    def _malformed(self, reason: str) -> _Transient:
        """Before a first answer identified the server, a malformed one means: not Dagu."""
        if self.server is None:
            raise UsageError(f"{self.display_url} does not look like a Dagu server API ({reason})")
        return _Transient(reason)

    def _transient(self, response: requests.Response) -> Optional[_Transient]:
        if response.status_code not in RETRYABLE_STATUSES:
            return None
        retry_after = _retry_after(response.headers.get("Retry-After"))
        code, _ = error_fields(response)
        reason = f"HTTP {response.status_code}" + (f" ({code})" if code else "")
        return _Transient(reason, retry_after, json_500=response.status_code == 500 and bool(code))

    def _accept(self, response: requests.Response, allow: Tuple[int, ...], role: str = "operator") -> requests.Response:
        status = response.status_code
        if 200 <= status < 300 or status in allow:
            return response
        if status == 401:
            raise self._auth_error()
        code, message = error_fields(response)
        if status == 403:
            raise UsageError(
                f"permission denied by {self.display_url}"
                + (f": {message}" if message else "")
                + f" (a CI key needs the {role} role or higher)"
            )
        raise ApiError(
            f"Dagu at {self.display_url} answered HTTP {status}"
            + (f" {code}" if code else "")
            + (f": {message}" if message else "")
            + f" ({response.request.method} {self._path_of(response.url)})",
            status,
            code,
            message,
        )

    def _tls_error(self, exc: Exception) -> UsageError:
        text = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            return UsageError(
                f"TLS verification failed for {self.display_url}: pass --ca-cert with the server's CA, or --insecure"
            )
        if "PEM" in text or "key values mismatch" in text.lower():
            return UsageError("the client certificate or key could not be loaded (check --client-cert/--client-key)")
        if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text or "packet length too long" in text:
            return UsageError(f"{self.display_url} does not speak TLS on this port: is it http://?")
        hint = "" if self.connection.client_cert else " (does the server require a client certificate? --client-cert)"
        return UsageError(f"TLS handshake with {self.display_url} failed{hint}")

    def _auth_error(self) -> UsageError:
        if self._has_credentials:
            return UsageError(
                f"authentication refused by {self.display_url} (HTTP 401): check the token or username/password"
            )
        return UsageError(
            f"{self.display_url} requires authentication: set DAGU_API_TOKEN (--token) "
            "or DAGU_USERNAME and DAGU_PASSWORD"
        )

    def _path_of(self, url: str) -> str:
        path = urlsplit(url).path
        base_path = urlsplit(self.base_url).path
        return path[len(base_path) :] if base_path and path.startswith(base_path) else path

    def close(self) -> None:
        self._session.close()


def error_fields(response: requests.Response) -> Tuple[str, str]:
    """(code, message) of a Dagu error body; ("", "") when it is not one."""
    if not _is_json(response):
        return "", ""
    try:
        body = response.json()
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("code") or ""), str(body.get("message") or "")


def _is_json(response: requests.Response) -> bool:
    return "json" in response.headers.get("Content-Type", "").lower()


def _seg(value: str) -> str:
    """Percent-encode one path segment (step names may hold spaces)."""
    return quote(value, safe="")


def header_token(token: Optional[str]) -> Optional[str]:
    """The token as the Authorization header carries it. White space around it (the newline
    a secret file or `$(cat file)` leaves) is dropped: a header value cannot begin or end
    with it. What a header cannot carry is a usage error that never shows the token."""
    token = (token or "").strip()
    problem = _unsendable(token, latin_1=True)
    if problem:
        raise UsageError(f"--token/DAGU_API_TOKEN holds {problem}; check the secret's value (it is not shown)")
    return token or None


def basic_password(password: Optional[str]) -> Optional[str]:
    """The Basic auth password: a trailing line end (a secret file's) is dropped, spaces are
    kept (they may belong to it); any other control character is a usage error."""
    password = (password or "").rstrip("\r\n")
    problem = _unsendable(password, latin_1=False)
    if problem:
        raise UsageError(
            f"--password/DAGU_PASSWORD (or the password in --url) holds {problem}; "
            "check the secret's value (it is not shown)"
        )
    return password or None


def _unsendable(secret: str, latin_1: bool) -> str:
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in secret):
        return "a control character"
    if latin_1 and any(ord(char) > 0xFF for char in secret):
        return "a character an HTTP header cannot carry (outside Latin-1)"
    return ""


def _split_url(url: str) -> Tuple[str, Optional[str], Optional[str]]:
    """Validate --url; move any user:password out of it so it is never printed."""
    parts = urlsplit(url.strip())
    shown = without_userinfo(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"bad --url {shown!r}: expected http(s)://host[:port][/base-path]")
    netloc = parts.hostname
    if ":" in netloc:  # IPv6 literal
        netloc = f"[{netloc}]"
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"bad --url {shown!r}: invalid port") from None
    if port:
        netloc += f":{port}"
    clean = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    user, password = parts.username, parts.password
    return clean, unquote(user) if user else user, unquote(password) if password else password


def _describe_transport_error(exc: Exception) -> str:
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "no answer within the read timeout"
    text = str(exc)
    if (
        "Name or service not known" in text
        or "nodename nor servname" in text
        or "Temporary failure in name resolution" in text
    ):
        return "host name not found"
    if "Connection refused" in text:
        return "connection refused"
    if "Connection reset" in text or "RemoteDisconnected" in text or "Connection aborted" in text:
        return "connection dropped"
    return "connection failed"


_NAME_UNKNOWN = (
    "Name or service not known",
    "nodename nor servname",
    "No address associated with hostname",
    "getaddrinfo failed",
)


def _name_unknown(exc: Exception) -> bool:
    """The resolver said the name does not exist (not "temporary failure": that may heal)."""
    return any(text in str(exc) for text in _NAME_UNKNOWN)


def _describe_body_error(exc: BaseException) -> str:
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return "its encoding could not be decoded"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "connection dropped mid-answer"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "no data within the read timeout" if "timed out" in str(exc).lower() else "connection dropped mid-answer"
    return type(exc).__name__


def _retry_after(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff_delay(attempt: int, retry_after: Optional[float]) -> float:
    if retry_after is not None:
        return min(retry_after, 60.0)
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** (attempt - 1)))
    return random.uniform(ceiling / 2, ceiling)  # jitter: many CI jobs may retry at once
