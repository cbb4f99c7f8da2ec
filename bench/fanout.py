"""Figures 8, sub-DAG fan-out (issue 13): a `parallel` fan-out of 100 children against the
fake, the real `dagu-ci run` as a subprocess. Part of `make bench`; alone:

    .venv/bin/python -m bench.fanout [--quick]

- quiet, polling: Dagu 1.30.3 with `--no-push`; every child writes a line, then waits; REST
  requests per minute over the silence (60 s), from 15 s after the start (target <= 30).
- quiet, push: the same on Dagu 2.6.5 with its events stream (target <= 6); the stream
  connections (the run's and the children's, opened at the start) are not REST requests.
- writing: every child writes 1,500 lines in three bursts 1 s apart; step-log bytes fetched
  over the bytes of the children's log files (target <= 1.25), and every line shown once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from typing import Callable, List, Optional, Tuple

from bench.cli import command
from bench.stats import Figure, Figures, at_most
from tests.fakedagu import Dag, FakeDagu, Step, hold, lines, out, parallel, sleep

CHILDREN = 100
SMOKE_CHILDREN = 5
SETTLE = 15.0  # the first look at every child (and the streams' opening) is not the quiet load


def _cli(url: str, push: bool) -> List[str]:
    return command() + ["run", "fan", "--url", url, "--reporter", "plain"] + ([] if push else ["--no-push"])


def _kind(path: str) -> str:
    if path.endswith("/events/stream"):
        return "stream"
    if path.endswith("/sub-dag-runs"):
        return "list"
    if "/sub-dag-runs/" in path:
        return "child log" if path.endswith("/log") else "child details"
    return "run log" if path.endswith("/log") else "run status"


def quiet(version: str, push: bool, children: int, window: float, settle: float) -> Tuple[float, str, int]:
    """REST requests per minute while the fan-out is quiet; what they were; the exit code."""
    child = Dag(file="quiet", steps=[Step("wait", [out("hello"), hold("go")])])
    root = Dag(file="fan", steps=[Step("many", [parallel("quiet", [f"i{n}" for n in range(children)])])])
    with FakeDagu(version=version) as srv:
        srv.add_dag(child)
        srv.add_dag(root)
        proc = subprocess.Popen(_cli(srv.url, push), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(settle)
        first = len(srv.requests)
        began = time.monotonic()
        time.sleep(window)
        seen = [record for record in srv.requests[first:] if _kind(record.path) != "stream"]
        minutes = (time.monotonic() - began) / 60
        kinds = Counter(_kind(record.path) for record in seen)
        streams = sum(1 for record in srv.requests if _kind(record.path) == "stream")
        srv.release("go")
        code = proc.wait(timeout=300)
    what = ", ".join(f"{kind} {count / minutes:.1f}" for kind, count in sorted(kinds.items()))
    if push:
        what += f"; {streams} stream connections in all"
    return len(seen) / minutes, what, code


def writing(children: int) -> Tuple[float, int, int, int]:
    """(log bytes fetched / written, lines shown, lines written, exit code)."""
    child = Dag(
        file="chatty",
        steps=[
            Step(
                "write",
                [
                    lines(500, "{1} line {i} some padding text"),
                    sleep(1),
                    lines(500, "{1} more {i} padding"),
                    sleep(1),
                    lines(500, "{1} end {i}"),
                ],
            )
        ],
    )
    root = Dag(file="fan", steps=[Step("many", [parallel("chatty", [f"i{n}" for n in range(children)])])])
    with FakeDagu(version="1.30.3", sse=False) as srv:
        srv.add_dag(child)
        srv.add_dag(root)
        result = subprocess.run(_cli(srv.url, push=False), capture_output=True, text=True, timeout=600)
        if not srv.runs_of("fan"):
            said = result.stderr.strip().splitlines()[-3:]
            raise RuntimeError(f"dagu-ci run fan exited {result.returncode} without a run: {' / '.join(said)}")
        fetched = sum(r.bytes_out for r in srv.requests if "/sub-dag-runs/" in r.path and r.path.endswith("/log"))
        written = sum(
            os.path.getsize(path)
            for child_run in srv.runs_of("fan")[0].sub_runs.values()
            for node in child_run.nodes
            for path in {node.stdout, node.stderr}
        )
    shown = sum(1 for line in result.stdout.splitlines() if line.startswith("│ "))
    return fetched / max(1, written), shown, children * 1500, result.returncode


def measure_fanout(silence: float, fig: Callable[..., Figure], log: Callable[[str], None], smoke: bool = False) -> None:
    """Figures 8 into `fig` (bench.run's): `silence` is the quiet window measured."""
    children = SMOKE_CHILDREN if smoke else CHILDREN
    settle = 1.0 if smoke else SETTLE
    for version, push, target in (("1.30.3", False, 30), ("2.6.5", True, 6)):
        label = "push" if push else "poll --no-push"
        log(f"quiet fan-out of {children} children: {label}")
        rate, what, code = quiet(version, push, children, silence, settle)
        note = f"{silence:.0f} s from {settle:.0f} s after the start; per min: {what}" + (
            "" if code == 0 else f"; EXIT {code}"
        )
        fig(
            f"8 REST req/min, quiet fan-out of {children} children: {label}",
            "req/min",
            f"<= {target}",
            at_most(target),
            [rate],
            decimals=1,
            note=note,
        )
    log(f"writing fan-out of {children} children")
    ratio, shown, written, code = writing(children)
    fig(
        f"8 log bytes fetched / log bytes, {children} children writing 1,500 lines each",
        "ratio",
        "<= 1.25",
        at_most(1.25),
        [ratio],
        decimals=3,
        note=f"child step-log responses over the children's log files; {shown:,} of {written:,} lines shown"
        + ("" if code == 0 else f"; EXIT {code}"),
    )


def notes() -> List[str]:
    return [
        "- Sub-DAG fan-out (issue 13, figures 8): one run each; a `parallel` step fanning one child DAG out over "
        "100 items. Polling: the children's statuses come from one `GET …/sub-dag-runs` (every 6 s while quiet), "
        "the run's own status every 10 s while children run, the first running child tailed live, the others read "
        "whole when they end. Push (2.4.2+): the children's details come on `subdagrun` topics (streams of 20 "
        "topics, opened once), so quiet children add no REST request to the run's 10 s watchdog.",
    ]


def main(argv: Optional[List[str]] = None) -> int:
    """`python -m bench.fanout [--quick]`: figures 8 alone, as a Markdown table on stdout."""
    import argparse

    from bench.stats import markdown_table

    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=main.__doc__)
    parser.add_argument("--quick", action="store_true", help="a quiet window of 15 s instead of 60 s")
    args = parser.parse_args(argv)
    figures = Figures()
    fig = figures.add

    measure_fanout(15.0 if args.quick else 60.0, fig, lambda text: print(f"bench: {text}", file=sys.stderr, flush=True))
    print(markdown_table(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
