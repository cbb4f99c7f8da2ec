"""Sub-DAG fan-out figures (issue 13), apart from `make bench`: a `parallel` fan-out of 100
children against the fake (Dagu 1.30.3, polling), the real `dagu-ci run` as a subprocess.

    .venv/bin/python -m bench.fanout

- quiet: every child writes a line, then waits; REST requests per minute over 60 s, from
  15 s after the start (target <= 30).
- writing: every child writes 1,500 lines in three bursts 1 s apart; step-log bytes fetched
  over the bytes of the children's log files (target <= 1.25), and every line shown once.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter

from tests.fakedagu import Dag, FakeDagu, Step, hold, lines, out, parallel, sleep

CHILDREN = 100
CLI = [sys.executable, "-m", "dagu_ci", "run", "fan", "--reporter", "plain", "--no-push"]


def _kind(path: str) -> str:
    if path.endswith("/sub-dag-runs"):
        return "list"
    if "/sub-dag-runs/" in path:
        return "child log" if path.endswith("/log") else "child details"
    return "run log" if path.endswith("/log") else "run status"


def quiet(window: float = 60.0, settle: float = 15.0) -> None:
    child = Dag(file="quiet", steps=[Step("wait", [out("hello"), hold("go")])])
    root = Dag(file="fan", steps=[Step("many", [parallel("quiet", [f"i{n}" for n in range(CHILDREN)])])])
    with FakeDagu(version="1.30.3", sse=False) as srv:
        srv.add_dag(child)
        srv.add_dag(root)
        proc = subprocess.Popen(CLI + ["--url", srv.url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(settle)
        first = len(srv.requests)
        began = time.monotonic()
        time.sleep(window)
        seen = srv.requests[first:]
        minutes = (time.monotonic() - began) / 60
        kinds = Counter(_kind(record.path) for record in seen)
        srv.release("go")
        code = proc.wait(timeout=300)
    print(f"quiet fan-out of {CHILDREN}: {len(seen) / minutes:.1f} req/min (target <= 30); "
          f"{dict(kinds)}; exit {code}")


def writing() -> None:
    child = Dag(file="chatty", steps=[Step("write", [
        lines(500, "{1} line {i} some padding text"), sleep(1), lines(500, "{1} more {i} padding"), sleep(1),
        lines(500, "{1} end {i}"),
    ])])
    root = Dag(file="fan", steps=[Step("many", [parallel("chatty", [f"i{n}" for n in range(CHILDREN)])])])
    with FakeDagu(version="1.30.3", sse=False) as srv:
        srv.add_dag(child)
        srv.add_dag(root)
        result = subprocess.run(CLI + ["--url", srv.url], capture_output=True, text=True, timeout=600)
        fetched = sum(r.bytes_out for r in srv.requests if "/sub-dag-runs/" in r.path and r.path.endswith("/log"))
        written = sum(
            os.path.getsize(path)
            for child_run in srv.runs_of("fan")[0].sub_runs.values()
            for node in child_run.nodes
            for path in {node.stdout, node.stderr}
        )
    shown = sum(1 for line in result.stdout.splitlines() if line.startswith("│ "))
    print(f"writing fan-out of {CHILDREN}: log bytes fetched / written {fetched / written:.3f} (target <= 1.25); "
          f"{shown} lines shown of {CHILDREN * 1500}; exit {result.returncode}")


if __name__ == "__main__":
    quiet()
    writing()
