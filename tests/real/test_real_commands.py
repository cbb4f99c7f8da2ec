"""The other commands, retries, the queue, --spec, and access (auth, base path, TLS) against
real Dagu servers."""

from __future__ import annotations

import json
import os

import pytest
import requests

from tests.conftest import run_cli, start_cli
from tests.real.test_real_run import OK, details
from tests.test_run_e2e import assert_clean_error, log_lines
from tests.tlsfiles import make_tls_files


def flaky_dag(marker: str) -> str:
    """Fails the first time, succeeds once `marker` exists."""
    return f"""
steps:
  - name: first
    command: echo first ran
  - name: second
    command: sh -c 'if [ -f {marker} ]; then echo second ok; else touch {marker}; echo second failed; exit 1; fi'
    depends: [first]
"""


@pytest.mark.parametrize("step", [None, "second"])
def test_retry_follow(real_dagu, step):
    server = real_dagu()
    server.add_dag("flaky", flaky_dag(os.path.join(server.home, "marker")))
    assert run_cli("run", "flaky", "--url", server.url, "--run-id", "r1").code == 1
    args = ["retry", "flaky", "r1", "--url", server.url, "--follow", "--reporter", "plain"] + (
        ["--step", step] if step else []
    )
    result = run_cli(*args)
    assert result.code == 0, result.output
    assert log_lines(result.stdout)[-1] == "second ok"
    if step:  # only that step ran again
        assert "first ran" not in log_lines(result.stdout)
    assert details(server, "flaky", "r1")["status"] == 4


def test_enqueue_with_queue_timeout_dequeues(real_dagu):
    server = real_dagu(
        {
            "single": """
maxActiveRuns: 1
steps:
  - name: hold
    command: sh -c 'echo holding; sleep 600'
"""
        }
    )
    first = start_cli("run", "single", "--url", server.url, "--run-id", "q1", "--enqueue")
    first.wait_for("holding", timeout=90)
    result = run_cli("run", "single", "--url", server.url, "--run-id", "q2", "--enqueue", "--queue-timeout", "3")
    assert result.code == 124, result.output
    assert "never started" in result.output
    # Dagu removes a dequeued run that never ran (its only attempt was the queued one).
    assert requests.get(f"{server.api}/dag-runs/single/q2", timeout=10).status_code == 404
    # Dequeued by someone else (the UI, a superseding job): its follower ends, aborted.
    third = start_cli("run", "single", "--url", server.url, "--run-id", "q3", "--enqueue")
    third.wait_for("run is queued; waiting")  # seen queued by its follower, not only enqueued
    assert requests.get(f"{server.api}/dag-runs/single/q3/dequeue", timeout=10).status_code == 200
    followed = third.finish()
    assert followed.code == 3, followed.output
    assert "dequeued before it started" in followed.output
    first.send_signal(15)
    assert first.finish().code == 143


def test_spec_runs_a_repository_file(real_dagu, tmp_path):
    server = real_dagu()
    spec = tmp_path / "inline.yaml"
    # Dagu 1.x deletes the spec's temporary folder, a step's default working directory,
    # when the start request returns: a step that starts later fails without workingDir.
    spec.write_text(f"workingDir: {server.home}\nsteps:\n  - name: s\n    command: echo from the spec\n")
    result = run_cli("run", "--spec", str(spec), "--url", server.url, "--reporter", "plain")
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == ["from the spec"]


def test_status_logs_history_dags_outputs(real_dagu):
    server = real_dagu(
        {
            "out": """
steps:
  - name: make
    command: echo v1.2.3
    output: VERSION
"""
        }
    )
    assert run_cli("run", "out", "--url", server.url, "--run-id", "o1").code == 0
    status = run_cli("status", "out", "o1", "--url", server.url, "--json")
    assert status.code == 0, status.output
    assert json.loads(status.stdout)["status"] == "succeeded"
    logs = run_cli("logs", "out", "o1", "--url", server.url, "--step", "make")
    assert logs.code == 0 and logs.stdout.splitlines() == ["v1.2.3"], logs.output
    history = run_cli("history", "out", "--url", server.url, "--json")
    assert [run["run_id"] for run in json.loads(history.stdout)] == ["o1"], history.output
    dags = run_cli("dags", "--url", server.url, "--json")
    assert [dag["name"] for dag in json.loads(dags.stdout)] == ["out"], dags.output
    outputs = run_cli("outputs", "out", "o1", "--url", server.url, "--json")
    assert outputs.code == 0, outputs.output
    assert json.loads(outputs.stdout) == {"version": "v1.2.3"}


def test_validate_and_push(real_dagu, tmp_path):
    server = real_dagu({"deploy": OK})
    good = tmp_path / "deploy.yaml"
    good.write_text("steps:\n  - name: pushed\n    command: echo pushed version\n")
    bad = tmp_path / "broken.yaml"
    bad.write_text("steps:\n  - name: x\n    command: echo\n    depends: [nowhere]\n")
    assert run_cli("validate", str(good), "--url", server.url).code == 0
    assert run_cli("validate", str(bad), "--url", server.url).code == 1
    pushed = run_cli("push", str(good), "--url", server.url)
    assert pushed.code == 0, pushed.output
    assert "updated" in pushed.output
    result = run_cli("run", "deploy", "--url", server.url, "--reporter", "plain")
    assert log_lines(result.stdout) == ["pushed version"]


# -- access --------------------------------------------------------------------------


def test_bearer_token(real_dagu):
    server = real_dagu({"ok": OK}, auth=("token", "s3cret-token"))
    assert requests.get(f"{server.api}/dags", timeout=10).status_code == 401  # auth is on
    assert run_cli("run", "ok", "--url", server.url, env={"DAGU_API_TOKEN": "s3cret-token"}).code == 0
    wrong = run_cli("run", "ok", "--url", server.url, env={"DAGU_API_TOKEN": "wrong"})
    assert_clean_error(wrong, 2, "authentication refused")
    assert "wrong" not in wrong.output


def test_basic_auth(real_dagu):
    server = real_dagu({"ok": OK}, auth=("basic", "ci", "pa55word"))
    result = run_cli("run", "ok", "--url", server.url, env={"DAGU_USERNAME": "ci", "DAGU_PASSWORD": "pa55word"})
    assert result.code == 0, result.output
    missing = run_cli("run", "ok", "--url", server.url)
    assert_clean_error(missing, 2, "requires authentication")


def test_base_path(real_dagu):
    server = real_dagu({"ok": OK}, base_path="/dagu")
    result = run_cli("run", "ok", "--url", server.url, "--reporter", "plain")
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == ["hello from dagu"]


def test_tls_with_ca_cert(real_dagu, tmp_path):
    files = make_tls_files(str(tmp_path))
    server = real_dagu({"ok": OK}, tls=(files.server_cert, files.server_key))
    assert server.url.startswith("https://")
    assert run_cli("run", "ok", "--url", server.url, "--ca-cert", files.ca).code == 0
    unverified = run_cli("run", "ok", "--url", server.url)
    assert_clean_error(unverified, 2, "TLS verification failed")
