"""`python -m bench [--quick|--smoke] [--only SECTION,...]`: measure the figures of issues 5, 11
and 17, print one table, write bench/RESULTS.md (a full or --quick run of every section) with the
command and the machine."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, List, Optional

from bench import startover
from bench.cli import command as command_line, has_option
from bench.fanout import measure_fanout, notes as fanout_notes
from bench.real import REAL_VERSION, RealBench, real_binary
from bench.scenarios import POLL, POLL_OLD, PUSH, Bench, Running, RunResult, Variant, count_lines, fixed_poller_baseline
from bench.stats import Figure, Figures, at_least, at_most, markdown_table, text_table
from bench.worker import measure_worker, notes as worker_notes

HERE = os.path.dirname(os.path.abspath(__file__))
NOT_YET = "n/a (not implemented yet)"
SECTIONS = ("startup", "first-line", "end", "silent", "logs", "rss", "real", "worker", "fanout", "overhead")
END_PUSH, END_POLL, SPREAD = 0.15, 0.3, 2.0  # issue 17: medians, and p90 within 2x the median


@dataclass(frozen=True)
class Sizes:
    reps: int = 5
    silent_reps: int = 7  # the silent-step end falls at a random phase of the poll: more samples
    startup_reps: int = 10
    active: float = 3.0  # seconds a busy run lasts
    silence: float = 60.0  # the silent (and chatty) step's length
    stagger: float = 6.0  # parallel long runs start this far apart, so their ends never overlap
    log_lines: int = 100_000
    rss_big: int = 1_000_000
    rss_small: int = 10_000
    heartbeat: Optional[float] = None  # the fake's SSE heartbeat; None: its default (10 s, as Dagu)
    container: bool = True  # start overhead inside the image too (buildah; issue 14)
    end_reps: int = 10  # end latency of an active run: enough samples for a p90
    real: bool = True  # the real-server figures (they need .tools/dagu/1.30.3/dagu)
    followers: int = 20
    follower_quiet: float = 100.0  # the followed runs' quiet step (the CPU window is inside it)

    @property
    def skip(self) -> float:
        """Load is counted after the first 10 s (scaled for short silences)."""
        return min(10.0, self.silence / 3)


FULL = Sizes()
QUICK = Sizes(silence=15.0, stagger=3.0)
SMOKE = Sizes(
    reps=1,
    silent_reps=1,
    startup_reps=1,
    active=0.3,
    silence=1.0,
    stagger=0.2,
    log_lines=2000,
    rss_big=10_000,
    rss_small=1_000,
    heartbeat=0.1,
    container=False,
    end_reps=1,
    real=False,
)


def staggered(
    bench: Bench, start: Callable[[Variant], Running], variants: List[Variant], sizes: Sizes, reps: int
) -> dict:
    """reps x variants long runs in parallel, started `stagger` apart; results per variant label."""
    running = []
    for _ in range(reps):
        for variant in variants:
            running.append((variant.label, start(variant)))
            time.sleep(sizes.stagger)
    results: dict = {v.label: [] for v in variants}
    for label, handle in running:
        results[label] += measured([handle.finish(timeout=sizes.silence + 120)])
    return results


def measured(results: List[RunResult]) -> List[RunResult]:
    """The runs that ended on the server: one that did not is in bench.failures (a warning), not a figure."""
    return [result for result in results if result.finished is not None]


def measure(sizes: Sizes, tmp: str, log: Callable[[str], None], sections=SECTIONS) -> tuple:
    bench = Bench(tmp, {"sse_heartbeat": sizes.heartbeat} if sizes.heartbeat else None)
    poll_ok = has_option("run", "--no-push")
    figures = Figures()
    fig = figures.add

    if "startup" in sections:
        _startup(bench, sizes, fig, log)
    if "first-line" in sections:
        _first_line(bench, sizes, fig, log)
    if "end" in sections:
        _end_active(bench, sizes, fig, log, poll_ok)
    if "silent" in sections:
        _silent(bench, sizes, fig, log, poll_ok)
    if "logs" in sections:
        _logs(bench, sizes, fig, log)
    if "rss" in sections:
        _rss(bench, sizes, fig, log)
    if "real" in sections and sizes.real:
        _real(RealBench(tmp), sizes, fig, log, bench.failures)
    if "worker" in sections:  # 7. Issue 16: a quiet run on a distributed worker (bench/worker.py).
        measure_worker(bench, sizes, fig, log, poll_ok, real=sizes.real)
    if "fanout" in sections:  # 8. Issue 13: a fan-out of 100 sub-DAG runs (bench/fanout.py).
        measure_fanout(sizes.silence, fig, log, smoke=sizes is SMOKE)
    if "overhead" in sections:  # 14. Start overhead (bench/startover.py).
        figures += startover.measure(tmp, sizes.startup_reps, log, image=sizes.container)
    return figures, bench.failures, poll_ok


def _startup(bench: Bench, sizes: Sizes, fig: Callable[..., Figure], log: Callable[[str], None]) -> None:
    # 5. Start-up (first: nothing else is running yet).
    log("start-up")
    fig(
        "5 start-up: dagu-ci --version",
        "ms",
        "<= 150",
        at_most(150),
        [t * 1000 for t in bench.startup(["--version"], sizes.startup_reps)],
        decimals=0,
    )
    fig(
        "5 start-up: dagu-ci run --help",
        "ms",
        "<= 150",
        at_most(150),
        [t * 1000 for t in bench.startup(["run", "--help"], sizes.startup_reps)],
        decimals=0,
    )


def _first_line(bench: Bench, sizes: Sizes, fig: Callable[..., Figure], log: Callable[[str], None]) -> None:
    # 6. Time to first log line, default flags (push on 2.6.5).
    log("time to first log line")
    ttfl: List[float] = []
    for _ in range(sizes.reps):
        result = bench.first_line(PUSH)
        if result.outcome.first_line is not None:
            ttfl.append(result.outcome.first_line - result.outcome.started)
    fig("6 time to first log line (incl. detection, start)", "s", "<= 1.0", at_most(1.0), ttfl)


def _end_active(
    bench: Bench, sizes: Sizes, fig: Callable[..., Figure], log: Callable[[str], None], poll_ok: bool
) -> None:
    # 1. End detection, a run active until its end (issue 17's targets).
    push_target = (f"<= {END_PUSH:g}", at_most(END_PUSH))
    poll_target = (f"<= {END_POLL:g}", at_most(END_POLL))
    targets = {PUSH.label: push_target, POLL.label: poll_target, POLL_OLD.label: poll_target}
    for variant in (PUSH, POLL, POLL_OLD):
        name = f"1 end latency, active run: {variant.label}"
        if variant is POLL and not poll_ok:
            fig(name, "s", *targets[variant.label], missing=NOT_YET)
            continue
        log(name)
        runs = measured([bench.end_latency_active(variant, sizes.active) for _ in range(sizes.end_reps)])
        fig(name, "s", *targets[variant.label], [r.latency for r in runs], p90_within=SPREAD)


def _silent(bench: Bench, sizes: Sizes, fig: Callable[..., Figure], log: Callable[[str], None], poll_ok: bool) -> None:
    # 1 + 2. A last step silent for `silence` s: end latency and REST load, push and poll in parallel.
    variants = [PUSH] + ([POLL] if poll_ok else [])
    log(f"silent step ({sizes.silence:.0f} s), {len(variants)} variant(s) x {sizes.silent_reps}, staggered")
    silent = staggered(bench, lambda v: bench.silent(v, sizes.silence), variants, sizes, sizes.silent_reps)
    log(f"chatty step ({sizes.silence:.0f} s)")
    chatty = staggered(bench, lambda v: bench.chatty(v, sizes.silence), variants, sizes, sizes.reps)
    silence_note = f"silent {sizes.silence:.0f} s"
    fig(f"1 end latency, last step {silence_note}: push", "s", samples=[r.latency for r in silent[PUSH.label]])
    name = f"1 end latency, last step {silence_note}: poll --no-push"
    if poll_ok:
        fig(name, "s", "<= 2", at_most(2.0), [r.latency for r in silent[POLL.label]])
    else:
        fig(name, "s", "<= 2", at_most(2.0), missing=NOT_YET)
    base = fixed_poller_baseline(10.0)
    fig(
        "1 baseline: fixed 10 s poller (analytic, T/2)",
        "s",
        samples=[base["min"], base["median"], base["max"]],
        note="uniform end phase: median T/2, range 0..T; not measured",
    )
    load_note = f"after the first {sizes.skip:.0f} s"
    fig(
        f"2 REST req/min, {silence_note}: push",
        "req/min",
        "<= 6",
        at_most(6.0),
        [r.rest_per_minute(sizes.skip) for r in silent[PUSH.label]],
        note=load_note,
        decimals=1,
    )
    name = f"2 REST req/min, {silence_note}: poll --no-push"
    if poll_ok:
        fig(
            name,
            "req/min",
            "<= 30",
            at_most(30.0),
            [r.rest_per_minute(sizes.skip) for r in silent[POLL.label]],
            note=load_note,
            decimals=1,
        )
    else:
        fig(name, "req/min", "<= 30", at_most(30.0), missing=NOT_YET)
    for variant in variants:
        fig(
            f"2 REST req/min, chatty step (4 lines/s): {variant.label}",
            "req/min",
            samples=[r.rest_per_minute(sizes.skip) for r in chatty[variant.label]],
            note=load_note,
            decimals=1,
        )
    fig("2 baseline: fixed 10 s poller", "req/min", samples=[base["requests_per_minute"]], note="analytic", decimals=1)


def _logs(bench: Bench, sizes: Sizes, fig: Callable[..., Figure], log: Callable[[str], None]) -> None:
    # 3. Log efficiency and throughput, default flags.
    log(f"log efficiency ({sizes.log_lines:,} lines)")
    burst: List[RunResult] = [bench.big_log(PUSH, sizes.log_lines) for _ in range(sizes.reps)]
    paced: List[RunResult] = [bench.big_log(PUSH, sizes.log_lines, bursts=10, pause=0.3) for _ in range(sizes.reps)]
    n = f"{sizes.log_lines:,}"
    fig(
        f"3 log bytes fetched / log bytes, {n} lines in one burst",
        "ratio",
        "<= 1.25",
        at_most(1.25),
        [r.log_request_bytes / max(1, r.log_bytes) for r in burst],
        decimals=3,
        note=f"step-log requests; all requests incl. status and stream: "
        f"{_median([r.all_bytes / max(1, r.log_bytes) for r in burst]):.3f}",
    )
    fig(
        f"3 log bytes fetched / log bytes, {n} lines in 10 bursts 0.3 s apart",
        "ratio",
        "<= 1.25",
        at_most(1.25),
        [r.log_request_bytes / max(1, r.log_bytes) for r in paced],
        decimals=3,
        note=f"all requests: {_median([r.all_bytes / max(1, r.log_bytes) for r in paced]):.3f}",
    )
    complete = all(count_lines(r.outcome.stdout_path, b" line ") >= sizes.log_lines for r in burst)
    fig(
        f"3 end-to-end lines/s, stdout to a file ({n} lines)",
        "lines/s",
        ">= 20,000",
        at_least(20_000),
        [sizes.log_lines / (r.outcome.exited - r.began) for r in burst],
        decimals=0,
        note="lines / (exit - run start); the step writes them all at once"
        + ("" if complete else "; SOME OUTPUT MISSING"),
    )


def _rss(bench: Bench, sizes: Sizes, fig: Callable[..., Figure], log: Callable[[str], None]) -> None:
    # 4. Peak RSS of the dagu-ci process.
    rss = {}
    for count in (sizes.rss_big, sizes.rss_small):
        log(f"peak RSS ({count:,} lines)")
        rss[count] = [bench.big_log(PUSH, count, rss=True).outcome.maxrss_kb / 1024 for _ in range(sizes.reps)]
    fig(
        f"4 peak RSS, {sizes.rss_big:,}-line log (~{sizes.rss_big * 80 / 1e6:.0f} MB)",
        "MB",
        "<= 60",
        at_most(60),
        rss[sizes.rss_big],
        decimals=1,
        note="ru_maxrss of the dagu-ci process (RUSAGE_CHILDREN in a small wrapper)",
    )
    fig(
        f"4 peak RSS, {sizes.rss_small:,}-line log",
        "MB",
        samples=rss[sizes.rss_small],
        decimals=1,
        note=f"big - small: {_median(rss[sizes.rss_big]) - _median(rss[sizes.rss_small]):+.1f} MB (flat: ~0)",
    )


def _real(
    real: RealBench, sizes: Sizes, fig: Callable[..., Figure], log: Callable[[str], None], failures: List[str]
) -> None:
    """Issue 11 item 5 and issue 17 on a real server. 2.6.5 (push) cannot be built here."""
    v = REAL_VERSION
    names = (
        f"1 end latency, active run: poll, real {v}",
        f"1 end latency, last step silent: poll, real {v}",
        f"2 REST req/min, silent step: poll, real {v}",
        f"7 server CPU per follower, {sizes.followers} quiet followers: poll, real {v}",
    )
    if real_binary(v) is None:
        missing = f"n/a (no {v} binary: make dagu-servers)"
        for name in names:
            fig(name, "-", missing=missing)
        return
    log(names[0])
    fig(
        names[0],
        "s",
        f"<= {END_POLL:g}",
        at_most(END_POLL),
        real.end_latency_active(sizes.active, sizes.end_reps),
        p90_within=SPREAD,
        note="end: the status file's last write (see Method)",
    )
    log(
        f"{sizes.followers} followers of quiet runs on one real {v}, and the same runs unfollowed (~{2 * sizes.follower_quiet / 60:.0f} min)"
    )
    result = real.followers(sizes.followers, sizes.follower_quiet, skip=10.0, stagger=0.5)
    failures.extend(real.failures)
    fig(names[1], "s", "<= 2", at_most(2.0), result.latencies, note="through the counting proxy")
    fig(
        names[2],
        "req/min",
        "<= 30",
        at_most(30.0),
        result.rates,
        decimals=1,
        note=f"one sample per follower, counted by a proxy in front of the server, over a {result.window:.0f} s window",
    )
    fig(
        names[3],
        "% of a core",
        "<= 1",
        at_most(1.0),
        [result.per_follower_percent],
        decimals=2,
        note=f"server tree CPU {result.cores_followed * 100:.2f}% of a core with {result.count} followers, "
        f"{result.cores_unfollowed * 100:.2f}% with the same runs unfollowed; (difference) / {result.count}",
    )


def _median(values: List[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> List[str]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        cores = str(os.cpu_count())
    return [
        f"- nproc: {cores}",
        f"- CPU: {cpu}",
        f"- Python: {platform.python_version()} ({sys.executable})",
        f"- OS: {platform.platform()}",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %z')}",
    ]


def results_md(figures: List[Figure], failures: List[str], command: str, elapsed: float, sizes: Sizes) -> str:
    parts = [
        "# dagu-ci benchmarks (issues 5, 11, 17)",
        "",
        f"Produced by `{command}` in {elapsed / 60:.1f} min. Each figure: median of the samples (n), with min, max and p90.",
        "",
        "## Machine",
        "",
        *machine(),
        "",
        "## Figures",
        "",
        markdown_table(figures),
        "",
        "## Method",
        "",
        "- Every run uses a fresh fake Dagu server (`tests/fakedagu`, real HTTP on loopback) in the harness's "
        "process and the real `dagu-ci run` CLI as a subprocess, default flags unless named "
        "(push = a 2.6.5 server with its events stream; poll = `--no-push`, or a 2.2.0 server).",
        "- The fake pushes run changes on Dagu's 1 s event-store invalidation tick (`sse_invalidation=1.0`), "
        "so push figures include up to 1 s of server-side delay, as against a real server.",
        "- End latency: the run's `finished_at_monotonic` (the fake's last status write for the run, the one with "
        "`finishedAt`, as Dagu's agent writes it after the handlers and the outputs) to the moment a thread "
        "blocked in `wait4` on the CLI returns; same monotonic clock. Targets (issue 17): median <= 0.15 s with "
        "push, <= 0.3 s polling, and the p90 at most 2x the median.",
        f"- Active run: one step printing every 0.1 s for {sizes.active:.0f} s plus a random 0-1 s (busy to the "
        "end), so that the end falls at a random phase of dagu-ci's polls (a fixed length locks it to one phase; "
        "the same on the real server, through params). Silent run: one step printing once, "
        f"then nothing for {sizes.silence:.0f} s. Long runs go in parallel, started {sizes.stagger:.0f} s apart so "
        "that no two ends overlap.",
        f"- Load: REST requests (the stream connection excluded) from {sizes.skip:.0f} s after the run began to its "
        "end, per minute. Chatty: a line every 0.25 s.",
        "- Fixed 10 s poller baseline: analytic (a run ends at a uniformly random phase of the poll: wait "
        "uniform on [0, 10) s, median and mean 5 s; 6 requests/min). Not measured.",
        "- Log ratio: bytes of the step-log responses (JSON) over the log files' bytes. Lines/s: log lines over "
        "(CLI exit - run start), stdout redirected to a file, for a step writing all its lines at once.",
        "- Peak RSS: `ru_maxrss` of the dagu-ci process, read by a small wrapper process (`RUSAGE_CHILDREN`), so the harness's own size cannot leak in through fork.",
        f"- The CLI: `{' '.join(command_line())}`"
        + (
            " (a plain `pip install .`, as in the image, not the editable dev install)."
            if os.environ.get("DAGU_CI_BENCH_BIN")
            else "."
        ),
        "- Start-up: wall time of that console script, stdout to /dev/null.",
        "- Time to first log line: from just before spawning the CLI to the first stdout line holding the step's "
        "first line (read through a pipe), against a 2.6.5 server.",
        f"- Real server (`real` rows): Dagu {REAL_VERSION} built from its module (`tests/real`), started by "
        "`tests/real/server.py` with a throwaway DAGU_HOME. Only polling: 1.x has no events stream, and 2.6.5 "
        "(push) cannot be built here (the Go module proxy refuses it), so push against poll on a real server is "
        "not measured.",
        "- Real end time: Dagu's agent appends every status write to the attempt's `status.jsonl` under "
        "DAGU_HOME, and the API answers from that file. A watcher thread stats it every 2 ms and, on each change, "
        "reads the last record; the first one that is terminal with `finishedAt` is the agent's last write (the "
        "end dagu-ci waits for), timed by the file's mtime (the kernel's CLOCK_REALTIME stamp of that write). "
        "The latency is the wall time when `wait4` returned on the CLI minus that stamp: one clock on one "
        "machine. The agent rewrites (compacts) the file when it closes it, a few ms later; a watcher that only "
        "saw the file after that takes the later stamp, so a figure can come out a few ms short, never long.",
        "- Real quiet-step load: the followers talk to the server through a small counting HTTP proxy in the "
        "harness (HTTP/1.1 keep-alive towards dagu-ci, Nagle off); requests naming the run, per minute, over a "
        "window starting 10 s after the last follower started.",
        "- Server CPU per follower: one real server, 20 quiet runs (one step: a line, then `sleep`), each "
        "followed by its own `dagu-ci run` (default flags) through the proxy; then the same 20 runs on a fresh "
        "server with nobody following. CPU of the server's process tree (the server, the run agents, their "
        "steps) over the same window: the sum of utime+stime+cutime+cstime in /proc/PID/stat of the server and "
        "every live descendant, read at the window's start and end. Per follower: (followed - unfollowed) / 20, "
        "in % of one core.",
        *worker_notes(),
        *fanout_notes(),
    ]
    if failures:
        parts += ["", "## Runs that did not end as expected", ""] + [f"- {f}" for f in failures]
    parts += ["", *startover.section(figures)]
    return "\n".join(parts) + "\n"


def start_overhead_only(output: str) -> int:
    tmp = tempfile.mkdtemp(prefix="dagu-ci-bench-")
    try:
        figures = startover.measure(
            tmp, FULL.startup_reps, lambda text: print(f"bench: {text}", file=sys.stderr, flush=True)
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(text_table(figures))
    results = "# dagu-ci benchmarks\n"
    if os.path.exists(output):
        with open(output) as handle:
            results = handle.read()
    lines = [
        *startover.section(figures),
        markdown_table(figures),
        "",
        f"(`python -m bench --start-overhead`, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores; "
        f"the CLI: `{' '.join(command_line())}`)",
    ]
    with open(output, "w") as handle:
        handle.write(startover.replace_section(results, lines))
    print(f"bench: wrote the start-overhead section of {output}", file=sys.stderr)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="silent/chatty steps of 15 s instead of 60 s")
    mode.add_argument("--smoke", action="store_true", help="tiny sizes, 1 repetition (keeps the harness alive)")
    mode.add_argument(
        "--start-overhead",
        action="store_true",
        help="only the start-overhead figures (issue 14); replaces their section of RESULTS.md",
    )
    parser.add_argument(
        "--output",
        help="where to write the results (default: bench/RESULTS.md for a run of "
        "every section; none for --smoke or --only)",
    )
    parser.add_argument("--only", help=f"comma-separated sections to run: {','.join(SECTIONS)}")
    args = parser.parse_args(argv)
    if args.start_overhead:
        return start_overhead_only(args.output or os.path.join(HERE, "RESULTS.md"))
    sizes = SMOKE if args.smoke else QUICK if args.quick else FULL
    sections = tuple(args.only.split(",")) if args.only else SECTIONS
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    output = args.output or (None if args.smoke or args.only else os.path.join(HERE, "RESULTS.md"))
    command = (
        "make bench"
        if not (args.quick or args.smoke or args.only)
        else "python -m bench " + " ".join(argv or sys.argv[1:])
    )

    tmp = tempfile.mkdtemp(prefix="dagu-ci-bench-")
    began = time.monotonic()
    try:
        figures, failures, _ = measure(
            sizes, tmp, lambda text: print(f"bench: {text}", file=sys.stderr, flush=True), sections
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.monotonic() - began
    print(text_table(figures))
    for failure in failures:
        print(f"bench: warning: {failure}", file=sys.stderr)
    if output:
        with open(output, "w") as handle:
            handle.write(results_md(figures, failures, command, elapsed, sizes))
        print(f"bench: wrote {output} ({elapsed / 60:.1f} min)", file=sys.stderr)
    return 0
