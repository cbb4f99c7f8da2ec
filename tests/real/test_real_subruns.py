"""Sub-DAG runs against real Dagu (issue 13): a failing child, a fan-out of 5 over items, two
levels of nesting, each child step's log against its file on disk, and a stop of the tree."""

from __future__ import annotations

import json
import signal
from collections import Counter

import pytest
import requests

from tests.conftest import eventually, run_cli, start_cli
from tests.test_subruns_e2e import untagged

# workingDir: the DAGs' folder; a child's default working directory on 1.x may be cleaned up.
CHILD_FAILS = """
steps:
  - name: check
    call: broken
"""
BROKEN = """
steps:
  - name: boom
    command: sh -c 'echo about to fail; echo the reason; exit 3'
"""
FAN = """
steps:
  - name: deploy
    call: region
    parallel:
      items: [eu, us, ap, sa, af]
    params: "REGION=${ITEM}"
"""
REGION = """
params:
  - REGION: none
steps:
  - name: migrate
    command: sh -c 'echo migrating $REGION; seq 1 20 | sed "s/^/$REGION row /"'
  - name: verify
    command: sh -c 'echo verified $REGION'
    depends: [migrate]
"""
OUTER = """
steps:
  - name: nest
    call: middle
"""
MIDDLE = """
steps:
  - name: prep
    command: echo prep line
  - name: deeper
    call: region
    params: "REGION=inner"
    depends: [prep]
"""
SLOW_FAN = """
steps:
  - name: many
    call: slow
    parallel:
      items: [a, b, c]
"""
SLOW = """
steps:
  - name: wait
    command: sh -c 'echo waiting; sleep 300'
"""


def api_get(server, path, **params):
    answer = requests.get(f"{server.api}{path}", params=params, timeout=30)
    answer.raise_for_status()
    return answer.json()


def child_files(server, root, run_id):
    """{(child DAG name, params, step): stdout lines from the file on disk}, at every depth."""
    found = {}
    todo = [api_get(server, f"/dag-runs/{root}/{run_id}")["dagRunDetails"]]
    while todo:
        details = todo.pop()
        for node in details["nodes"]:
            for sub in (node.get("subRuns") or []) + (node.get("subRunsRepeated") or []):
                child = api_get(server, f"/dag-runs/{root}/{run_id}/sub-dag-runs/{sub['dagRunId']}")["dagRunDetails"]
                todo.append(child)
                for child_node in child["nodes"]:
                    with open(child_node["stdout"], encoding="utf-8") as handle:
                        found[(child["name"], sub.get("params", ""), child_node["step"]["name"])] = (
                            handle.read().splitlines()
                        )
    return found


@pytest.mark.dagu(since="1.24.0")
def test_a_failing_child_is_named_with_its_lines(real_dagu, tmp_path):
    server = real_dagu({"parent": CHILD_FAILS, "broken": BROKEN})
    result_file = tmp_path / "result.json"
    result = run_cli(
        "run",
        "parent",
        "--url",
        server.url,
        "--run-id",
        "c1",
        "--reporter",
        "plain",
        "--result-file",
        str(result_file),
        timeout=300,
    )
    assert result.code == 1, result.output
    assert "▶ check › broken › boom" in result.stdout, result.stdout
    assert untagged(result.stdout).count("the reason") == 1
    [child] = json.loads(result_file.read_text())["children"]
    assert child["path"] == "check › broken" and child["status"] == "failed"
    assert child["steps"] == [dict(child["steps"][0], name="boom", status="failed")]


@pytest.mark.dagu(since="1.26.7")
@pytest.mark.parametrize("dag", ["fan", "outer"])
def test_child_step_logs_match_the_files(real_dagu, dag):
    server = real_dagu({"fan": FAN, "region": REGION, "outer": OUTER, "middle": MIDDLE})
    result = run_cli("run", dag, "--url", server.url, "--run-id", f"f-{dag}", "--reporter", "plain", timeout=300)
    assert result.code == 0, result.output
    shown = Counter(untagged(result.stdout))
    files = child_files(server, dag, f"f-{dag}")
    assert len(files) == (10 if dag == "fan" else 4), files.keys()
    # A calling step logs its child's outputs (JSON): the same lines may be in several files.
    expected = Counter(line for lines in files.values() for line in lines)
    for node in api_get(server, f"/dag-runs/{dag}/f-{dag}")["dagRunDetails"]["nodes"]:
        with open(node["stdout"], encoding="utf-8") as handle:
            expected.update(handle.read().splitlines())
    for line, count in expected.items():
        assert shown[line] == count, (line, result.stdout)
    shown_in_order = untagged(result.stdout)
    for (_, _, step), lines in files.items():
        if lines and step == "migrate":
            positions = [shown_in_order.index(line) for line in lines]
            assert positions == sorted(positions)
    if dag == "outer":
        assert "nest › middle › deeper › region › migrate" in result.stdout


@pytest.mark.dagu(since="1.24.0")
def test_sigterm_stops_the_tree_and_the_children_end_aborted(real_dagu):
    server = real_dagu({"slowfan": SLOW_FAN, "slow": SLOW})
    cli = start_cli("run", "slowfan", "--url", server.url, "--run-id", "s1", "--reporter", "plain")
    cli.wait_for("waiting", timeout=120)
    cli.send_signal(signal.SIGTERM)
    result = cli.finish()
    assert result.code == 143, result.output

    def children_aborted():
        listed = api_get(server, "/dag-runs/slowfan/s1/sub-dag-runs")["subRuns"]
        return len(listed) == 3 and all(item["status"] == 3 for item in listed)

    eventually(
        children_aborted,
        lambda: f"children not all aborted: {api_get(server, '/dag-runs/slowfan/s1/sub-dag-runs')}",
        timeout=120,
    )


RETRY_ROOT = """
steps:
  - name: build
    command: echo building once
  - name: deploy
    call: flaky
    params: "MARK={mark}"
    depends: [build]
"""
FLAKY = """
params:
  - MARK: none
steps:
  - name: work
    command: sh -c 'if [ -e "$MARK" ]; then echo second attempt works; else touch "$MARK"; echo first attempt fails; exit 1; fi'
"""


@pytest.mark.dagu(since="1.24.0")
def test_retry_of_a_calling_step_reruns_its_child_and_follows_it(real_dagu, tmp_path):
    """`retry --step` of a step that calls a DAG: the server runs the child again; dagu-ci
    shows the child's new attempt (not its old end) and leaves the step it did not retry alone."""
    mark = tmp_path / "marker"
    server = real_dagu({"retryroot": RETRY_ROOT.format(mark=mark), "flaky": FLAKY})
    first = run_cli("run", "retryroot", "--url", server.url, "--run-id", "r1", "--reporter", "plain", timeout=300)
    assert first.code == 1, first.output
    assert "first attempt fails" in first.stdout and mark.exists(), first.output

    retried = run_cli(
        "retry",
        "retryroot",
        "r1",
        "--step",
        "deploy",
        "--follow",
        "--url",
        server.url,
        "--reporter",
        "plain",
        "--json",
        timeout=300,
    )
    assert retried.code == 0, retried.output
    shown = untagged(retried.stderr)
    assert shown.count("second attempt works") == 1, retried.stderr
    assert "first attempt fails" not in shown and "building once" not in shown, retried.stderr
    assert "✔ deploy › flaky › work" in retried.stderr, retried.stderr
    document = json.loads(retried.stdout)
    assert document["status"] == "succeeded", document
    assert [(child["path"], child["status"]) for child in document["children"]] == [("deploy › flaky", "succeeded")]
    # The server agrees: the child's record ended succeeded.
    [listed] = api_get(server, "/dag-runs/retryroot/r1/sub-dag-runs")["subRuns"]
    assert listed["status"] == 4, listed
