"""One DAG YAML file from the repository: read and checked locally, with file:line errors."""

from __future__ import annotations

from typing import Any, Dict, Tuple

import yaml

from dagu_ci.errors import UsageError


def load_dag_file(path: str) -> Tuple[str, Dict[str, Any]]:
    """(text, parsed mapping) of a DAG YAML file; UsageError naming file:line when broken."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from None
    return text, parse_dag_text(text, path)


def parse_dag_text(text: str, path: str) -> Dict[str, Any]:
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UsageError(f"{path}{where}: {problem}") from None
    if not documents:
        raise UsageError(f"{path}: empty file, expected a DAG definition")
    spec = documents[0]  # later documents are sub-DAGs (Dagu allows several per file)
    if not isinstance(spec, dict):
        raise UsageError(f"{path}:1: a DAG definition is a mapping, not a {type(spec).__name__}")
    steps = spec.get("steps")
    if not steps or not isinstance(steps, (list, dict)):
        raise UsageError(f"{path}: no steps: a DAG needs a non-empty `steps` list")
    return spec
