"""Dagu's own Go modules, fetched into the Go module cache: where the contract test reads
Dagu's OpenAPI documents, so that it runs in any clone whose machine has Go and reaches
the Go module proxy. Nothing is built here, and no document is copied into the repository.

    python -m tests.dagu_modules    # fetch them all (`make test` does, before the tests)
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Dict


@dataclass(frozen=True)
class DaguModule:
    """One Dagu release as a Go module."""

    version: str  # Dagu's release, as its server reports it
    path: str  # the module path: github.com/dagu-org/dagu up to 2.4.x, github.com/dagucloud/dagu from 2.5.0
    query: str  # what the go command is asked for: the tag, or for 2.x (tags without /v2) the tag's commit

    @property
    def api_document(self) -> str:
        """The OpenAPI document of the API dagu-ci uses: /api/v2 on 1.x, /api/v1 on 2.x."""
        return "api/v2/api.yaml" if self.version.startswith("1.") else "api/v1/api.yaml"


MODULES: Dict[str, DaguModule] = {
    module.version: module
    for module in (
        DaguModule("1.26.7", "github.com/dagu-org/dagu", "v1.26.7"),
        DaguModule("1.30.3", "github.com/dagu-org/dagu", "v1.30.3"),
        DaguModule("2.0.5", "github.com/dagu-org/dagu", "017880d970f9fc638e6f6515144d0661ee4498f5"),
        DaguModule("2.6.5", "github.com/dagucloud/dagu", "03a9a56d541f1c4ebb781e4266627321baac6c4b"),
    )
}


class ModuleUnavailable(Exception):
    """The module could not be had: no go command, or the download failed (the reason)."""


def module_dir(module: DaguModule) -> str:
    """The module's directory in the Go module cache, downloading it first if need be."""
    go = shutil.which("go")
    if go is None:
        raise ModuleUnavailable("the go command is not on PATH (Go 1.26 fetches Dagu's modules)")
    target = f"{module.path}@{module.query}"
    # Outside any go.mod: `go mod download MODULE@VERSION` then needs no module of ours.
    with tempfile.TemporaryDirectory(prefix="dagu-modules-") as scratch:
        try:
            proc = subprocess.run(
                [go, "mod", "download", "-json", target], cwd=scratch, capture_output=True, text=True, timeout=600
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ModuleUnavailable(f"go mod download {target}: {exc}") from None
    try:
        answer = json.loads(proc.stdout)
    except ValueError:
        answer = {}
    directory = answer.get("Dir")
    if proc.returncode != 0 or not directory or not os.path.isdir(directory):
        reason = " ".join((answer.get("Error") or proc.stderr or f"exit status {proc.returncode}").split())
        raise ModuleUnavailable(reason if target in reason else f"go mod download {target}: {reason}")
    return directory


@functools.cache
def openapi_document(version: str) -> str:
    """Path of Dagu `version`'s OpenAPI document for the API dagu-ci uses."""
    module = MODULES[version]
    path = os.path.join(module_dir(module), module.api_document)
    if not os.path.isfile(path):
        raise ModuleUnavailable(f"{module.path}@{module.query} has no {module.api_document}")
    return path


def main() -> int:
    missing = 0
    for version in MODULES:
        try:
            print(f"Dagu {version}: {openapi_document(version)}")
        except ModuleUnavailable as exc:
            missing += 1
            print(f"Dagu {version}: NOT AVAILABLE: {exc}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
