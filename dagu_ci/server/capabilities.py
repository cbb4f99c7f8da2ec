"""Every difference between the Dagu versions dagu-ci supports, in one table.

A server's version decides what dagu-ci may ask of it. Nothing else in dagu_ci compares
versions (tests/test_capabilities.py checks): code asks a `Capabilities` for a named
feature instead. "API.md §N" cites the developers' write-up of Dagu's API (not part of
the repository); the versions were read from Dagu's OpenAPI documents and handlers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

Version = Tuple[int, int, int]

MIN_SUPPORTED: Version = (1, 17, 0)
MODERN: Version = (2, 0, 0)  # the 2.x API at /api/v1; 1.17-1.30 serve theirs at /api/v2

# The first version with each feature (API.md §2.3 and the sections named).
SINCE: Dict[str, Version] = {
    "json_params": (1, 30, 0),  # params as a JSON object (older servers tokenise it)
    "literal_params": (2, 3, 0),  # $ and backticks in params are no longer expanded
    "refuses_unknown_params": (2, 3, 4),  # a param the DAG does not declare is a 400
    "tags_field": (2, 2, 0),  # run labels on the start body, as `tags` (§3.1)
    "labels_field": (2, 6, 0),  # ... as `labels`
    "events_stream": (2, 3, 0),  # the multiplexed SSE stream, GET /events/stream (§8)
    "spec_runs": (1, 23, 0),  # POST /dag-runs: a run of an inline spec
    "spec_enqueue": (1, 24, 0),  # POST /dag-runs/enqueue
    "validate": (1, 23, 0),  # POST /dags/validate
    "creates_with_spec": (1, 23, 0),  # POST /dags reads `spec` (before: writes a template)
    "outputs": (1, 29, 0),  # GET /dag-runs/{name}/{id}/outputs (§9)
    "artifacts": (2, 5, 0),  # GET /dag-runs/{name}/{id}/artifacts (§9)
    "log_download": (2, 0, 0),  # GET .../steps/{step}/log/download (§7)
    "latest_alias": (1, 22, 10),  # GET /dag-runs/{name}/latest
    "status_filter_repeats": (2, 4, 2),  # several `status` on GET /dag-runs (before: a 400)
    "name_filter_is_substring": (2, 4, 1),  # `name` on GET /dag-runs matches substrings
    # Workers without shared storage: their step logs reach the server through the coordinator,
    # in 64 KB bursts cut anywhere. Before, a worker wrote the server's files itself, flushed
    # every 500 ms like a local run.
    "worker_log_bursts": (2, 0, 0),
    "sub_runs_by_id": (1, 24, 0),  # /sub-dag-runs/{id} and nodes[].subRuns (before: children) (§6)
    # GET .../sub-dag-runs lists every child's status in one request; ?parentSubDAGRunId= lists
    # a sub-run's own children from 1.26.7 (older servers ignore it and list the root's).
    "sub_runs_listed": (1, 24, 0),
    "sub_runs_nested_list": (1, 26, 7),
    # The events stream's `subdagrun:{root}/{rootId}/{subId}` topic pushes a sub-run's details
    # when it changes (its events wake it, as they wake the root's `dagrun` topic).
    "sub_runs_pushed": (2, 4, 2),
}

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")


def parse_version(text: Any) -> Optional[Version]:
    """'2.6.5', 'v2.6.5-23-gabc' -> (2, 6, 5); 'dev' and '0.0.0' -> None (API.md §2.2)."""
    match = _VERSION.match(str(text or "").strip())
    if not match:
        return None
    version = (int(match.group(1)), int(match.group(2)), int(match.group(3)))
    return None if version == (0, 0, 0) else version


def format_version(version: Optional[Version]) -> str:
    return ".".join(map(str, version)) if version else "unknown"


def supported(version: Version) -> bool:
    return version >= MIN_SUPPORTED


def modern_api(version: Version) -> bool:
    """Does this version serve the 2.x API (at /api/v1)?"""
    return version >= MODERN


MODERN_ROOT = "/api/v1"  # where 2.x serves the API dagu-ci speaks, under the base URL
LEGACY_ROOT = "/api/v2"  # ...and where 1.17-1.30 serve theirs


def api_root(version: Version) -> str:
    """Where this version serves the API dagu-ci speaks, under the base URL (API.md §2.3)."""
    return MODERN_ROOT if modern_api(version) else LEGACY_ROOT


def modern_at(version: Optional[Version], root: str) -> bool:
    """Does the API at `root` (an --api-path) speak 2.x? Its version says; for a version
    that does not (a dev build), the root does: the legacy root is 1.x's."""
    return modern_api(version) if version else not root.endswith(LEGACY_ROOT)


def oldest_supported() -> str:
    """'1.17': the oldest version dagu-ci supports, as messages name it."""
    major, minor, patch = MIN_SUPPORTED
    return f"{major}.{minor}" + (f".{patch}" if patch else "")


@dataclass(frozen=True)
class Capabilities:
    """What one server can do, by name. Built only by `of`, from its version and family."""

    json_params: bool
    literal_params: bool
    refuses_unknown_params: bool
    label_field: Optional[str]  # the start body's field for run labels: labels, tags, or none
    events_stream: bool
    spec_runs: bool
    spec_enqueue: bool
    validate: bool
    creates_with_spec: bool
    outputs: bool
    artifacts: bool
    log_download: bool
    latest_alias: bool
    status_filter_repeats: bool
    name_filter_is_substring: bool
    worker_log_bursts: bool
    sub_runs_by_id: bool
    sub_runs_listed: bool
    sub_runs_nested_list: bool
    sub_runs_pushed: bool
    sub_runs_path: str  # under /dag-runs/{root}/{id}/
    sub_runs_field: str  # a node's list of its sub-runs
    param_refusal_is_500: bool  # 1.x answers params a DAG refuses with a 500, not a 400

    @classmethod
    def of(cls, version: Optional[Version], modern: bool) -> "Capabilities":
        """An unknown version (a dev build) is taken for the newest of its family."""

        def has(feature: str) -> bool:
            first = SINCE[feature]
            if version is None:
                return modern or first < MODERN
            return version >= first

        label_field = "labels" if has("labels_field") else "tags" if has("tags_field") else None
        by_id = has("sub_runs_by_id")
        return cls(
            json_params=has("json_params") if version is not None else modern,
            literal_params=has("literal_params"),
            refuses_unknown_params=has("refuses_unknown_params"),
            label_field=label_field,
            events_stream=modern and has("events_stream"),
            spec_runs=has("spec_runs"),
            spec_enqueue=has("spec_enqueue"),
            validate=has("validate"),
            creates_with_spec=has("creates_with_spec"),
            outputs=has("outputs"),
            artifacts=has("artifacts"),
            log_download=has("log_download"),
            latest_alias=has("latest_alias"),
            status_filter_repeats=has("status_filter_repeats"),
            name_filter_is_substring=has("name_filter_is_substring"),
            worker_log_bursts=has("worker_log_bursts"),
            sub_runs_by_id=by_id,
            sub_runs_listed=has("sub_runs_listed"),
            sub_runs_nested_list=has("sub_runs_nested_list"),
            sub_runs_pushed=modern and has("sub_runs_pushed"),
            sub_runs_path="sub-dag-runs" if by_id else "children",
            sub_runs_field="subRuns" if by_id else "children",
            param_refusal_is_500=not modern,
        )

    @staticmethod
    def since(feature: str) -> Version:
        """The first version with `feature`, for messages such as "needs Dagu 1.23 or newer"."""
        return SINCE[feature]

    @staticmethod
    def needs(feature: str) -> str:
        """'1.23.0': what to name in a message about a missing feature."""
        return format_version(SINCE[feature])
