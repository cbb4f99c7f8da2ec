"""Real Dagu servers, built from the Go module proxy into .tools/dagu/VERSION/dagu (git-ignored).

`python -m tests.real.builds` builds every wanted version that is missing and prints what it
could not build, and why. A version that cannot be had is never skipped silently: the real
suite names it, with the reason, in its summary (see conftest.py).

Facts the recipe leans on (read from Dagu's repository at each tag):
- the binary's `package main` is `cmd/`; `-X main.version=X.Y.Z` sets what /health reports;
- no cgo is needed (the SQLite driver is pure Go);
- which module and version each release is: tests/dagu_modules.py, shared with the contract test.
`go install pkg@version` would also ask the proxy for the module's version list (for
deprecation notices); building inside the downloaded module needs only the version itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional

from tests.dagu_modules import MODULES, DaguModule, ModuleUnavailable, module_dir

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(ROOT, ".tools", "dagu")


@dataclass(frozen=True)
class Wanted:
    module: DaguModule
    why: str  # what this version stands for in the suite

    @property
    def version(self) -> str:
        return self.module.version

    @property
    def binary(self) -> str:
        return os.path.join(TOOLS, self.version, "dagu")

    @property
    def failure_file(self) -> str:
        return os.path.join(TOOLS, self.version, "unavailable.txt")


WANTED: List[Wanted] = [
    Wanted(MODULES["1.26.7"], '/api/v2, K="v" params'),
    Wanted(MODULES["1.30.3"], "/api/v2, JSON params, outputs"),
    Wanted(MODULES["2.0.5"], "/api/v1, no push"),
    Wanted(MODULES["2.6.5"], "push, labels, artifacts, typed params"),
]
BY_VERSION: Dict[str, Wanted] = {w.version: w for w in WANTED}


class Unavailable(Exception):
    """This version cannot be built here; the message says why, in one line."""


def go_env() -> Dict[str, str]:
    # -mod=mod: the module cache is read-only, and its go.sum may lack test-only sums.
    return {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -buildvcs=false"}


def build(wanted: Wanted) -> str:
    """The binary's path, built if missing; Unavailable if it cannot be had."""
    if os.access(wanted.binary, os.X_OK):
        return wanted.binary
    os.makedirs(os.path.dirname(wanted.binary), exist_ok=True)
    try:
        try:
            source = module_dir(wanted.module)
        except ModuleUnavailable as exc:
            raise Unavailable(str(exc)) from None
        partial = wanted.binary + ".part"
        proc = subprocess.run(
            ["go", "build", "-trimpath", "-o", partial, "-ldflags", f"-X main.version={wanted.version}", "./cmd"],
            capture_output=True,
            text=True,
            timeout=3600,
            env=go_env(),
            cwd=source,
        )
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise Unavailable(f"go build of {wanted.module.path}@{wanted.module.query} failed: {last}")
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
            print(
                f"dagu {version}: building ({wanted.module.path}@{wanted.module.query}; minutes the first time)",
                flush=True,
            )
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
