"""Real Dagu servers, built from the Go module proxy into .tools/dagu/VERSION/dagu (git-ignored).

`python -m tests.real.builds` builds every wanted version that is missing and prints what it
could not build, and why. A version that cannot be had is never skipped silently: the real
suite names it, with the reason, in its summary (see conftest.py).

Facts the recipe leans on (read from Dagu's repository at each tag):
- the binary's `package main` is `cmd/`; `-X main.version=X.Y.Z` sets what /health reports;
- no cgo is needed (the SQLite driver is pure Go);
- the module is github.com/dagu-org/dagu up to 2.4.x and github.com/dagucloud/dagu from 2.5.0;
  2.x tags carry no /v2 suffix, so a 2.x version is asked for by its commit.
`go install pkg@version` would also ask the proxy for the module's version list (for
deprecation notices); building inside the downloaded module needs only the version itself.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(ROOT, ".tools", "dagu")


@dataclass(frozen=True)
class Wanted:
    version: str  # what the server reports, e.g. "2.6.5"
    module: str
    query: str  # the module version (a tag, or a commit for 2.x)
    why: str  # what this version stands for in the suite

    @property
    def binary(self) -> str:
        return os.path.join(TOOLS, self.version, "dagu")

    @property
    def failure_file(self) -> str:
        return os.path.join(TOOLS, self.version, "unavailable.txt")


OLD = "github.com/dagu-org/dagu"
NEW = "github.com/dagucloud/dagu"
WANTED: List[Wanted] = [
    Wanted("1.26.7", OLD, "v1.26.7", '/api/v2, K="v" params'),
    Wanted("1.30.3", OLD, "v1.30.3", "/api/v2, JSON params, outputs"),
    Wanted("2.0.5", OLD, "017880d970f9fc638e6f6515144d0661ee4498f5", "/api/v1, no push"),
    Wanted("2.6.5", NEW, "03a9a56d541f1c4ebb781e4266627321baac6c4b", "push, labels, artifacts, typed params"),
]
BY_VERSION: Dict[str, Wanted] = {w.version: w for w in WANTED}


class Unavailable(Exception):
    """This version cannot be built here; the message says why, in one line."""


def go_env() -> Dict[str, str]:
    return {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -buildvcs=false"}


def module_dir(module: str, query: str) -> str:
    """The module's source in the Go module cache (downloaded once)."""
    try:
        proc = subprocess.run(["go", "mod", "download", "-json", f"{module}@{query}"], capture_output=True,
                              text=True, timeout=900, env=go_env(), cwd=os.path.expanduser("~") or "/")
    except FileNotFoundError:
        raise Unavailable("the go command is not installed") from None
    except subprocess.TimeoutExpired:
        raise Unavailable(f"go mod download {module}@{query} took longer than 15 minutes") from None
    try:
        info = json.loads(proc.stdout or "{}")
    except ValueError:
        info = {}
    if info.get("Error") or not info.get("Dir"):
        reason = str(info.get("Error") or proc.stderr or "no module directory").strip()
        raise Unavailable(f"go mod download {module}@{query}: {' '.join(reason.split())}")
    return str(info["Dir"])


def build(wanted: Wanted) -> str:
    """The binary's path, built if missing; Unavailable if it cannot be had."""
    if os.access(wanted.binary, os.X_OK):
        return wanted.binary
    os.makedirs(os.path.dirname(wanted.binary), exist_ok=True)
    try:
        source = module_dir(wanted.module, wanted.query)
        partial = wanted.binary + ".part"
        proc = subprocess.run(
            ["go", "build", "-trimpath", "-o", partial, "-ldflags", f"-X main.version={wanted.version}", "./cmd"],
            capture_output=True, text=True, timeout=3600, env=go_env(), cwd=source,
        )
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise Unavailable(f"go build of {wanted.module}@{wanted.query} failed: {last}")
    except Unavailable as exc:
        with open(wanted.failure_file, "w", encoding="utf-8") as handle:
            handle.write(str(exc) + "\n")
        raise
    os.replace(partial, wanted.binary)
    if os.path.exists(wanted.failure_file):
        os.remove(wanted.failure_file)
    return wanted.binary


def available() -> Dict[str, str]:
    """version -> binary, for the versions built so far (nothing is built here)."""
    return {w.version: w.binary for w in WANTED if os.access(w.binary, os.X_OK)}


def unavailable() -> Dict[str, str]:
    """version -> why it could not be built, from the last build attempt."""
    found = {}
    for wanted in WANTED:
        if not os.access(wanted.binary, os.X_OK):
            try:
                with open(wanted.failure_file, encoding="utf-8") as handle:
                    found[wanted.version] = handle.read().strip()
            except OSError:
                found[wanted.version] = "not built yet (run: make dagu-servers)"
    return found


def main(argv: Optional[List[str]] = None) -> int:
    versions = (argv if argv is not None else sys.argv[1:]) or [w.version for w in WANTED]
    built = 0
    for version in versions:
        wanted = BY_VERSION.get(version)
        if wanted is None:
            print(f"dagu {version}: not one of {', '.join(BY_VERSION)}", file=sys.stderr)
            return 2
        had = os.access(wanted.binary, os.X_OK)
        if not had:
            print(f"dagu {version}: building ({wanted.module}@{wanted.query}; several minutes the first time)", flush=True)
        try:
            build(wanted)
        except Unavailable as exc:
            print(f"dagu {version}: UNAVAILABLE: {exc}", flush=True)
            continue
        built += 1
        print(f"dagu {version}: {'present' if had else 'built'} at {os.path.relpath(wanted.binary, ROOT)}", flush=True)
    # Not an error for make: the suite reports what is missing, by name and reason.
    return 0 if built else 1


if __name__ == "__main__":
    sys.exit(main())
