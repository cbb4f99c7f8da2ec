"""The container's pieces without a server: entrypoint mapping and passthrough, action.yml,
Dockerfile lint. Runs against the fake server are in test_hosts_e2e.py."""

from __future__ import annotations

import importlib.util
import os
import subprocess

import pytest
import yaml

from dagu_ci.hosts import detect
from tests.hosttools import ENTRYPOINT, ROOT, run_entrypoint, tool


def load_entrypoint():
    spec = importlib.util.spec_from_file_location("entrypoint", ENTRYPOINT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


entrypoint = run_entrypoint


def test_action_inputs_become_cli_arguments_with_hyphenated_names():
    ep = load_entrypoint()
    env = {
        "GITHUB_ACTIONS": "true",
        "INPUT_DAG": "deploy",
        "INPUT_URL": "http://dagu:8080",
        "INPUT_PARAMS": "VERSION: 1.2.3\nTARGET: prod\n",
        "INPUT_POLL-INTERVAL": "0.5",
        "INPUT_TIMEOUT": "0",
        "INPUT_RUN-ID": "",
        "INPUT_LOGS": "false",
        "INPUT_STOP-ON-CANCEL": "true",
        "INPUT_FAIL-ON-PARTIAL": "TRUE",
        "INPUT_ENQUEUE": "false",
        "INPUT_API-PATH": "/api/v1",
        "INPUT_TOKEN": "tok-1",
        "INPUT_PASSWORD": "",
    }
    assert ep.cli_args([], detect(env), {"run"}) == [
        "run",
        "deploy",
        "--url",
        "http://dagu:8080",
        "--api-path",
        "/api/v1",
        "--params",
        "VERSION: 1.2.3\nTARGET: prod",
        "--timeout",
        "0",
        "--poll-interval",
        "0.5",
        "--fail-on-partial",
        "--no-logs",
    ]
    assert ep.action_secrets(detect(env)) == {"DAGU_API_TOKEN": "tok-1"}  # never on the command line


def test_every_action_input_is_mapped_and_outputs_are_the_documented_ones():
    ep = load_entrypoint()
    with open(os.path.join(ROOT, "action.yml"), encoding="utf-8") as handle:
        action = yaml.safe_load(handle)
    mapped = {"dag", *ep.VALUE_INPUTS, *ep.FLAG_INPUTS, *ep.NEGATED_INPUTS, *ep.SECRET_INPUTS}
    assert set(action["inputs"]) == mapped
    assert list(action["outputs"]) == ["run-id", "status", "exit-code", "url", "outputs", "duration"]
    assert action["runs"] == {
        "using": "docker",
        "image": "Dockerfile",
        "post-entrypoint": "/usr/local/bin/dagu-ci-post",
        "post-if": "cancelled() || failure()",
    }
    for name, spec in action["inputs"].items():
        if name in ep.FLAG_INPUTS or name in ep.NEGATED_INPUTS:
            assert spec["default"] == ("true" if name in ep.NEGATED_INPUTS else "false"), name


def test_action_yml_matches_githubs_schema():
    checker = tool("check-jsonschema")
    proc = subprocess.run(
        [checker, "--builtin-schema", "vendor.github-actions", "action.yml"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_bad_boolean_input_is_one_line_and_exit_2(value):
    proc = entrypoint(env={"GITHUB_ACTIONS": "true", "INPUT_DAG": "deploy", "INPUT_SINGLETON": value})
    assert proc.returncode == 2
    assert proc.stderr == f"dagu-ci: error: input singleton must be true or false, not '{value}'\n"


def test_missing_dag_input_is_one_line_and_exit_2():
    proc = entrypoint(env={"GITHUB_ACTIONS": "true", "INPUT_DAG": ""})
    assert (proc.returncode, proc.stderr) == (
        2,
        "dagu-ci: error: input dag is required (the DAG's file name as Dagu lists it), or input spec\n",
    )


def test_spec_input_runs_a_repository_file_without_a_dag_name():
    ep = load_entrypoint()
    env = {"GITHUB_ACTIONS": "true", "INPUT_SPEC": "dags/deploy.yaml", "INPUT_URL": "http://dagu:8080"}
    assert ep.action_args(detect(env)) == ["run", "--url", "http://dagu:8080", "--spec", "dags/deploy.yaml"]


def test_commands_it_does_not_own_are_execd_for_gitlab_and_jenkins():
    proc = entrypoint("sh", "-c", 'echo "$0 $1"; exit 7', "a", "b")
    assert (proc.returncode, proc.stdout) == (7, "a b\n")
    # Jenkins' docker.image().inside keeps the container alive with `cat`.
    assert entrypoint("cat", input="line 1\nline 2\n").stdout == "line 1\nline 2\n"
    missing = entrypoint("no-such-command")
    assert missing.returncode == 127 and missing.stderr.startswith("dagu-ci: error: cannot run 'no-such-command'")


def test_cli_arguments_reach_the_cli():
    assert entrypoint("dagu-ci", "--version").stdout == "dagu-ci 0.1.0\n"
    assert entrypoint("--version").stdout == "dagu-ci 0.1.0\n"
    assert "Usage: dagu-ci run" in entrypoint("run", "--help").stdout
    bare = entrypoint()  # `docker run IMAGE` outside GitHub: the help, not a traceback
    assert "Usage: dagu-ci" in bare.stdout and "Traceback" not in bare.stderr


def test_dockerfile_passes_hadolint():
    hadolint = tool("hadolint")
    proc = subprocess.run([hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_image_gets_only_what_it_runs():
    """.dockerignore keeps the build context (and so the cache key) to the package's files."""
    with open(os.path.join(ROOT, ".dockerignore"), encoding="utf-8") as handle:
        allowed = [line[1:].rstrip("/") for line in handle.read().splitlines() if line.startswith("!")]
    with open(os.path.join(ROOT, "Dockerfile"), encoding="utf-8") as handle:
        # COPY SRC... DEST from the build context (a COPY --from=STAGE copies from a stage).
        copied = {
            src for line in handle if line.startswith("COPY ") and "--from=" not in line for src in line.split()[1:-1]
        }
    assert sorted(allowed) == sorted(copied)


def test_download_artifacts_true_means_a_workspace_folder():
    ep = load_entrypoint()
    env = {
        "GITHUB_ACTIONS": "true",
        "INPUT_DAG": "d",
        "GITHUB_WORKSPACE": "/github/workspace",
        "INPUT_DOWNLOAD-ARTIFACTS": "true",
    }
    assert ep.action_args(detect(env))[-2:] == ["--download-artifacts", "/github/workspace/dagu-artifacts"]
    env["INPUT_DOWNLOAD-ARTIFACTS"] = "reports"
    assert ep.action_args(detect(env))[-2:] == ["--download-artifacts", "reports"]
    env["INPUT_DOWNLOAD-ARTIFACTS"] = "false"
    assert "--download-artifacts" not in ep.action_args(detect(env))
