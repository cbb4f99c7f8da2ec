"""A thread still inside OpenSSL while the interpreter shuts down can crash the process (a
SIGSEGV at exit was seen once after a TLS run: the exit-time cleanup frees what that thread
still uses). dagu-ci skips that shutdown: once its output is flushed it leaves at once
(cli.console), with its request and events-stream threads wherever they are, and no
exit-time cleanup runs at all. Its output and exit code are whole all the same.
"""

from __future__ import annotations

import sys

import pytest

from tests.conftest import LiveCli, eventually
from tests.fakedagu import Dag, Step, hold, out
from tests.test_push_e2e import stream_requests
from tests.test_run_e2e import log_lines
from tests.tlsfiles import make_tls_files

# dagu-ci, with an events-stream reader slow to wind down after its socket was shut (as on a
# loaded machine, where it may not even have been scheduled yet), reporting at exit which of
# its threads were still running.
SLOW_READER = """
import atexit, runpy, sys, threading, time

import requests

close = requests.Session.close


def slow_close(self):
    if threading.current_thread().name == "dagu-ci-push":
        time.sleep(1.0)
    close(self)


def report():
    alive = [t.name for t in threading.enumerate() if t.name.startswith("dagu-ci-")]
    sys.stderr.write("ALIVE AT EXIT=" + ",".join(alive) + "\\n")


requests.Session.close = slow_close
atexit.register(report)
sys.argv[0] = "dagu-ci"
runpy.run_module("dagu_ci", run_name="__main__", alter_sys=True)
"""


class SlowReader(LiveCli):
    @staticmethod
    def command(args):
        return [sys.executable, "-c", SLOW_READER, *args]


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls_files(str(tmp_path_factory.mktemp("tls")))


def test_exit_skips_the_shutdown_a_thread_in_openssl_could_crash(fake_factory, tls):
    server = fake_factory(
        Dag(file="deploy", steps=[Step("s", [out("over tls"), hold("end")])]), tls=tls.server_context(False)
    )
    proc = SlowReader(["run", "deploy", "--url", server.url, "--ca-cert", tls.ca, "--poll-interval", "0.1"])
    eventually(lambda: stream_requests(server), "dagu-ci reading the events stream")
    server.release("end")
    result = proc.finish()
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == ["over tls"]
    # The interpreter's exit-time cleanup (here: the probe's atexit report) never ran.
    assert "ALIVE AT EXIT" not in result.stderr, result.stderr
