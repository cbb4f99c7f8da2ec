"""Issue 16: a quiet run on a distributed worker, next to the same run on the server itself.

Fake (2.6.5, `Dag(worker=...)`): the step's log reaches the server only in 64 KB bursts and
at the step's end, so a quiet step has no log file until it ends. Real 1.30.3 (when built):
a `dagu worker` with the server's DAGU_HOME (1.30 has no other way to report back), the run
enqueued (1.30 sends only queued runs to workers), against the same step run locally.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from typing import Callable, List, Optional

from bench.cli import ROOT, clean_env, command
from bench.scenarios import POLL, PUSH, Bench, Running, Variant
from bench.stats import Figure, Figures
from tests.fakedagu import Dag, Step, out, sleep

WORKER = "bench-worker"
REAL_VERSION = "1.30.3"
REAL_REPS = 3  # one run at a time, each as long as the silence: keep `make bench` bearable

Fig = Callable[..., Figure]


def silent_worker(bench: Bench, variant: Variant, seconds: float) -> Running:
    """The silent step of figures 1 and 2, executed by a worker."""
    dag = Dag(file="silentworker", steps=[Step("quiet", [out("starting"), sleep(seconds)])], worker=WORKER)
    return bench.start(variant, dag)


def measure_worker(
    bench: Bench, sizes, fig: Fig, log: Callable[[str], None], poll_ok: bool, real: bool, with_local: bool = False
) -> None:
    """Figures 7; `with_local`: the same silent step on the server itself, in the same batch
    (`make bench` has it as figures 1 and 2 already)."""
    from bench.run import staggered  # the harness's (imported late: bench.run imports this module)

    variants = [PUSH] + ([POLL] if poll_ok else [])
    kinds = [("worker", silent_worker)] + ([("local", lambda b, v, s: b.silent(v, s))] if with_local else [])
    batch = [Variant(f"{kind} {v.label}", v.version, v.flags) for kind, _ in kinds for v in variants]
    starters = {f"{kind} {v.label}": (start, v) for kind, start in kinds for v in variants}
    log(f"silent step ({sizes.silence:.0f} s), {len(batch)} variant(s) x {sizes.silent_reps}")

    def start(variant: Variant) -> Running:
        starter, real_variant = starters[variant.label]
        return starter(bench, real_variant, sizes.silence)

    runs = staggered(bench, start, batch, sizes, sizes.silent_reps)
    for variant in batch:
        results = runs[variant.label]
        where = "2.6.5 fake" + ("; a worker without shared storage" if variant.label.startswith("worker") else "")
        fig(
            f"7 end latency, {variant.label} run, silent {sizes.silence:.0f} s",
            "s",
            samples=[r.latency for r in results],
            note=where,
        )
        fig(
            f"7 REST req/min, {variant.label} run, silent {sizes.silence:.0f} s",
            "req/min",
            samples=[r.rest_per_minute(sizes.skip) for r in results],
            note=f"{where}; after the first {sizes.skip:.0f} s",
            decimals=1,
        )
    if not real:
        return
    measured = real_worker_latency(sizes, log)
    if measured is None:
        fig(
            f"7 end latency, real {REAL_VERSION} worker run silent {sizes.silence:.0f} s",
            "s",
            missing=f"n/a (no Dagu {REAL_VERSION} built)",
        )
        return
    worker, local = measured
    fig(
        f"7 end latency, real {REAL_VERSION} worker run silent {sizes.silence:.0f} s",
        "s",
        samples=worker,
        note="step's end to dagu-ci's exit (includes Dagu's own finishing); shared DAGU_HOME, --enqueue",
    )
    fig(
        f"7 end latency, real {REAL_VERSION} local run silent {sizes.silence:.0f} s",
        "s",
        samples=local,
        note="the same, run by the server itself (--enqueue too)",
    )


# -- real Dagu 1.30.3 ---------------------------------------------------------------------

REAL_DAG = """{selector}
steps:
  - name: quiet
    script: |
      echo starting
      sleep {seconds}
      date +%s.%N > {stamp}
"""


def real_worker_latency(sizes, log: Callable[[str], None]) -> Optional[tuple]:
    """(worker samples, local samples): dagu-ci's exit minus the wall time the step wrote as
    its last act. A real server keeps no sub-second end time, hence the step's own stamp."""
    from tests.real import builds
    from tests.real.server import RealDagu

    if REAL_VERSION not in builds.available():
        return None
    seconds = max(1, int(sizes.silence))
    tmp = tempfile.mkdtemp(prefix="dagu-ci-bench-worker-")
    server = RealDagu(REAL_VERSION, builds.BY_VERSION[REAL_VERSION].binary, coordinator=True)
    try:
        dags = {
            name: REAL_DAG.format(selector=selector, seconds=seconds, stamp=os.path.join(tmp, f"{name}.stamp"))
            for name, selector in (("onworker", "workerSelector:\n  pool: bench"), ("onserver", ""))
        }
        server.start(dags)
        server.add_worker(WORKER, {"pool": "bench"}, max_active_runs=2)
        samples: dict = {"onworker": [], "onserver": []}
        reps = min(sizes.silent_reps, REAL_REPS)
        for rep in range(reps):
            for name in samples:
                log(f"real {REAL_VERSION}: {name} {rep + 1}/{reps}")
                exited = _run_real(server.url, name, f"{name}-{rep}", tmp)
                with open(os.path.join(tmp, f"{name}.stamp")) as handle:
                    samples[name].append(exited - float(handle.read()))
        return samples["onworker"], samples["onserver"]
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _run_real(url: str, dag: str, run_id: str, tmp: str) -> float:
    """Wall time when dagu-ci exited."""
    proc = subprocess.Popen(
        command() + ["run", dag, "--enqueue", "--url", url, "--run-id", run_id],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=clean_env(os.path.join(tmp, "state")),
        cwd=ROOT,
    )
    proc.wait(timeout=600)
    exited = time.time()
    if proc.returncode != 0:
        raise RuntimeError(f"dagu-ci run {dag} exited {proc.returncode}")
    return exited


def notes() -> List[str]:
    return [
        "- Worker runs (issue 16, figures 7): the fake (2.6.5) models a worker without shared storage: its step "
        "log reaches the server in 64 KB bursts and at the step's end only, so the quiet step has no log file "
        "until it ends. Real 1.30.3: a `dagu worker` sharing the server's DAGU_HOME; end latency from the "
        "step's last command (a timestamp it writes) to dagu-ci's exit, so Dagu's own finishing is included.",
    ]


def main() -> int:
    """`python -m bench.worker [--quick]`: figures 7 alone, as a Markdown table on stdout."""
    import argparse
    import sys

    from bench.cli import has_option
    from bench.run import FULL, QUICK
    from bench.stats import markdown_table

    parser = argparse.ArgumentParser(prog="python -m bench.worker", description=main.__doc__)
    parser.add_argument("--quick", action="store_true", help="steps of 15 s instead of 60 s")
    parser.add_argument("--no-real", action="store_true", help=f"leave out real Dagu {REAL_VERSION}")
    parser.add_argument("--with-local", action="store_true", help="the same runs on the server itself, alongside")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    figures = Figures()
    fig = figures.add

    tmp = tempfile.mkdtemp(prefix="dagu-ci-bench-")
    try:
        bench = Bench(tmp)
        measure_worker(
            bench,
            sizes,
            fig,
            lambda text: print(f"bench: {text}", file=sys.stderr, flush=True),
            has_option("run", "--no-push"),
            real=not args.no_real,
            with_local=args.with_local,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(markdown_table(figures))
    for failure in bench.failures:
        print(f"bench: warning: {failure}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
