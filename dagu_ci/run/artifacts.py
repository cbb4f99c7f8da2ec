"""A run's artifacts (where the server has them: Capabilities.artifacts), downloaded into a folder, never outside it."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Iterator, List

from dagu_ci.errors import UsageError
from dagu_ci.server.api import DaguClient

_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class Artifact:
    path: str  # relative, as the server names it
    size: int


def safe_target(directory: str, relative: str) -> str:
    """Where `relative` goes inside `directory`; UsageError if it would land anywhere else."""
    parts = relative.replace("\\", "/").split("/")
    if (
        not relative
        or relative.startswith(("/", "\\"))
        or _DRIVE.match(relative)
        or "\0" in relative
        or any(part in ("..", "") for part in parts)
    ):
        raise UsageError(f"refusing artifact path {relative!r}: it would land outside the download folder")
    root = os.path.realpath(directory)
    target = os.path.realpath(os.path.join(root, *parts))
    if os.path.commonpath([root, target]) != root or target == root:
        raise UsageError(f"refusing artifact path {relative!r}: it would land outside the download folder")
    return target


def files(items: Iterable[Dict[str, Any]]) -> Iterator[Artifact]:
    """Files of a (recursive) artifact listing, depth first."""
    for item in items:
        if item.get("type") == "directory":
            yield from files(item.get("children") or [])
        elif item.get("path") or item.get("name"):
            yield Artifact(str(item.get("path") or item.get("name")), int(item.get("size") or 0))


def download_all(client: DaguClient, dag_name: str, run_id: str, directory: str) -> List[str]:
    """Download every artifact; every path is checked before anything is written."""
    listing = client.list_artifacts(dag_name, run_id)
    wanted = [(artifact, safe_target(directory, artifact.path)) for artifact in files(listing)]
    written = []
    for artifact, target in wanted:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        client.download_artifact(dag_name, run_id, artifact.path, target)
        written.append(os.path.relpath(target, os.path.realpath(directory)))
    return written
