"""Run ids: validated when given, derived from the CI context when not.

A derived id is the same every time the same CI job attempt calls us, so a
retried step attaches to its run (409 already_exists) instead of starting a
second one. A CI re-run gets a new attempt number or job id, hence a new run.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Optional

from dagu_ci.errors import UsageError

RUN_ID = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")
_INVALID = re.compile(r"[^-a-zA-Z0-9_]+")
MAX_LEN = 64


def validate_run_id(run_id: str) -> str:
    if not RUN_ID.match(run_id) or run_id == "latest":
        raise UsageError(f"bad --run-id {run_id!r}: use 1-64 letters, digits, '-' or '_' (and not 'latest')")
    return run_id


def derive_run_id(job: Optional[str], dag: str, params: str) -> str:
    """From the CI job (Host.job); random outside CI.

    A short digest of the DAG and its params tells apart matrix legs and
    several dagu-ci steps in one job.
    """
    if job is None:
        return "dagu-ci-" + uuid.uuid4().hex[:16]
    digest = hashlib.sha256(f"{dag}\0{params}".encode()).hexdigest()[:8]
    return _fit(f"{job}-{digest}")


def _fit(text: str) -> str:
    cleaned = _INVALID.sub("-", text).strip("-") or "dagu-ci"
    if len(cleaned) <= MAX_LEN:
        return cleaned
    # Keep it unique when cutting: the tail carries a digest of the whole.
    digest = hashlib.sha256(cleaned.encode()).hexdigest()[:10]
    return cleaned[: MAX_LEN - 11].rstrip("-") + "-" + digest
