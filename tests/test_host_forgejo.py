"""Forgejo and Gitea Actions: act_runner runs the Docker action with GitHub's variables."""

from __future__ import annotations

import re

from dagu_ci.hosts import detect
from tests.fakedagu import Dag, Step, out
from tests.hosttools import run_entrypoint
from tests.reporting import Runner
from tests.test_reporter_github import HOSTILE

FORGEJO = {
    "GITHUB_ACTIONS": "true",
    "GITEA_ACTIONS": "true",
    "FORGEJO_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://code.example.org",
    "GITHUB_REPOSITORY": "acme/app",
    "GITHUB_RUN_ID": "812",
    "GITHUB_RUN_NUMBER": "36",
    "GITHUB_RUN_ATTEMPT": "1",
    "GITHUB_JOB": "deploy",
    "GITHUB_SHA": "abc123",
    "GITHUB_REF_NAME": "main",
}
GITEA = {key: value for key, value in FORGEJO.items() if key != "FORGEJO_ACTIONS"}


def test_detected_before_github_which_it_also_claims_to_be():
    assert detect(FORGEJO).name == "forgejo"
    assert detect(GITEA).name == "forgejo"
    assert detect({"GITHUB_ACTIONS": "true"}).name == "github"


def test_job_identity_is_the_run_attempt_and_job_as_on_github():
    assert detect(FORGEJO).job() == "fj-812-1-deploy"
    assert detect(GITEA).job() == "gt-812-1-deploy"
    assert detect({**FORGEJO, "GITHUB_RUN_ATTEMPT": "2"}).job() == "fj-812-2-deploy"  # a re-run: a new run


def test_run_url_uses_the_run_number_on_forgejo_and_the_id_on_gitea():
    assert detect(FORGEJO).provenance().labels() == [
        "ci=forgejo",
        "ci-url=code.example.org/acme/app/actions/runs/36",
        "sha=abc123",
        "ref=main",
    ]
    assert detect(GITEA).provenance().labels()[:2] == ["ci=gitea", "ci-url=code.example.org/acme/app/actions/runs/812"]


def test_state_goes_to_the_runners_command_file_folder_not_the_checkout(tmp_path):
    workflow = tmp_path / "act" / "workflow"
    workflow.mkdir(parents=True)
    env = {
        **FORGEJO,
        "GITHUB_WORKSPACE": str(tmp_path / "ws"),
        "RUNNER_TEMP": "/tmp",
        "GITHUB_STATE": str(workflow / "statecmd.txt"),
        "GITHUB_OUTPUT": str(workflow / "outputcmd.txt"),
    }
    assert detect(env).state_dir() == str(workflow / ".dagu-ci")
    assert detect({**FORGEJO, "GITHUB_WORKSPACE": str(tmp_path / "ws")}).state_dir() == str(
        tmp_path / "ws" / ".dagu-ci"
    )


def test_docker_action_on_forgejo_runs_with_outputs_masks_and_inert_logs(fake_factory, tmp_path):
    server = fake_factory(Dag(file="deploy", name="deploy", steps=[Step("evil", [out(line) for line in HOSTILE])]))
    workflow = tmp_path / "workflow"
    workflow.mkdir()
    env = {
        **FORGEJO,
        "GITHUB_WORKSPACE": str(tmp_path),
        "GITHUB_OUTPUT": str(workflow / "output"),
        "GITHUB_STATE": str(workflow / "state"),
        "GITHUB_STEP_SUMMARY": str(workflow / "SUMMARY.md"),
        "INPUT_DAG": "deploy",
        "INPUT_URL": server.url,
        "INPUT_TOKEN": "tok-fj",
        "INPUT_POLL-INTERVAL": "0.1",
    }
    proc = run_entrypoint(env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("::add-mask::tok-fj\n")
    assert "tok-fj" not in proc.stdout.split("\n", 1)[1] + proc.stderr
    shown = Runner.read(proc.stdout)
    assert {c.name for c in shown.commands} <= {"add-mask", "group", "endgroup", "stop-commands"}
    assert [line for line in HOSTILE if "│ " + line.split("\r")[0] not in shown.visible] == []
    assert "dagu-ci: summary" in proc.stdout  # the log carries the summary where no summary page shows
    outputs = dict(line.split("=", 1) for line in (workflow / "output").read_text().splitlines())
    assert re.fullmatch(r"fj-812-1-deploy-[0-9a-f]{8}", outputs["run-id"]) and outputs["status"] == "succeeded"
    assert (workflow / "SUMMARY.md").read_text().startswith("### ✅ Dagu run of `deploy` succeeded")
    assert not (tmp_path / ".dagu-ci").exists()
