"""The measurements of issue 5, each against a fresh fake Dagu server in this process.

The fake runs in the harness's process, so its monotonic clock (a run's
`status_history` and `finished_at_monotonic`) compares directly with the exit
time a waiter thread sees for the dagu-ci subprocess.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from bench.cli import ROOT, Launch, Outcome, clean_env, command, run_args, workdir
from tests.fakedagu import Dag, FakeDagu, RequestRecord, Step, lines, out, sleep

PUSH_VERSION = "2.6.5"
OLD_VERSION = "2.2.0"  # the newest server without the events stream


@dataclass(frozen=True)
class Variant:
    """How dagu-ci learns of changes: 'push' (2.3+ with the stream) or 'poll'."""

    label: str
    version: str
    flags: Tuple[str, ...] = ()


PUSH = Variant("push", PUSH_VERSION)
POLL = Variant("poll --no-push", PUSH_VERSION, ("--no-push",))
POLL_OLD = Variant("poll 2.2", OLD_VERSION)


@dataclass
class RunResult:
    outcome: Outcome
    finished: Optional[float]  # monotonic: the server persisted the terminal status
    began: float  # monotonic: the run's first status write
    records: List[RequestRecord] = field(default_factory=list)
    log_bytes: int = 0

    @property
    def latency(self) -> float:
        assert self.finished is not None
        return self.outcome.exited - self.finished

    def rest_per_minute(self, skip: float) -> float:
        """REST requests per minute from `skip` s after the run began until it ended."""
        assert self.finished is not None
        start = self.began + skip
        count = sum(1 for r in self.records if not r.stream and start <= r.time <= self.finished)
        return count * 60.0 / max(1e-9, self.finished - start)

    @property
    def log_request_bytes(self) -> int:
        return sum(r.bytes_out for r in self.records if "/steps/" in r.path and r.path.endswith("/log"))

    @property
    def all_bytes(self) -> int:
        return sum(r.bytes_out for r in self.records)


class Bench:
    def __init__(self, tmp: str, fake: Optional[Dict[str, float]] = None):
        self.tmp = tmp
        self.fake = dict(fake or {})  # FakeDagu options for every server (smoke: a short heartbeat)
        self.failures: List[str] = []  # runs that did not end as expected (reported, not fatal)

    # -- one run ----------------------------------------------------------------
    def start(self, variant: Variant, dag: Dag, marker: Optional[str] = None, rss: bool = False) -> "Running":
        srv = FakeDagu(version=variant.version, **self.fake).start()
        srv.add_dag(dag)
        run_id = "bench-" + uuid.uuid4().hex[:12]
        launch = Launch(run_args(srv.url, dag.file, run_id, *variant.flags), workdir(self.tmp), marker=marker, rss=rss)
        return Running(self, srv, dag, run_id, launch)

    def run(
        self, variant: Variant, dag: Dag, timeout: float, marker: Optional[str] = None, rss: bool = False
    ) -> RunResult:
        return self.start(variant, dag, marker, rss).finish(timeout)

    # -- the figures -----------------------------------------------------------
    def end_latency_active(self, variant: Variant, seconds: float) -> RunResult:
        """A run whose step prints every 0.1 s until it ends. Its length is random (up to a second
        more, busy to the end), so that the end falls at a random phase of dagu-ci's polls: a fixed
        length locks it to one phase."""
        ticks = max(1, int(seconds / 0.1)) + random.randrange(10)
        actions = [a for i in range(ticks) for a in (out(f"tick {i}"), sleep(0.1))] + [sleep(random.uniform(0, 0.1))]
        return self.run(variant, Dag(file="active", steps=[Step("busy", actions)]), timeout=seconds + 60)

    def silent(self, variant: Variant, seconds: float) -> "Running":
        """A run whose (last and only) step prints once, then nothing for `seconds`."""
        return self.start(variant, Dag(file="silent", steps=[Step("quiet", [out("starting"), sleep(seconds)])]))

    def chatty(self, variant: Variant, seconds: float) -> "Running":
        ticks = max(1, int(seconds / 0.25))
        actions = [a for i in range(ticks) for a in (out(f"chat line {i}"), sleep(0.25))]
        return self.start(variant, Dag(file="chatty", steps=[Step("talk", actions)]))

    def big_log(
        self, variant: Variant, count: int, bursts: int = 1, pause: float = 0.0, rss: bool = False
    ) -> RunResult:
        """A step writing `count` ~80-byte lines in `bursts` bursts (unique lines: anchors stay unambiguous)."""
        per = max(1, count // bursts)
        actions = []
        for burst in range(bursts):
            actions.append(lines(per, f"burst {burst:03d} line {{i}} " + "x" * 60))
            if pause:
                actions.append(sleep(pause))
        return self.run(variant, Dag(file="biglog", steps=[Step("log", actions)]), timeout=600, rss=rss)

    def first_line(self, variant: Variant) -> RunResult:
        # Two lines at once: the first is complete for sure (a lone last line is held back up to 2 s
        # while the step runs, since the API cannot tell a finished line from a half-written one).
        dag = Dag(file="hello", steps=[Step("hello", [out("first log line"), out("second"), sleep(1.5)])])
        return self.run(variant, dag, timeout=60, marker="first log line")

    def startup(self, args: List[str], reps: int) -> List[float]:
        env = clean_env(os.path.join(self.tmp, "state"))
        times = []
        for _ in range(reps):
            began = time.perf_counter()
            subprocess.run(command() + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
            times.append(time.perf_counter() - began)
        return times


@dataclass
class Running:
    bench: Bench
    srv: FakeDagu
    dag: Dag
    run_id: str
    launch: Launch

    def finish(self, timeout: float) -> RunResult:
        try:
            outcome = self.launch.wait(timeout)
            run = self.srv.find_run(self.dag.dag_name, self.run_id)
            if outcome.code != 0 or run is None or run.finished_at_monotonic is None:
                self.bench.failures.append(
                    f"{self.dag.file}: exit {outcome.code}, run {'missing' if run is None else run.status}: "
                    f"{outcome.stderr.strip().splitlines()[-1:]}"
                )
            log_bytes = 0
            if run is not None:
                for node in run.attempt.nodes.values():
                    for path in {node.stdout, node.stderr}:
                        if path and os.path.exists(path):
                            log_bytes += os.path.getsize(path)
            began = run.status_history[0][0] if run is not None and run.status_history else outcome.started
            finished = run.finished_at_monotonic if run is not None else None
            return RunResult(outcome, finished, began, self.srv.requests, log_bytes)
        finally:
            self.srv.stop()


def count_lines(path: str, needle: bytes) -> int:
    with open(path, "rb") as handle:
        return sum(1 for line in handle if needle in line)


def fixed_poller_baseline(interval: float = 10.0) -> Dict[str, float]:
    """Analytic: with a fixed poll interval T and a run that ends at a uniformly random
    moment, the wait after the end is uniform on [0, T): median and mean T/2."""
    return {"median": interval / 2, "min": 0.0, "max": interval, "requests_per_minute": 60.0 / interval}
