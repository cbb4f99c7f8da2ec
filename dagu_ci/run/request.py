"""What the user asked of a run (RunRequest) and what will be sent to start it (Plan)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from dagu_ci.server.params import Params


class OnWaiting:
    WAIT = "wait"
    FAIL = "fail"


@dataclass
class RunRequest:
    dag: str
    params: Params = field(default_factory=dict)
    run_id: Optional[str] = None
    enqueue: bool = False
    singleton: bool = False
    timeout: float = 0.0
    poll_interval: float = 0.5
    push: bool = True
    logs: bool = True
    sub_run_logs: str = "all"  # all | failed | none: sub-DAG runs' step logs (issue 13)
    stop_on_cancel: bool = True
    fail_on_partial: bool = False
    result_file: Optional[str] = None
    on_waiting: str = OnWaiting.WAIT
    queue_timeout: float = 0.0
    wait_auto_retry: bool = True
    cancel_superseded: Optional[str] = None
    dry_run: bool = False
    state_dir: Optional[str] = None  # None: derived from the CI host's workspace
    spec: Optional[str] = None  # a DAG file from the repository, run inline (Capabilities.spec_runs)
    download_artifacts: Optional[str] = None  # folder for the run's artifacts (Capabilities.artifacts)
    print_json: bool = False  # --json: the result document on stdout at the end


@dataclass
class Plan:
    """Everything decided before the start request."""

    dag_name: str
    run_id: str
    params: str
    labels: List[str]
    label_field: Optional[str]
    declared_params: List[str]
    spec_text: str = ""
    param_defs: List[Dict[str, Any]] = field(default_factory=list)  # typed params (Dagu 2.5+)
