"""One notice hook per client, set when it is made: a server that stops answering is
announced the same way before the start and during the follow, and the window it names
is the one that applies (an option's, or the follow's own)."""

from __future__ import annotations

import re

from tests.conftest import run_cli, start_cli
from tests.fakedagu import Dag, Step, hold, out
from tests.test_run_e2e import FAST, log_lines


def test_before_the_start_the_notice_names_the_option(fake_factory):
    server = fake_factory(Dag(file="deploy", steps=[Step("s", [out("hello")])]))
    server.fault(path=r"/dags/deploy$", method="GET", status=503, count=2)
    result = run_cli("run", "deploy", "--url", server.url, *FAST, "--reporter", "plain", "--start-timeout", "40")
    assert result.code == 0, result.output
    assert re.search(r"server not answering \(HTTP 503\); retrying for up to \d+s \(--start-timeout\)", result.output)
    assert f"{server.url} is answering again" in result.output
    assert log_lines(result.stdout) == ["hello"]


def test_during_the_follow_the_same_hook_speaks_without_an_option(fake_factory):
    server = fake_factory(Dag(file="deploy", steps=[Step("s", [out("a"), hold("b"), out("b")])]))
    proc = start_cli("run", "deploy", "--url", server.url, *FAST, "--reporter", "plain", "--run-id", "n1")
    proc.wait_for("a\n")
    server.outage_start()
    proc.wait_for("server not answering")
    server.outage_end()
    proc.wait_for("is answering again")
    server.release("b")
    result = proc.finish()
    assert result.code == 0, result.output
    notice = next(line for line in result.output.splitlines() if "server not answering" in line)
    assert "retrying for up to" in notice and "--start-timeout" not in notice, notice
    assert log_lines(result.stdout) == ["a", "b"]
