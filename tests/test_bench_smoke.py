"""The benchmark harness still runs (tiny sizes, one repetition). No timing is asserted."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT, WAIT_LIMIT, clean_env


def test_bench_smoke_prints_the_table(tmp_path):
    # This checkout's dagu-ci: the venv's console script imports the checkout it was installed
    # from, which need not be this one (nor be in a state to run).
    here = tmp_path / "dagu-ci"
    here.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m dagu_ci "$@"\n')  # the harness runs it in ROOT
    here.chmod(0o755)
    # A bound for a loaded machine: under load the smoke run took over 120 s (the old bound).
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=clean_env({"DAGU_CI_BENCH_BIN": str(here)}),
        timeout=10 * WAIT_LIMIT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = proc.stdout
    assert table.splitlines()[0].split()[:4] == ["figure", "median", "min", "max"]
    for figure in (
        "1 end latency, active run: push",
        "2 REST req/min",
        "3 log bytes fetched",
        "4 peak RSS",
        "5 start-up: dagu-ci --version",
        "6 time to first log line",
        "14 start to first request: entrypoint",
    ):
        assert figure in table
    assert "warning" not in proc.stderr, proc.stderr[-2000:]
