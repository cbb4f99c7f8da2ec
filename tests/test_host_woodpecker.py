"""Woodpecker CI and Drone: the image as a plugin step, its `settings:` as PLUGIN_* variables."""

from __future__ import annotations

import importlib.util
import json
import os
import re

import yaml

from dagu_ci.hosts import detect
from tests.fakedagu import Dag, Step, out
from tests.hosttools import ENTRYPOINT, ROOT, run_entrypoint

WOODPECKER = {
    "CI": "woodpecker",
    "CI_REPO": "acme/app",
    "CI_PIPELINE_NUMBER": "57",
    "CI_WORKFLOW_NAME": "deploy",
    "CI_STEP_NAME": "dagu",
    "CI_PIPELINE_URL": "https://ci.example.org/repos/3/pipeline/57",
    "CI_COMMIT_SHA": "abc123",
    "CI_COMMIT_BRANCH": "main",
}
DRONE = {
    "CI": "true",
    "DRONE": "true",
    "DRONE_REPO": "acme/app",
    "DRONE_BUILD_NUMBER": "12",
    "DRONE_STAGE_NAME": "default",
    "DRONE_STEP_NAME": "dagu",
    "DRONE_BUILD_LINK": "https://drone.example.org/acme/app/12",
    "DRONE_COMMIT_SHA": "def456",
    "DRONE_COMMIT_BRANCH": "rel",
}


def load_entrypoint():
    spec = importlib.util.spec_from_file_location("entrypoint", ENTRYPOINT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_detected_with_the_job_identity_and_labels_of_the_pipeline():
    woodpecker, drone = detect(WOODPECKER), detect(DRONE)
    assert (woodpecker.name, drone.name) == ("woodpecker", "woodpecker")
    assert woodpecker.job() == "wp-acme/app-57-deploy"  # the run id makes the slash a dash
    assert detect({**WOODPECKER, "CI_STEP_NAME": "stop"}).job() == woodpecker.job()  # a later step: same job
    assert detect({**WOODPECKER, "CI_PIPELINE_NUMBER": "58"}).job() != woodpecker.job()  # a restart: a new run
    assert drone.job() == "dr-acme/app-12-default"
    assert woodpecker.provenance().labels() == [
        "ci=woodpecker",
        "ci-url=ci.example.org/repos/3/pipeline/57",
        "sha=abc123",
        "ref=main",
    ]
    assert drone.provenance().labels()[:2] == ["ci=drone", "ci-url=drone.example.org/acme/app/12"]


def test_settings_map_onto_the_actions_inputs():
    ep = load_entrypoint()
    env = {
        **WOODPECKER,
        "CI_WORKSPACE": "/woodpecker/src",
        "PLUGIN_DAG": "deploy",
        "PLUGIN_URL": "http://dagu:8080",
        "PLUGIN_PARAMS": '{"VERSION":"abc123"}',
        "PLUGIN_POLL_INTERVAL": "0.5",
        "PLUGIN_FAIL_ON_PARTIAL": "true",
        "PLUGIN_LOGS": "false",
        "PLUGIN_DOWNLOAD_ARTIFACTS": "true",
        "PLUGIN_TOKEN": "tok-wp",
        "INPUT_TIMEOUT": "5",
    }  # another host's convention: not an input here
    host = detect(env)
    assert ep.cli_args([], host, {"run"}) == [
        "run",
        "deploy",
        "--url",
        "http://dagu:8080",
        "--params",
        '{"VERSION":"abc123"}',
        "--poll-interval",
        "0.5",
        "--download-artifacts",
        "/woodpecker/src/dagu-artifacts",
        "--fail-on-partial",
        "--no-logs",
    ]
    assert ep.action_secrets(host) == {"DAGU_API_TOKEN": "tok-wp"}
    assert detect({"PLUGIN_DAG": "deploy"}).is_action() is False  # outside Woodpecker: not its convention


def test_plugin_step_runs_the_dag_and_leaves_no_state_behind(fake_factory, tmp_path):
    server = fake_factory(
        Dag(
            file="deploy",
            name="deploy",
            params={"VERSION": "0"},
            steps=[Step("build", [out("building {VERSION}"), out("##vso[task.setvariable variable=X]1")])],
        )
    )
    env = {
        **WOODPECKER,
        "CI_WORKSPACE": str(tmp_path),
        "PLUGIN_DAG": "deploy",
        "PLUGIN_URL": server.url,
        "PLUGIN_PARAMS": json.dumps({"VERSION": "abc123"}),
        "PLUGIN_POLL_INTERVAL": "0.1",
        "PLUGIN_TOKEN": "tok-wp",
    }
    proc = run_entrypoint(env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "│ building abc123" in proc.stdout
    assert "##vso\\[task.setvariable" in proc.stdout and "##vso[" not in proc.stdout  # inert for any runner
    run_id = re.search(r"started run (\S+) of deploy", proc.stdout).group(1)
    assert re.fullmatch(r"wp-acme-app-57-deploy-[0-9a-f]{8}", run_id)
    assert "tok-wp" not in proc.stdout + proc.stderr
    assert not (tmp_path / ".dagu-ci").exists()


def test_example_pipeline_uses_the_plugin_settings_the_entrypoint_reads():
    ep = load_entrypoint()
    with open(os.path.join(ROOT, "examples", ".woodpecker.yml"), encoding="utf-8") as handle:
        pipeline = yaml.safe_load(handle)
    plugin, backstop = pipeline["steps"]
    inputs = {"dag", *ep.VALUE_INPUTS, *ep.FLAG_INPUTS, *ep.NEGATED_INPUTS, *ep.SECRET_INPUTS}
    assert set(plugin["settings"]) <= {name.replace("-", "_") for name in inputs} | inputs
    assert "commands" not in plugin and backstop["commands"] == ["dagu-ci stop --from-state"]
    assert plugin["image"] == backstop["image"]
