"""The run's identity on disk, written the moment the run exists.

A CI host may kill the container before our signal handler finishes. A later
step (GitHub's post-entrypoint, GitLab's after_script, a Jenkins `post` block)
then runs `dagu-ci stop --from-state`, which stops whatever these files name.
A run that ends normally removes its file, so that step finds nothing to do.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from typing import List, Mapping, Optional

from dagu_ci.files import write_atomic

STATE_DIR = ".dagu-ci"


@dataclass(frozen=True)
class RunState:
    url: str  # the server's base URL, never with credentials
    dag: str  # file name
    name: str  # DAG name (run endpoints use it)
    run_id: str
    api_path: str = ""
    started_at: float = 0.0
    pid: int = 0


def state_dir(env: Mapping[str, str], cwd: Optional[str] = None) -> str:
    """In the workspace the CI host keeps between steps, else the working directory."""
    base = env.get("GITHUB_WORKSPACE") or env.get("CI_PROJECT_DIR") or cwd or os.getcwd()
    return os.path.join(base, STATE_DIR)


def path_for(directory: str, state: RunState) -> str:
    return os.path.join(directory, f"run-{state.name}-{state.run_id}.json")


def save(directory: str, state: RunState) -> str:
    stamped = RunState(**{**asdict(state), "started_at": state.started_at or time.time(), "pid": os.getpid()})
    path = path_for(directory, stamped)
    write_atomic(path, json.dumps(asdict(stamped), indent=2) + "\n")
    return path


def forget(directory: str, state: RunState) -> None:
    try:
        os.remove(path_for(directory, state))
    except FileNotFoundError:
        pass


def load_all(directory: str) -> List[RunState]:
    """Every run a state file names; unreadable files are skipped."""
    if not os.path.isdir(directory):
        return []
    states = []
    for entry in sorted(os.listdir(directory)):
        if not (entry.startswith("run-") and entry.endswith(".json")):
            continue
        try:
            with open(os.path.join(directory, entry), encoding="utf-8") as handle:
                data = json.load(handle)
            states.append(RunState(**{k: data[k] for k in RunState.__dataclass_fields__ if k in data}))
        except (OSError, ValueError, TypeError):
            continue
    return states
