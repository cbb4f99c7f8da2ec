"""Sub-DAG runs, the whole tree (issue 13): every child at every depth is found and read
before dagu-ci exits, however late it shows; `status`, `logs --step` and `retry --step`
over the tree."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.conftest import eventually, run_cli, start_cli
from tests.fakedagu import Dag, Step, call, err, fail_on_attempt, hold, out
from tests.test_subruns_e2e import FAST, MID, expected_lines, leaf, tree_dag, untagged

SUCCEEDED = 4


def late_grandchild_tree():
    """root › nest › mid › deeper › leaf, where mid waits at a gate before it calls leaf."""
    mid = Dag(
        file="mid",
        steps=[
            Step("prep", [out("prep line"), hold("mid")]),
            Step("deeper", [call("leaf", "REGION=inner")], depends=["prep"]),
        ],
    )
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


# -- status, logs and retry over the tree ---------------------------------------------


@pytest.fixture
def finished_tree(fake_factory):
    """The tree of test_subruns_e2e (a fan-out over three regions, two levels of nesting), run to its end."""
    srv = fake_factory(leaf(), MID, tree_dag(), version="1.30.3")
    result = run_cli("run", "root", "--url", srv.url, *FAST, "--reporter", "plain", "--run-id", "tree-1")
    assert result.code == 0, result.output
    return srv


def test_status_shows_the_tree(finished_tree):
    result = run_cli("status", "root", "tree-1", "--url", finished_tree.url)
    assert result.code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()]
    lines = result.stdout.splitlines()

    # Each sub-run under the step that started it, its steps under it, deeper each level.
    def indent(label):
        [line] = [line for line in lines if line.split() and line.split()[0] == label][:1] or [None]
        assert line is not None, (label, result.stdout)
        return len(line) - len(line.lstrip())

    assert indent("deploy") < indent("leaf[eu]") < indent("migrate")
    assert indent("nest") < indent("mid") < indent("prep")
    assert indent("prep") == indent("deeper") < indent("leaf")  # the grandchild, under the step that called it
    assert next(row for row in rows if row and row[0] == "leaf")[:2] == ["leaf", "succeeded"], result.stdout


def test_status_json_carries_the_children(finished_tree):
    result = run_cli("status", "root", "tree-1", "--url", finished_tree.url, "--json")
    assert result.code == 0, result.output
    document = json.loads(result.stdout)
    paths = [child["path"] for child in document["children"]]
    assert paths == [
        "deploy › leaf[eu]",
        "deploy › leaf[us]",
        "deploy › leaf[ap]",
        "nest › mid",
        "nest › mid › deeper › leaf",
    ]
    deepest = document["children"][-1]
    assert deepest["depth"] == 2 and deepest["status"] == "succeeded" and deepest["dag"] == "leaf"
    assert [step["name"] for step in deepest["steps"]] == ["migrate", "verify"]


@pytest.mark.parametrize("path", ["deploy › leaf[eu] › migrate", "deploy/leaf[eu]/migrate"])
def test_logs_step_takes_a_child_steps_path(finished_tree, path):
    result = run_cli("logs", "root", "tree-1", "--url", finished_tree.url, "--step", path)
    assert result.code == 0, result.output
    assert result.stdout.splitlines() == expected_lines("eu")[:31]


def test_logs_step_of_a_grandchild_with_tail_and_stderr(finished_tree):
    path = "nest/mid/deeper/leaf/verify"
    result = run_cli("logs", "root", "tree-1", "--url", finished_tree.url, "--step", path, "--stderr", "--tail", "5")
    assert result.code == 0, result.output
    assert result.stdout.splitlines() == ["warn inner"]


def test_logs_of_the_whole_run_include_the_children(finished_tree):
    result = run_cli("logs", "root", "tree-1", "--url", finished_tree.url)
    assert result.code == 0, result.output
    lines = result.stdout.splitlines()
    header = lines.index("── nest › mid › deeper › leaf › migrate (succeeded) ──")
    assert lines[header + 1 : header + 32] == expected_lines("inner")[:31]


def test_logs_step_names_an_unknown_child_path(finished_tree):
    result = run_cli("logs", "root", "tree-1", "--url", finished_tree.url, "--step", "deploy/leaf[xx]/migrate")
    assert result.code == 2, result.output
    assert "no step 'deploy/leaf[xx]/migrate'" in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_retry_of_a_parent_step_reruns_its_child_and_follows_it(fake_factory):
    """The retried step names the same child (its id is a digest of run, step and params)
    before the child's new attempt begins: the child's old end must not be taken for it.
    The record gate holds the new attempt back while dagu-ci looks."""
    flaky = Dag(file="flaky", steps=[Step("work", [out("working {REGION} attempt"), fail_on_attempt(1)])])
    note = Dag(file="note", steps=[Step("jot", [out("noting")])])
    srv = fake_factory(
        flaky,
        note,
        Dag(
            file="root",
            steps=[
                Step("build", [out("building")]),
                Step("audit", [call("note")], depends=["build"]),
                Step("deploy", [call("flaky", "REGION=eu")], depends=["audit"]),
            ],
        ),
        version="1.30.3",
    )
    first = run_cli("run", "root", "--url", srv.url, *FAST, "--reporter", "plain", "--run-id", "flaky-1")
    assert first.code == 1, first.output
    srv.engine.sub_record_gate = "records"
    cli = start_cli(
        "retry",
        "root",
        "flaky-1",
        "--step",
        "deploy",
        "--follow",
        "--url",
        srv.url,
        *FAST,
        "--reporter",
        "plain",
        "--json",
    )
    srv.wait_held("records")
    [child] = [run for run in srv.get_run("root", "flaky-1").sub_runs.values() if run.dag.file == "flaky"]
    srv.clear_requests()
    eventually(lambda: sum(child.run_id in r.path for r in srv.requests) >= 2, "dagu-ci looks at the child")
    srv.release("records")
    retried = cli.finish()
    assert retried.code == 0, retried.output
    assert len(child.attempts) == 2 and child.status == SUCCEEDED
    # The child's second attempt, shown once; the steps not retried (and their child) are not news.
    shown = untagged(retried.stderr)
    assert shown.count("working eu attempt") == 1, retried.stderr
    assert "building" not in shown and "noting" not in shown, retried.stderr
    assert "deploy › flaky: succeeded" in retried.stderr and "deploy › flaky: failed" not in retried.stderr, (
        retried.stderr
    )
    assert "✔ deploy › flaky › work" in retried.stderr, retried.stderr
    document = json.loads(retried.stdout)
    assert [(c["path"], c["status"]) for c in document["children"]] == [
        ("audit › note", "succeeded"),
        ("deploy › flaky", "succeeded"),
    ]


# -- push -------------------------------------------------------------------------------


def test_with_push_the_children_come_pushed_and_every_line_shows_once(fake_factory):
    """2.4.2+: each child's details come on its `subdagrun` topic; the children's list is
    never polled, and their logs still show whole, once and in order."""
    srv = fake_factory(leaf(), MID, tree_dag(), version="2.6.5")
    result = run_cli("run", "root", "--url", srv.url, *FAST, "--reporter", "plain")
    assert result.code == 0, result.output
    counts = Counter(untagged(result.stdout))
    for region in ("eu", "us", "ap", "inner"):
        for line in expected_lines(region):
            assert counts[line] == 1, (line, result.stdout)
        shown = [line for line in untagged(result.stdout) if line.startswith((f"migrating {region}", f"{region} row"))]
        assert shown == expected_lines(region)[:31], result.stdout
    paths = [record.path for record in srv.requests]
    assert not [path for path in paths if path.endswith("/sub-dag-runs")], paths  # no list polls
    streams = [record for record in srv.requests if record.path.endswith("/events/stream")]
    assert len(streams) >= 2, paths  # the run's, and one for its children


@pytest.mark.parametrize("push", [True, False])
def test_a_running_child_steps_log_shows_before_the_step_ends(fake_factory, push):
    """The child is first seen before it is tailed live; with push its details come again
    only when they change, so nothing new may come while its step runs: the step's lines
    show all the same, before it ends."""
    child = Dag(file="child", steps=[Step("work", [out("first line"), hold("end")])])
    srv = fake_factory(child, Dag(file="root", steps=[Step("deploy", [call("child")])]), version="2.6.5")
    cli = start_cli("run", "root", "--url", srv.url, *FAST, "--reporter", "plain", *(() if push else ("--no-push",)))
    srv.wait_held("end")
    cli.wait_for("first line")
    srv.release("end")
    result = cli.finish()
    assert result.code == 0, result.output
    assert untagged(result.stdout).count("first line") == 1, result.stdout


def test_before_2_4_2_the_children_are_polled_beside_the_push(fake_factory):
    srv = fake_factory(leaf(), MID, tree_dag(), version="2.4.1")
    result = run_cli("run", "root", "--url", srv.url, *FAST, "--reporter", "plain")
    assert result.code == 0, result.output
    assert Counter(untagged(result.stdout))["migrating inner"] == 1, result.stdout
    assert [r for r in srv.requests if r.path.endswith("/sub-dag-runs")], "the list is polled"


@pytest.mark.parametrize("push", [True, False])
def test_a_child_step_run_again_is_told_once_per_attempt(fake_factory, push):
    """The root's auto-retry runs its calling step, and so the child, again: the child's
    step starts afresh on stdout and on stderr. One notice for the new attempt, not one
    per stream; each attempt's lines once, in order, after the notice for the second."""
    child = Dag(
        file="child",
        steps=[Step("work", [out("out a"), err("err a"), fail_on_attempt(1), out("out b"), err("err b")])],
    )
    root = Dag(file="root", steps=[Step("deploy", [call("child")])], auto_retry_limit=1, auto_retry_delay=None)
    srv = fake_factory(child, root, version="2.6.5")
    cli = start_cli("run", "root", "--url", srv.url, *FAST, "--reporter", "plain", *(() if push else ("--no-push",)))
    cli.wait_for("Dagu will retry it")
    cli.wait_for("deploy › child: failed")  # its first attempt shown to its end
    srv.start_held_auto_retry()
    result = cli.finish()
    assert result.code == 0, result.output
    notice = "deploy › child › work: a new attempt began; its log starts afresh"
    assert result.stdout.count(notice) == 1, result.stdout
    before, after = result.stdout.split(notice)
    first, second = untagged(before), untagged(after)
    assert sorted(first) == ["err a", "out a"], result.stdout
    assert [line for line in second if line.startswith("out")] == ["out a", "out b"], result.stdout
    assert [line for line in second if line.startswith("err")] == ["err a", "err b"], result.stdout
