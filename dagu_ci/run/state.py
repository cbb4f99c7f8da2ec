"""The run's identity on disk, written the moment the run exists.

A CI host may kill the container before our signal handler finishes. A later step
(GitHub's post-entrypoint, GitLab's after_script, a Jenkins `post` block) then runs
`dagu-ci stop --from-state`, which stops what this job's state files name. A run
that ends normally removes its file, so that step finds nothing to do.

The workspace is the repository checkout: anyone who can commit can put files there.
So the files live in a directory of the job that a checkout cannot reach (the host's
temp directory for the job: Host.state_dir), and each names the job that wrote it. The
backstop acts only on its own job's files, only against the server it is configured with
(backstop.Binding).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import time
from dataclasses import asdict, dataclass
from typing import List, Optional, Tuple
from urllib.parse import urlsplit

from dagu_ci.files import write_atomic
from dagu_ci.hosts.base import STATE_DIR

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_READABLE_CHARS = 48
DEFAULT_PORTS = {"http": 80, "https": 443}
_REQUIRED = ("url", "dag", "name", "run_id")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class RunState:
    url: str  # the server's base URL, never with credentials
    dag: str  # file name
    name: str  # DAG name (run endpoints use it)
    run_id: str
    api_path: str = ""
    started_at: float = 0.0
    pid: int = 0
    job: str = ""  # the CI job that wrote it (Host.job); "" outside CI
    key: str = ""  # a secret of the step that wrote it (Host.hand_key_to_post_step)


@dataclass(frozen=True)
class StateFile:
    path: str
    run: Optional[RunState]  # None: not a state file we can read


def origin(url: str) -> Optional[Tuple[str, str, int]]:
    """(scheme, host, port) of an http(s) URL, default port filled in; None if it is not one."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or port is None:
        return None
    return parts.scheme, parts.hostname.lower(), port


def shown(text: str) -> str:
    """Text from a state file (or its name) as one inert line: control characters escaped,
    so nothing in it can start a CI host's workflow command or log section."""
    return _CONTROL.sub(lambda match: repr(match.group())[1:-1], text)


def show_origin(where: Optional[Tuple[str, str, int]]) -> str:
    if where is None:
        return "no http(s) server"
    scheme, host, port = where
    return shown(f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}")


def path_for(directory: str, run: RunState) -> str:
    """A flat file name: server text is slugged for people and hashed for uniqueness, so no
    DAG name or run id can add a folder or climb out of `directory`."""
    digest = hashlib.sha256(json.dumps([run.name, run.run_id]).encode()).hexdigest()[:16]
    readable = _UNSAFE.sub("_", f"{run.name}-{run.run_id}")[:_READABLE_CHARS]
    return os.path.join(directory, f"run-{readable}-{digest}.json")


def save(directory: str, run: RunState) -> str:
    stamped = RunState(**{**asdict(run), "started_at": run.started_at or time.time(), "pid": os.getpid()})
    path = path_for(directory, stamped)
    write_atomic(path, json.dumps(asdict(stamped), indent=2) + "\n")
    return path


def forget(directory: str, run: RunState) -> None:
    remove(path_for(directory, run))


def remove(path: str) -> None:
    """Remove a state file, and our folder with it once it is empty."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    directory = os.path.dirname(path)
    if os.path.basename(directory) == STATE_DIR:
        try:
            os.rmdir(directory)
        except OSError:
            pass  # other runs' files are still there


def load_all(directory: str) -> List[StateFile]:
    """Every `run-*.json` file in `directory`; `run` is None for one we cannot read."""
    if not os.path.isdir(directory):
        return []
    found = []
    for entry in sorted(os.listdir(directory)):
        if entry.startswith("run-") and entry.endswith(".json"):
            path = os.path.join(directory, entry)
            found.append(StateFile(path, _read(path)))
    return found


def _read(path: str) -> Optional[RunState]:
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None  # a link or a folder: not something we wrote
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, dict) or not all(isinstance(data.get(name), str) for name in _REQUIRED):
            return None
        return RunState(
            url=data["url"],
            dag=data["dag"],
            name=data["name"],
            run_id=data["run_id"],
            api_path=str(data.get("api_path") or ""),
            started_at=float(data.get("started_at") or 0),
            pid=int(data.get("pid") or 0),
            job=str(data.get("job") or ""),
            key=str(data.get("key") or ""),
        )
    except (OSError, ValueError, TypeError):
        return None
