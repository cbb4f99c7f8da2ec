"""Figures against a real Dagu server (issue 11 item 5, issue 17): end latency, quiet-step load
and the server's CPU per follower. Only 1.30.3 builds here (see tests/real/builds.py).

Where the run's end comes from: Dagu's agent appends each status write to the attempt's
`status.jsonl` under DAGU_HOME, and the API answers from that file. A watcher thread reads the
file whenever its size or mtime changes (checked every 2 ms) and takes the first record that
is terminal and has `finishedAt`: the agent's last write, the one dagu-ci waits for. Its time
is that write's mtime (the kernel's CLOCK_REALTIME stamp), compared with the wall time at
which wait4 returned on the CLI: one clock, one machine. The file is rewritten (compacted)
when the agent closes it, a few ms later; a watcher that only saw the file after that takes
the later stamp, so a figure can only come out a few ms short, never long.
"""

from __future__ import annotations

import glob
import http.client
import json
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Tuple

from bench.cli import Launch, run_args, workdir
from tests.real.builds import BY_VERSION
from tests.real.server import RealDagu

REAL_VERSION = "1.30.3"
TERMINAL = {2, 3, 4, 6, 8}


def real_binary(version: str = REAL_VERSION) -> Optional[str]:
    path = BY_VERSION[version].binary
    return path if os.access(path, os.X_OK) else None


# -- the run's last write ---------------------------------------------------------------------


def status_file(home: str, run_id: str) -> Optional[str]:
    found = glob.glob(
        os.path.join(
            home, "data", "dag-runs", "*", "dag-runs", "*", "*", "*", f"dag-run_*_{run_id}", "attempt_*", "status.jsonl"
        )
    )
    return found[0] if found else None


def _last_record(path: str) -> Dict:
    with open(path, "rb") as handle:
        lines = [line for line in handle.read().splitlines() if line.strip()]
    try:
        return json.loads(lines[-1]) if lines else {}
    except ValueError:
        return {}  # caught mid-write


class EndWatcher(threading.Thread):
    """Finds the wall time of a run's last status write (terminal, with finishedAt)."""

    def __init__(self, home: str, run_id: str, limit: float):
        super().__init__(daemon=True)
        self.home, self.run_id, self.limit = home, run_id, limit
        self.ended_at: Optional[float] = None  # wall clock (the write's mtime)

    def run(self) -> None:
        deadline = time.monotonic() + self.limit
        path, seen = None, None
        while time.monotonic() < deadline:
            path = path or status_file(self.home, self.run_id)
            if path:
                try:
                    info = os.stat(path)
                except OSError:
                    info = None
                if info is not None and (info.st_size, info.st_mtime_ns) != seen:
                    seen = (info.st_size, info.st_mtime_ns)
                    record = _last_record(path)
                    if record.get("status") in TERMINAL and record.get("finishedAt") not in (None, "", "-"):
                        self.ended_at = info.st_mtime_ns / 1e9
                        return
            time.sleep(0.002)


# -- a counting proxy ---------------------------------------------------------------------------


@dataclass
class Counted:
    time: float  # monotonic
    method: str
    path: str


class CountingProxy:
    """Forwards HTTP/1.1 to the real server and records every request dagu-ci makes."""

    def __init__(self, upstream_port: int):
        self.records: List[Counted] = []
        lock = threading.Lock()
        records = self.records

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else headers and body in two writes meet delayed ACKs: +40 ms

            def log_message(self, *args) -> None:  # quiet
                pass

            def _forward(self) -> None:
                with lock:
                    records.append(Counted(time.monotonic(), self.command, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "host")}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                    self.send_response(answer.status)
                    for key, value in answer.getheaders():
                        if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    upstream.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def per_minute(self, since: float, until: float, run_id: str) -> float:
        count = sum(1 for r in self.records if since <= r.time <= until and run_id in r.path)
        return count * 60.0 / max(1e-9, until - since)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the server's CPU ---------------------------------------------------------------------------


def tree_cpu_seconds(root: int) -> float:
    """utime+stime of `root` and every live descendant, plus the children they reaped
    (cutime+cstime): what the process tree has spent so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: Dict[int, int] = {}
    spent: Dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        spent[int(entry)] = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    tree, todo = {root}, [root]
    while todo:
        current = todo.pop()
        for pid, parent in parents.items():
            if parent == current and pid not in tree:
                tree.add(pid)
                todo.append(pid)
    return sum(spent.get(pid, 0) for pid in tree) / ticks


# -- the scenarios --------------------------------------------------------------------------------

# TICKS and PAUSE (params): a random length, busy to the end, so the end falls at a random phase of the polls.
ACTIVE_DAG = (
    "params: TICKS=30 PAUSE=0\nsteps:\n  - name: busy\n"
    "    command: bash -c 'for i in $(seq 1 $TICKS); do echo tick $i; sleep 0.1; done; sleep $PAUSE'\n"
)
QUIET_DAG = "steps:\n  - name: quiet\n    command: bash -c 'echo starting; sleep {seconds}'\n"


@dataclass
class RealBench:
    tmp: str
    version: str = REAL_VERSION
    failures: List[str] = field(default_factory=list)

    def server(self, dags: Dict[str, str]) -> RealDagu:
        binary = real_binary(self.version)
        assert binary is not None
        return RealDagu(self.version, binary).start(dags)

    def end_latency_active(self, seconds: float, reps: int) -> List[float]:
        """End latency of a run printing every 0.1 s, polling (1.x has no events stream)."""
        samples: List[float] = []
        ticks = max(1, int(seconds / 0.1))
        with self.server({"active": ACTIVE_DAG}) as srv:
            for _ in range(reps):
                run_id = "bench-" + uuid.uuid4().hex[:12]
                watcher = EndWatcher(srv.home, run_id, seconds + 60)
                watcher.start()
                length = (f"TICKS={ticks + random.randrange(10)}", f"PAUSE={random.uniform(0.0, 0.1):.3f}")
                launch = Launch(run_args(srv.url, "active", run_id, *length), workdir(self.tmp))
                outcome = launch.wait(seconds + 60)
                watcher.join(5)
                if outcome.code != 0 or watcher.ended_at is None:
                    self.failures.append(
                        f"real active run: exit {outcome.code}, end seen: "
                        f"{watcher.ended_at is not None}; {outcome.stderr.strip().splitlines()[-3:]}"
                    )
                    continue
                samples.append(outcome.exited_wall - watcher.ended_at)
        return samples

    def followers(self, count: int, quiet: float, skip: float, stagger: float) -> "FollowersResult":
        """`count` quiet runs followed by `count` dagu-ci processes through a counting proxy,
        and as many quiet runs nobody follows: the server tree's CPU over the same window."""
        window = quiet - skip - count * stagger - 5.0
        assert window > 20, "the quiet step must outlast the window"
        # One DAG per run: on 1.30.3 a start while another run of the same DAG runs can answer 200
        # before the new run exists (its wait reads the DAG's socket, which the other run answers),
        # and dagu-ci then fails on the 404 (exit 4; see the report of issue 17).
        dags = {f"quiet{index}": QUIET_DAG.format(seconds=quiet) for index in range(count)}
        unfollowed = self._cpu_window(dags, count, skip, stagger, window, follow=False)
        followed = self._cpu_window(dags, count, skip, stagger, window, follow=True)
        return FollowersResult(count, window, unfollowed[0], followed[0], followed[1], followed[2])

    def _cpu_window(
        self, dags: Dict[str, str], count: int, skip: float, stagger: float, window: float, follow: bool
    ) -> Tuple[float, List[float], List[float]]:
        import requests  # the harness's own client, for runs nobody follows

        with self.server(dags) as srv:
            assert srv.proc is not None
            proxy = CountingProxy(srv.port) if follow else None
            launches: List[Tuple[str, Launch, EndWatcher, float]] = []
            try:
                for index in range(count):
                    run_id, dag = "bench-" + uuid.uuid4().hex[:12], f"quiet{index}"
                    if proxy is not None:
                        watcher = EndWatcher(srv.home, run_id, 600)
                        watcher.start()
                        launches.append(
                            (
                                run_id,
                                Launch(run_args(proxy.url(), dag, run_id), workdir(self.tmp)),
                                watcher,
                                time.monotonic(),
                            )
                        )
                    else:
                        requests.post(f"{srv.api}/dags/{dag}/start", json={"dagRunId": run_id}, timeout=60)
                    time.sleep(stagger)
                time.sleep(skip)
                began, cpu_began = time.monotonic(), tree_cpu_seconds(srv.proc.pid)
                time.sleep(window)
                ended, cpu_ended = time.monotonic(), tree_cpu_seconds(srv.proc.pid)
                rates: List[float] = []
                latencies: List[float] = []
                for run_id, launch, watcher, _ in launches:
                    outcome = launch.wait(600)
                    watcher.join(5)
                    assert proxy is not None
                    rates.append(proxy.per_minute(began, ended, run_id))
                    if outcome.code != 0 or watcher.ended_at is None:
                        said = outcome.stderr.strip().splitlines()[-3:]
                        self.failures.append(
                            f"real quiet run {run_id}: exit {outcome.code}, end seen: "
                            f"{watcher.ended_at is not None}; {said}"
                        )
                    else:
                        latencies.append(outcome.exited_wall - watcher.ended_at)
                return (cpu_ended - cpu_began) / (ended - began), rates, latencies
            finally:
                if proxy is not None:
                    proxy.close()


@dataclass
class FollowersResult:
    count: int
    window: float
    cores_unfollowed: float  # the server tree's CPU (in cores) with the runs but no followers
    cores_followed: float  # the same with a follower per run
    rates: List[float]  # each follower's requests per minute in the window
    latencies: List[float]  # each quiet run's end latency

    @property
    def per_follower_percent(self) -> float:
        return max(0.0, self.cores_followed - self.cores_unfollowed) * 100.0 / self.count
