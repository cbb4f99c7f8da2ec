"""Runs on a distributed Dagu worker (issue 16): the step log reaches the server in bursts
cut anywhere (mid-line, mid-character), and a cut can stand still for minutes. dagu-ci
shows such a log in whole lines, each once, in order; says once which worker runs it; and
local runs keep their quiet release of a held-back line (a prompt)."""

from __future__ import annotations

import io
import time
from typing import List

import pytest

from dagu_ci.follow.events import Tick
from dagu_ci.follow.logtail import RELEASE_AFTER, LogTailer, ReadMode
from dagu_ci.reporters.progress import Progress, Screen
from dagu_ci.server.api import DaguClient, RunStart, Started
from dagu_ci.server.client import Connection, Retry
from dagu_ci.server.models import RunSnapshot
from tests.conftest import WAIT_LIMIT, eventually, start_cli
from tests.fakedagu import Dag, FakeDagu, Step, hold, lines, out, raw
from tests.test_run_e2e import CONTINUED, FAST, log_lines

# 1000 lines of 70 KB: the first burst (64 KB) ends 2 bytes into a "€" of line 925.
TEMPLATE = "row {i}a: déjà vu, naïve café — €€€ ✓ 日本語のログ"
COUNT = 1000
WORKER = "gpu-worker-1"
NOTICE = f"the run executes on worker {WORKER}"


def rows(count: int = COUNT, template: str = TEMPLATE) -> List[str]:
    return [template.replace("{i}", str(i)) for i in range(1, count + 1)]


def worker_dag(*steps: Step, worker: str = WORKER) -> Dag:
    return Dag(file="train", steps=list(steps), worker=worker)


def file_bytes(server: FakeDagu, run_id: str, step: str) -> bytes:
    with open(server.get_run("train", run_id).node(step).stdout, "rb") as handle:
        return handle.read()


def reads_of(server: FakeDagu, step: str, after: float) -> List[float]:
    return [r.time for r in server.requests if r.path.endswith(f"/steps/{step}/log") and r.time > after]


# -- the fake: bursts as Dagu 2.6.5's coordinator writes them -----------------------------


def test_the_fake_writes_a_workers_log_in_64_kb_bursts_cut_mid_character():
    with FakeDagu(version="2.6.5") as server:
        server.add_dag(worker_dag(Step("work", [out("first"), hold("quiet"), lines(COUNT, TEMPLATE), hold("end")])))
        client = DaguClient(Connection(url=server.url))
        client.detect()
        assert client.start_run("train", RunStart(run_id="r"), enqueue=False) is Started.NEW
        server.wait_held("quiet")
        assert client.get_run("train", "r").worker_id == WORKER
        # A line of 6 bytes is nowhere near a burst: the server has no file yet.
        assert client.read_log("train", "r", "work", "stdout", Retry.for_seconds(30)) is None
        server.release("quiet")
        server.wait_held("end")
        data = file_bytes(server, "r", "work")
        assert len(data) == 64 * 1024 + len(b"first\n") and not data.endswith(b"\n")
        assert data.endswith("€".encode()[:2])  # cut inside a character, and stays so while the step is quiet
        page = client.read_log("train", "r", "work", "stdout", Retry.for_seconds(30), offset=1, limit=10000)
        assert page is not None and page.lines[-1].endswith("\ufffd\ufffd")  # Go's JSON: one per byte
        server.release("end")
        server.wait_for_status("train", "r", 4)
        assert file_bytes(server, "r", "work").decode().splitlines() == ["first"] + rows()  # all, at the step's end
        client.close()


# -- the tailer, on its own clock --------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_workers_cut_line_is_held_for_minutes_and_shown_whole_once():
    steps = [Step("work", [lines(COUNT, TEMPLATE), hold("end"), raw("tail without newline")])]
    with FakeDagu(version="2.6.5") as server:
        server.add_dag(worker_dag(*steps))
        client = DaguClient(Connection(url=server.url))
        client.detect()
        assert client.start_run("train", RunStart(run_id="r"), enqueue=False) is Started.NEW
        server.wait_held("end")
        clock = Clock()
        tailer = LogTailer(client, "train", "r", lambda: Retry.for_seconds(30), clock=clock)
        tailer.whole_lines = True

        def read(mode: ReadMode) -> List[str]:
            step = client.get_run("train", "r").step("work")
            assert step is not None
            return [line for chunk in tailer.read(step, "stdout", step.stdout, mode) for line in chunk.lines]

        shown = read(ReadMode.LIVE)
        assert shown == rows()[:924]  # whole lines only: line 925 is cut
        assert tailer.pending() == ["work"]
        for _ in range(5):
            clock.now += 60.0  # minutes without a burst: still held back
            assert read(ReadMode.LIVE) == []
        server.release("end")
        server.wait_for_status("train", "r", 4)
        shown += read(ReadMode.FLUSH)  # the step's end: all of it, the last line as it is
        shown += read(ReadMode.FINAL)
        assert shown == rows() + ["tail without newline"]
        assert tailer.pending() == []
        client.close()


def test_a_local_line_cut_mid_character_is_released_without_a_replacement_character():
    """The quiet release stays for local runs, and a cut inside a character shows nothing of it."""
    steps = [Step("brew", [raw(b"caf\xc3"), hold("rest"), raw(b"\xa9 au lait\n")])]
    with FakeDagu(version="2.6.5") as server:
        server.add_dag(Dag(file="cafe", steps=steps))
        client = DaguClient(Connection(url=server.url))
        client.detect()
        assert client.start_run("cafe", RunStart(run_id="r"), enqueue=False) is Started.NEW
        server.wait_held("rest")
        clock = Clock()
        tailer = LogTailer(client, "cafe", "r", lambda: Retry.for_seconds(30), clock=clock)

        def read(mode: ReadMode) -> List[str]:
            step = client.get_run("cafe", "r").step("brew")
            assert step is not None
            return [line for chunk in tailer.read(step, "stdout", step.stdout, mode) for line in chunk.lines]

        eventually(lambda: read(ReadMode.LIVE) == [] and tailer.pending(), "the flushed half line")
        clock.now += RELEASE_AFTER
        assert read(ReadMode.LIVE) == ["caf"]  # released, without "\ufffd" for the cut "é"
        server.release("rest")
        server.wait_for_status("cafe", "r", 4)
        assert read(ReadMode.FLUSH) == ["é au lait"]  # the rest, the whole character in it
        client.close()


# -- end to end ---------------------------------------------------------------------------


def test_worker_run_shows_whole_lines_once_and_names_its_worker_once(fake_factory):
    steps = [
        Step("prepare", [out("fetching data")]),
        Step("work", [lines(COUNT, TEMPLATE), hold("quiet"), lines(3, "more {i}"), raw("done")], depends=["prepare"]),
    ]
    server = fake_factory(worker_dag(*steps), version="2.6.5", sse=False)
    proc = start_cli("run", "train", "--url", server.url, "--run-id", "r", *FAST)
    server.wait_held("quiet")
    cut = time.monotonic()
    assert not file_bytes(server, "r", "work").endswith(b"\n")  # the burst ends mid-line
    proc.wait_for("row 924a")  # the whole lines of the burst are shown
    # dagu-ci has looked at the cut line twice, further apart than a local line is held:
    # a local run would have shown it by now.
    eventually(
        lambda: (lambda t: len(t) >= 2 and t[-1] - t[0] >= RELEASE_AFTER + 0.5)(reads_of(server, "work", cut)),
        "two reads of the quiet log, RELEASE_AFTER apart",
        timeout=2 * WAIT_LIMIT,
    )
    assert log_lines(proc.stdout) == ["fetching data"] + rows()[:924]
    server.release("quiet")
    result = proc.finish()
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == ["fetching data"] + rows() + ["more 1", "more 2", "more 3", "done"]
    assert not [row for row in result.stdout.splitlines() if row.startswith(CONTINUED)]
    assert "\ufffd" not in result.stdout
    assert result.output.count(NOTICE) == 1 and "may arrive in bursts" in result.output, result.output


@pytest.mark.parametrize("version, worker", [("2.6.5", None), ("1.30.3", None), ("1.30.3", WORKER)])
def test_local_runs_and_1x_workers_still_release_a_quiet_half_line(fake_factory, version, worker):
    """A local run (workerId "local"), or a 1.x worker, which writes the server's files itself
    (shared storage), flushed every 500 ms: a prompt still shows while it waits."""
    steps = [Step("work", [raw("Password: "), hold("answer"), out("accepted")])]
    server = fake_factory(Dag(file="train", steps=steps, worker=worker), version=version, sse=False)
    proc = start_cli("run", "train", "--url", server.url, *FAST)
    proc.wait_for("Password: ")
    server.release("answer")
    result = proc.finish()
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == ["Password: accepted"]
    if worker:
        assert result.output.count(NOTICE) == 1 and "bursts" not in result.output, result.output
    else:
        assert "executes on worker" not in result.output


def test_the_progress_line_says_output_is_pending():
    stream = io.StringIO()
    progress = Progress(Screen(stream), say=lambda text: None, interactive=True)
    snapshot = RunSnapshot.from_api({"name": "train", "dagRunId": "r", "status": 1, "workerId": WORKER})
    progress.on_tick(Tick(snapshot, pending=("work",)))
    assert "output pending: work" in stream.getvalue()
    progress.on_tick(Tick(snapshot))
    assert stream.getvalue().rsplit("\r\033[2K", 1)[-1].find("pending") < 0
