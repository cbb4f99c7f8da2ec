"""dagu-ci as a subprocess: exit time (a thread blocked in wait4), peak RSS, first output line."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from tests.hostenv import host_free_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def clean_env(state_dir: str) -> Dict[str, str]:
    return host_free_env({"DAGU_CI_STATE_DIR": state_dir})


def command() -> List[str]:
    """The console script as a CI job runs it: $DAGU_CI_BENCH_BIN (`make bench` points it at a
    plain `pip install .`, as the image has it), else this venv's, else the module."""
    script = os.environ.get("DAGU_CI_BENCH_BIN") or os.path.join(os.path.dirname(sys.executable), "dagu-ci")
    return [script] if os.access(script, os.X_OK) else [sys.executable, "-m", "dagu_ci"]


# Peak RSS goes through a small wrapper: ru_maxrss of a child forked straight from the harness
# would carry the harness's own high-water mark (Linux keeps it across fork and exec).
_RSS_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[2:])\n"
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(code)\n"
)


def has_option(subcommand: str, option: str) -> bool:
    out = subprocess.run(command() + [subcommand, "--help"], capture_output=True, text=True, cwd=ROOT).stdout
    return option in out


@dataclass
class Outcome:
    started: float  # monotonic, just before the process was spawned
    exited: float  # monotonic, when wait4 returned
    code: int
    maxrss_kb: int  # dagu-ci's peak RSS (0 unless the launch asked for it)
    first_line: Optional[float] = None  # monotonic, first stdout line containing the marker
    stdout_path: str = ""
    stderr: str = ""
    exited_wall: float = 0.0  # time.time() at the same moment as `exited` (for a real server's file times)


@dataclass
class Launch:
    """One dagu-ci process. `marker`: read stdout through a pipe and time the first line with it."""

    args: List[str]
    workdir: str
    marker: Optional[str] = None
    rss: bool = False  # measure peak RSS through the wrapper (adds its start-up to the exit time)
    _done: threading.Event = field(default_factory=threading.Event)
    _outcome: Optional[Outcome] = None

    def __post_init__(self) -> None:
        self.stdout_path = os.path.join(self.workdir, "stdout.txt")
        self.stderr_path = os.path.join(self.workdir, "stderr.txt")
        self._first: Optional[float] = None
        out = subprocess.PIPE if self.marker else open(self.stdout_path, "wb")  # noqa: SIM115 - the child keeps it; closed below
        err = open(self.stderr_path, "wb")  # noqa: SIM115 - as above
        self.started = time.monotonic()
        self.rss_path = os.path.join(self.workdir, "maxrss.txt")
        prefix = [sys.executable, "-c", _RSS_WRAPPER, self.rss_path] if self.rss else []
        self.proc = subprocess.Popen(
            prefix + command() + self.args,
            stdout=out,
            stderr=err,
            cwd=ROOT,
            env=clean_env(os.path.join(self.workdir, "state")),
        )
        if not self.marker:
            out.close()
        err.close()
        if self.marker:
            threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._wait, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        with open(self.stdout_path, "wb") as sink:
            for line in self.proc.stdout:
                if self._first is None and self.marker and self.marker.encode() in line:
                    self._first = time.monotonic()
                sink.write(line)

    def _wait(self) -> None:
        # wait4 returns the moment the child exits, with its rusage (ru_maxrss in KB on Linux).
        _, status, _usage = os.wait4(self.proc.pid, 0)
        exited, exited_wall = time.monotonic(), time.time()
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        with open(self.stderr_path, errors="replace") as handle:
            stderr = handle.read()
        maxrss = 0
        if self.rss and os.path.exists(self.rss_path):
            with open(self.rss_path) as handle:
                maxrss = int(handle.read() or 0)
        self._outcome = Outcome(
            self.started,
            exited,
            self.proc.returncode,
            maxrss,
            stdout_path=self.stdout_path,
            stderr=stderr,
            exited_wall=exited_wall,
        )
        self._done.set()

    def wait(self, timeout: float) -> Outcome:
        if not self._done.wait(timeout):
            self.proc.kill()
            self._done.wait(5)
            raise TimeoutError(f"dagu-ci {' '.join(self.args)} did not exit within {timeout}s")
        assert self._outcome is not None
        if self.marker:
            deadline = time.monotonic() + 2  # the pipe reader may lag the exit a little
            while self._first is None and time.monotonic() < deadline:
                time.sleep(0.01)
        self._outcome.first_line = self._first
        return self._outcome


def run_args(srv_url: str, dag: str, run_id: str, *extra: str) -> List[str]:
    return ["run", dag, "--url", srv_url, "--run-id", run_id, *extra]


def workdir(root: str) -> str:
    return tempfile.mkdtemp(dir=root)
