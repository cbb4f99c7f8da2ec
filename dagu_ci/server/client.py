"""The connection to one Dagu server: session, auth and TLS, requests with retries and
backoff, error mapping, and detection of the server's version and API root.

`ServerConnection` sends requests and maps answers to errors; the endpoints are built on
it in `api.DaguClient`. Facts this module leans on were read from Dagu's API handlers
and OpenAPI documents at each release it supports; tests/fakedagu reproduces them.
"API.md §N" below cites the section of the developers' write-up of Dagu's API (not part
of the repository) that first recorded a fact.
"""

from __future__ import annotations

import email.utils
import os
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, TypeVar, overload
from urllib.parse import unquote, urlsplit, urlunsplit

import requests

from dagu_ci import __version__
from dagu_ci.errors import MalformedAnswer, ServerError, UsageError
from dagu_ci.redaction import learn, without_userinfo
from dagu_ci.server.capabilities import (
    LEGACY_ROOT,
    MODERN_ROOT,
    api_root,
    format_version,
    modern_api,
    modern_at,
    oldest_supported,
    parse_version,
    supported,
)
from dagu_ci.server.models import ServerInfo
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

# What one answer may cost at most (decoded bytes), unless a request sets its own cap
# (api.py's log reads do). An answer over its cap is refused unread. Run details, DAGs,
# lists and outputs are kilobytes, rarely a megabyte: 16 MB is far above any real one.
MB = 1024 * 1024
JSON_CAP = 16 * MB


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
    covered as well as the follow. `notify(text, warning)`: the caller decides how it shows."""

    PROGRESS_EVERY = 10.0

    def __init__(self, notify: Callable[[str, bool], None], url: str):
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
            self.notify(f"{self.url}: server not answering ({reason}); retrying for up to {remaining:.0f}s{why}", True)
        elif now - self._last >= self.PROGRESS_EVERY:
            self._last = now
            self.notify(
                f"{self.url}: still not answering ({reason}) after {now - self._since:.0f}s; "
                f"retrying for {remaining:.0f}s more",
                False,
            )

    def on_recover(self) -> None:
        if self._since is not None:
            self._since = None
            self.notify(f"{self.url} is answering again", False)


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


@dataclass
class _Transient:
    reason: str
    retry_after: Optional[float] = None
    json_500: bool = False


class ServerConnection:
    """One Dagu server: a session with its auth and TLS, requests retried within a window,
    answers mapped to errors, and the server's version and API root (`api`, detected on
    first use). The endpoints are in `api.DaguClient`."""

    def __init__(
        self,
        connection: Connection,
        retry_for: float = 60.0,
        retry_option: str = "",
        notify: Optional[Callable[[str, bool], None]] = None,
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
            return self._remember(ServerInfo(version, text, root, modern_at(version, root)))

        # Every family tells its version here (1.x still serves this health of its old API).
        health = self._probe_json(self.base_url + "/api/v1/health", retry)
        if health is not None and "version" in health:
            text = str(health.get("version"))
            version = parse_version(text)
            if version is not None:
                if not supported(version):
                    raise UsageError(
                        f"Dagu {format_version(version)} at {self.display_url} is not supported: "
                        f"dagu-ci needs Dagu {oldest_supported()} or newer"
                    )
                return self._remember(ServerInfo(version, text, self.base_url + api_root(version), modern_api(version)))
        reported = str(health.get("version", "")) if health else ""
        return self._remember(self._probe_family(retry, reported))

    def _probe_family(self, retry: Retry, reported: str) -> ServerInfo:
        """The version did not say; ask the endpoints each family has."""
        legacy_health = self._probe_json(self.base_url + LEGACY_ROOT + "/health", retry)
        if legacy_health is not None and "status" in legacy_health:
            text = str(legacy_health.get("version", ""))
            return ServerInfo(parse_version(text), text, self.base_url + LEGACY_ROOT, False)
        runs = self._probe_json(self.base_url + MODERN_ROOT + "/dag-runs", retry, params={"limit": 1})
        if runs is not None and "dagRuns" in runs:
            return ServerInfo(None, reported, self.base_url + MODERN_ROOT, True)
        dags = self._probe_json(self.base_url + "/api/v1/dags", retry)  # the API before 1.17
        if dags is not None and "DAGs" in dags:
            raise UsageError(
                f"the Dagu server at {self.display_url} is older than {oldest_supported()} and not supported"
            )
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

    @property
    def api(self) -> ServerInfo:
        """The server's version, API root and features, detected on first use."""
        if self.server is None:
            self.detect()
        assert self.server is not None
        return self.server

    # -- requests -------------------------------------------------------------

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

    def _download(self, url: str, params: Mapping[str, Any], target: str, what: str) -> None:
        """Stream a GET's answer to `target` (via a temporary file: never half a file). Not
        retried; a failure names `what` was being downloaded."""
        temp = f"{target}.part"
        try:
            response = self._session.get(
                url,
                params=params,
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
            raise ServerError(f"could not download {what}: {_describe_transport_error(exc)}") from None
        os.replace(temp, target)

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
