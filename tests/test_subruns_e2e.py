"""Following sub-DAG runs end to end (issue 13): the CLI against the fake's sub-runs."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.conftest import run_cli
from tests.fakedagu import Dag, Step, call, err, fail, lines, out, parallel
from tests.test_run_e2e import log_lines

FAST = ("--poll-interval", "0.1")
SEP = " › "


def leaf(file="leaf", steps=None):
    return Dag(
        file=file,
        params={"REGION": ""},
        steps=steps
        or [
            Step("migrate", [out("migrating {REGION}"), lines(30, "{REGION} row {i}")]),
            Step("verify", [out("verified {REGION}"), err("warn {REGION}")], depends=["migrate"]),
        ],
    )


MID = Dag(
    file="mid",
    steps=[
        Step("prep", [out("prep line")]),
        Step("deeper", [call("leaf", "REGION=inner")], depends=["prep"]),
    ],
)


def tree_dag():
    return Dag(
        file="root",
        steps=[
            Step("build", [out("building")]),
            Step("deploy", [parallel("leaf", ["eu", "us", "ap"], params="REGION={ITEM}")], depends=["build"]),
            Step("nest", [call("mid")], depends=["build"]),
        ],
    )


def untagged(stdout):
    """Log lines without the `[step path] ` tag lines get while steps run side by side
    (these tests' lines hold no "] " of their own)."""
    return [line.rsplit("] ", 1)[1] if line.startswith("[") else line for line in log_lines(stdout)]


def run(srv, *args):
    return run_cli("run", "root", "--url", srv.url, *FAST, "--reporter", "plain", *args)


def expected_lines(region):
    return (
        [f"migrating {region}"] + [f"{region} row {i}" for i in range(1, 31)] + [f"verified {region}", f"warn {region}"]
    )


@pytest.mark.parametrize("version", ["1.30.3", "1.26.6", "1.23.0", "2.6.5"])
def test_every_child_step_streams_once_in_order(fake_factory, version):
    srv = fake_factory(leaf(), MID, tree_dag(), version=version)
    result = run(srv, "--no-push")
    assert result.code == 0, result.output
    plain = untagged(result.stdout)
    counts = Counter(plain)
    for region in ("eu", "us", "ap", "inner"):
        for line in expected_lines(region):
            assert counts[line] == 1, (line, result.stdout)
        stdout_order = [line for line in plain if line.startswith(("migrating " + region, region + " row"))]
        assert stdout_order == expected_lines(region)[:31], result.stdout
    assert counts["prep line"] == 1 and counts["building"] == 1
    # Named by their paths: the calling step, the child DAG with the item, the child step.
    for path in (
        "deploy › leaf[eu] › migrate",
        "deploy › leaf[us] › verify",
        "nest › mid › prep",
        "nest › mid › deeper › leaf › migrate",
    ):
        assert f"▶ {path}" in result.stdout or f"✔ {path}" in result.stdout, (path, result.stdout)
    assert "deploy › leaf[ap]: succeeded" in result.output


def test_failing_child_is_named_and_the_result_carries_the_tree(fake_factory, tmp_path):
    bad = Dag(file="bad", steps=[Step("boom", [out("about to fail"), out("the reason"), fail(3)])])
    srv = fake_factory(bad, Dag(file="root", steps=[Step("check", [call("bad")])]), version="1.30.3")
    result_file = tmp_path / "result.json"
    junit = tmp_path / "junit.xml"
    result = run(srv, "--result-file", str(result_file), "--junit", str(junit))
    assert result.code == 1, result.output
    assert "the reason" in result.stdout
    document = json.loads(result_file.read_text())
    [child] = document["children"]
    assert child["path"] == "check › bad" and child["dag"] == "bad" and child["status"] == "failed"
    assert child["run_id"] and child["steps"][0]["name"] == "boom" and child["steps"][0]["status"] == "failed"
    import xml.etree.ElementTree as ET

    cases = {(case.get("classname"), case.get("name")): case for case in ET.parse(junit).iter("testcase")}
    assert set(cases) == {("root", "check"), ("root › check › bad", "boom")}
    assert "the reason" in cases[("root › check › bad", "boom")].find("failure").text
    # The summary shows the tree, indented.
    assert "\n  check " in result.output and "\n    bad " in result.output and "\n      boom " in result.output, (
        result.output
    )


def test_a_child_listed_before_its_record_is_waited_for(fake_factory):
    srv = fake_factory(leaf(), Dag(file="root", steps=[Step("one", [call("leaf", "REGION=x")])]), version="1.30.3")
    srv.engine.sub_record_gate = "records"
    from tests.conftest import start_cli

    cli = start_cli("run", "root", "--url", srv.url, *FAST, "--reporter", "plain")
    srv.wait_held("records")
    srv.wait_for_requests(20)  # it keeps asking while the record is missing
    srv.release("records")
    result = cli.finish()
    assert result.code == 0, result.output
    assert Counter(untagged(result.stdout))["migrating x"] == 1, result.stdout


@pytest.mark.parametrize("policy", ["failed", "none"])
def test_sub_run_logs_policy(fake_factory, policy):
    bad = Dag(file="bad", steps=[Step("boom", [out("bad output"), fail(2)])])
    good = Dag(file="good", steps=[Step("fine", [out("good output")])])
    srv = fake_factory(
        bad,
        good,
        Dag(file="root", steps=[Step("a", [call("good")]), Step("b", [call("bad")], depends=["a"])]),
        version="1.30.3",
    )
    result = run(srv, "--sub-run-logs", policy)
    assert result.code == 1, result.output
    assert "good output" not in result.stdout
    assert ("bad output" in result.stdout) == (policy == "failed"), result.stdout
    assert "a › good: succeeded" in result.output and "b › bad: failed" in result.output


def test_sub_run_logs_is_an_action_input():
    from tests.test_container import detect, load_entrypoint

    ep = load_entrypoint()
    env = {"GITHUB_ACTIONS": "true", "INPUT_DAG": "deploy", "INPUT_SUB-RUN-LOGS": "failed"}
    assert ep.cli_args([], detect(env), {"run"}) == ["run", "deploy", "--sub-run-logs", "failed"]
