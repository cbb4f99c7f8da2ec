"""One real Dagu server for a test: its own throwaway DAGU_HOME, DAGs the test writes, and a
complete teardown (no process, no port left behind), even when the test fails."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import requests

Auth = Optional[Tuple[str, ...]]  # None, ("token", secret), ("basic", user, password)


def free_port() -> int:
    """A free port below the kernel's ephemeral range. Dagu binds it a moment later; a port
    from bind(0) could meanwhile go to another test's server (a fake), whose health answer
    then passed for this Dagu's while Dagu itself had exited (seen under `pytest -n 8`)."""
    lowest_ephemeral = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as handle:
            lowest_ephemeral = int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    for _ in range(500):
        port = random.randint(10000, max(10001, lowest_ephemeral - 1))
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


@dataclass
class RealDagu:
    version: str
    binary: str
    auth: Auth = None
    base_path: str = ""
    tls: Optional[Tuple[str, str]] = None  # (cert file, key file): Dagu's own TLS
    extra_env: Dict[str, str] = field(default_factory=dict)
    coordinator: bool = False  # workers will connect: a coordinator on 127.0.0.1, advertised so
    home: str = ""
    port: int = 0
    coordinator_port: int = 0
    proc: Optional[subprocess.Popen] = None
    workers: List["RealWorker"] = field(default_factory=list)
    _log: Optional[object] = None

    @property
    def modern(self) -> bool:
        return int(self.version.split(".")[0]) >= 2

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}{self.base_path}"

    @property
    def api(self) -> str:
        return self.url + ("/api/v1" if self.modern else "/api/v2")

    @property
    def dags_dir(self) -> str:
        return os.path.join(self.home, "dags")

    @property
    def log_dir(self) -> str:
        return os.path.join(self.home, "logs")

    @property
    def server_log(self) -> str:
        return os.path.join(self.home, "server.log")

    def add_dag(self, name: str, text: str) -> None:
        with open(os.path.join(self.dags_dir, f"{name}.yaml"), "w", encoding="utf-8") as handle:
            handle.write(text)

    def env(self) -> Dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.home,
            "DAGU_HOME": self.home,
            "DAGU_DAGS_DIR": self.dags_dir,
            "DAGU_LOG_DIR": self.log_dir,
            "DAGU_SKIP_EXAMPLES": "true",
            "DAGU_SCHEDULER_PORT": str(free_port()),
            "DAGU_COORDINATOR_PORT": str(self.coordinator_port or free_port()),
            "DAGU_CHECK_UPDATES": "false",
            "TZ": "UTC",
        }
        if self.coordinator:
            env["DAGU_COORDINATOR_HOST"] = env["DAGU_COORDINATOR_ADVERTISE"] = "127.0.0.1"
        if self.modern:
            env["DAGU_COORDINATOR_ENABLED"] = "true" if self.coordinator else "false"
            env["DAGU_AUTH_MODE"] = "none"
        if self.base_path:
            env["DAGU_BASE_PATH"] = self.base_path
        if self.tls:
            env["DAGU_CERT_FILE"], env["DAGU_KEY_FILE"] = self.tls
        if self.auth and self.auth[0] == "token":
            env["DAGU_AUTH_TOKEN"] = self.auth[1]
        elif self.auth and self.auth[0] == "basic":
            env["DAGU_AUTH_BASIC_USERNAME"], env["DAGU_AUTH_BASIC_PASSWORD"] = self.auth[1], self.auth[2]
            if self.modern:
                env["DAGU_AUTH_MODE"] = "basic"
        env.update(self.extra_env)
        return env

    def start(self, dags: Optional[Dict[str, str]] = None, ready_within: float = 120.0) -> "RealDagu":
        self.home = tempfile.mkdtemp(prefix=f"dagu-{self.version}-")
        os.makedirs(self.dags_dir)
        for name, text in (dags or {}).items():
            self.add_dag(name, text)
        self.port = free_port()
        if self.coordinator:
            self.coordinator_port = free_port()
        self._log = open(self.server_log, "wb")  # noqa: SIM115 - the server's log, closed by stop()
        self.proc = subprocess.Popen(
            [self.binary, "start-all", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env(),
            cwd=self.home,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_healthy(ready_within)
        if self.proc.poll() is not None:  # what answered was not this Dagu
            raise RuntimeError(f"dagu {self.version} exited with {self.proc.returncode}:\n{self.log_tail()}")
        return self

    def _wait_healthy(self, within: float) -> None:
        deadline = time.monotonic() + within
        url = self.api + "/health"
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"dagu {self.version} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(url, timeout=2, verify=False).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"dagu {self.version} not healthy within {within:g}s:\n{self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.server_log, encoding="utf-8", errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return ""

    # -- teardown ----------------------------------------------------------------
    def add_worker(self, worker_id: str, labels: Dict[str, str], **options: object) -> "RealWorker":
        """A started `dagu worker` (see RealWorker), stopped with the server."""
        worker = RealWorker(self, worker_id, labels, **options)  # type: ignore[arg-type]
        self.workers.append(worker)
        return worker.start()

    def stop(self) -> None:
        """Stop the workers; TERM each run's process group (runs start in their own), then
        the server's; KILL what is left; remove the home."""
        for worker in self.workers:
            worker.stop()
        if self.proc is not None:
            _end_process_tree(self.proc)
            self.proc = None
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None
        if self.home:
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> "RealDagu":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class RealWorker:
    """A `dagu worker` for a RealDagu's coordinator, with labels.

    On 1.30.x a worker runs each task as `dagu retry --run-id` (or `start`) against its own
    DAGU_HOME, and reports nothing back by gRPC: the server sees the status and the logs only
    where the worker writes them. So `shared=True` (the default) gives it the server's home
    (as a shared volume would); `shared=False` gives it its own home, finding the coordinator
    through the server's service registry only, as a separate host with no shared storage.
    """

    server: RealDagu
    worker_id: str
    labels: Dict[str, str]
    max_active_runs: int = 1
    shared: bool = True
    home: str = ""
    proc: Optional[subprocess.Popen] = None
    _log: Optional[object] = None

    @property
    def log_file(self) -> str:
        return os.path.join(self.home, f"worker-{self.worker_id}.log")

    def env(self) -> Dict[str, str]:
        env = self.server.env()
        if not self.shared:
            env.update(
                {
                    "HOME": self.home,
                    "DAGU_HOME": self.home,
                    "DAGU_DAGS_DIR": os.path.join(self.home, "dags"),
                    "DAGU_LOG_DIR": os.path.join(self.home, "logs"),
                    "DAGU_SERVICE_REGISTRY_DIR": os.path.join(self.server.home, "data", "service-registry"),
                }
            )
        env.update(
            {
                "TMPDIR": self.home,  # the task's temporary DAG file, left behind by a killed worker
                "DAGU_WORKER_ID": self.worker_id,
                "DAGU_WORKER_LABELS": ",".join(f"{key}={value}" for key, value in self.labels.items()),
                "DAGU_WORKER_MAX_ACTIVE_RUNS": str(self.max_active_runs),
            }
        )
        if self.server.modern:  # 2.x: told where the coordinator is (no shared registry needed)
            env["DAGU_WORKER_COORDINATORS"] = f"127.0.0.1:{self.server.coordinator_port}"
        return env

    def start(self, ready_within: float = 60.0) -> "RealWorker":
        self.home = self.server.home if self.shared else tempfile.mkdtemp(prefix=f"dagu-worker-{self.worker_id}-")
        self._log = open(self.log_file, "wb")  # noqa: SIM115 - the worker's log, closed by stop()
        self.proc = subprocess.Popen(
            [self.server.binary, "worker"],
            env=self.env(),
            cwd=self.home,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + ready_within
        while not self._log_says("Starting worker"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dagu worker {self.worker_id} did not start:\n{self.log_tail()}")
            time.sleep(0.1)
        return self

    def _log_says(self, text: str) -> bool:
        return text in self.log_tail(lines=1000)

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_file, encoding="utf-8", errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """The worker's host dies: SIGKILL the worker and every run it started, at once."""
        if self.proc is None:
            return
        groups = _descendant_groups(self.proc.pid)
        _signal_group(self.proc.pid, signal.SIGKILL)
        for group in groups:
            _signal_group(group, signal.SIGKILL)
        self.proc.wait(timeout=15)
        self.proc = None

    def stop(self) -> None:
        """TERM the runs it started and the worker, KILL what is left; remove its own home."""
        if self.proc is not None:
            _end_process_tree(self.proc)
            self.proc = None
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None
        if self.home and not self.shared:
            shutil.rmtree(self.home, ignore_errors=True)


def _descendant_groups(root: int) -> List[int]:
    """Process groups of every descendant of `root` (from /proc)."""
    children: Dict[int, List[int]] = {}
    groups: Dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        groups[pid] = int(fields[2])
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return sorted({groups[pid] for pid in found if pid in groups} - {groups.get(root, root)})


def _signal_group(group: int, sig: int) -> None:
    try:
        os.killpg(group, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _end_process_tree(proc: subprocess.Popen) -> None:
    """TERM the process groups of the runs `proc` started (each run has its own), then
    `proc`; KILL what is left."""
    groups = _descendant_groups(proc.pid)
    for group in groups:
        _signal_group(group, signal.SIGTERM)
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)
    for group in groups:
        _signal_group(group, signal.SIGKILL)
