"""Sub-DAG runs, the whole tree (issue 13): every child at every depth is found and read
before dagu-ci exits, however late it shows; `status`, `logs --step` and `retry --step`
over the tree."""
from __future__ import annotations

from collections import Counter

import pytest

from tests.conftest import start_cli
from tests.fakedagu import Dag, Step, call, hold, out
from tests.test_subruns_e2e import FAST, expected_lines, leaf, untagged

SUCCEEDED = 4


def late_grandchild_tree():
    """root › nest › mid › deeper › leaf, where mid waits at a gate before it calls leaf."""
    mid = Dag(file="mid", steps=[
        Step("prep", [out("prep line"), hold("mid")]),
        Step("deeper", [call("leaf", "REGION=inner")], depends=["prep"]),
    ])
    return leaf(), mid, Dag(file="root", steps=[Step("nest", [call("mid")])])


@pytest.mark.parametrize("version", ["1.30.3", "1.26.6", "1.23.0"])
def test_a_grandchild_that_shows_only_at_the_end_is_read_in_full(fake_factory, version):
    """The race: the run's end is the first thing dagu-ci sees after the grandchild
    started. Its root-status read is held while the tree runs to its end."""
    srv = fake_factory(*late_grandchild_tree(), version=version)
    cli = start_cli("run", "root", "--url", srv.url, *FAST, "--reporter", "plain", "--no-push")
    srv.wait_held("mid")
    cli.wait_for("prep line")  # dagu-ci has seen mid running, before it called anything
    srv.fault(path=r"/dag-runs/root/[^/]+$", method="GET", status=200, hold="root-read")
    srv.wait_held("root-read")
    srv.release("mid")
    [root] = srv.runs_of("root")
    srv.wait_for_status("root", root.run_id, SUCCEEDED)
    srv.release("root-read")
    result = cli.finish()
    assert result.code == 0, result.output
    counts = Counter(untagged(result.stdout))
    for line in expected_lines("inner"):
        assert counts[line] == 1, (line, result.stdout)
    assert "nest › mid › deeper › leaf: succeeded" in result.output, result.output
    assert "✔ nest › mid › deeper › leaf › verify" in result.stdout, result.stdout


def test_a_child_that_never_got_a_record_does_not_keep_dagu_ci_waiting(fake_factory):
    """Stopped while its child is listed but not yet recorded: at the end that 404 means
    "never started"; dagu-ci says so and exits."""
    srv = fake_factory(leaf(), Dag(file="root", steps=[Step("one", [call("leaf", "REGION=x")])]), version="1.30.3")
    srv.engine.sub_record_gate = "records"
    cli = start_cli("run", "root", "--url", srv.url, *FAST, "--reporter", "plain")
    srv.wait_held("records")
    cli.wait_for("▶ one")
    [root] = srv.runs_of("root")
    srv.stop_run("root", root.run_id)
    result = cli.finish()
    assert result.code not in (0, 2), result.output
    assert "one: sub-run " in result.output and "never started" in result.output, result.output
    assert "aborted" in result.output, result.output
