"""Shared fixtures: a fake Dagu server per test, and the dagu-ci CLI as a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Union

import pytest

from tests.hostenv import host_free_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Bounds of waits for a condition: only reached when something is wrong, so generous
# enough for a machine running other work beside the suite (the suite runs -n 4 on 2 cores).
WAIT_LIMIT = 60.0


def clean_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """No CI host variables, and unbuffered output so tests see lines as they come. With
    faulthandler on, a stuck dagu-ci told SIGABRT shows where each of its threads was."""
    return host_free_env({"PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1", **(extra or {})})


def eventually(
    condition: Callable[[], object],
    what: Union[str, Callable[[], str]],
    timeout: float = WAIT_LIMIT,
    every: float = 0.05,
) -> object:
    """Wait until `condition()` is true and return its value; fail naming `what` (or what
    `what()` says then) after `timeout`: an upper bound, never the thing waited for."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what() if callable(what) else what}: not within {timeout:g} s")
        time.sleep(every)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def cli_command(*args: str) -> List[str]:
    return [sys.executable, "-m", "dagu_ci", *args]


def run_cli(*args: str, env: Optional[Dict[str, str]] = None, timeout: float = 3 * WAIT_LIMIT) -> CliResult:
    return LiveCli(list(args), env).finish(timeout)


class LiveCli:
    """dagu-ci running in the background; its output is collected as it comes."""

    def __init__(self, args: List[str], env: Optional[Dict[str, str]] = None):
        self.proc = subprocess.Popen(
            self.command(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(env),
            cwd=ROOT,
        )
        self._out: List[str] = []
        self._err: List[str] = []
        self._readers = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self._out), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self._err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def command(args: List[str]) -> List[str]:
        return cli_command(*args)

    @staticmethod
    def _pump(stream, sink: List[str]) -> None:
        for line in stream:
            sink.append(line)

    @property
    def stdout(self) -> str:
        return "".join(self._out)

    def wait_for(self, text: str, timeout: float = WAIT_LIMIT) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stdout:
            ended = self.proc.poll() is not None
            if ended:  # its last words may still be in the pipe: read them all first
                for reader in self._readers:
                    reader.join(timeout=WAIT_LIMIT)
            if text in self.stdout:
                return
            if ended or time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared in:\n{self.stdout}{''.join(self._err)}")
            time.sleep(0.05)

    def send_signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def finish(self, timeout: float = 2 * WAIT_LIMIT) -> CliResult:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stuck = True
        else:
            stuck = False
        if stuck:
            self._fail_stuck(timeout)
        for reader in self._readers:
            reader.join(timeout=WAIT_LIMIT)
        return CliResult(self.proc.returncode, self.stdout, "".join(self._err))

    def _fail_stuck(self, timeout: float) -> None:
        """dagu-ci did not exit: fail with where it was stuck (faulthandler's dump on SIGABRT)."""
        self.proc.send_signal(signal.SIGABRT)
        try:
            self.proc.wait(timeout=WAIT_LIMIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for reader in self._readers:
            reader.join(timeout=WAIT_LIMIT)
        raise AssertionError(
            f"dagu-ci did not exit within {timeout:g} s; its threads then:\n{''.join(self._err)}"
            f"\nits stdout:\n{self.stdout}"
        )


def start_cli(*args: str, env: Optional[Dict[str, str]] = None) -> LiveCli:
    return LiveCli(list(args), env)


@pytest.fixture
def fake_factory() -> Iterator:
    """Make and start fake servers; all are stopped at the end of the test."""
    from tests.fakedagu import FakeDagu

    started = []

    def make(*dags, **kwargs):
        server = FakeDagu(**kwargs)
        for dag in dags:
            server.add_dag(dag)
        started.append(server.start())
        return server

    yield make
    for server in reversed(started):
        server.stop()
    for server in started:  # a handler that raised inside the fake is a broken fake
        assert not server.errors, server.errors[0]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    """Name every wanted real Dagu version the suite could not test, and why."""
    from tests.real import builds

    missing = builds.unavailable()
    if missing:
        terminalreporter.section("real Dagu versions not tested")
        for version, reason in missing.items():
            terminalreporter.write_line(f"dagu {version}: {reason}")


def pytest_sessionfinish(session, exitstatus) -> None:  # type: ignore[no-untyped-def]
    from tests.real import builds

    if os.environ.get("CI") == "true" and not builds.available() and exitstatus == 0:
        session.exitstatus = 1  # the real-server suite must not pass on nothing in CI
