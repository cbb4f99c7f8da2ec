"""The backstop's state files (issue 15 items 1, 6, 7; issue 10 item 8): a checkout cannot plant
one, server text never shapes its path, and `stop --from-state` acts only on what this job wrote,
only against the configured server, with the configured credentials."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from dagu_ci.hosts import detect
from dagu_ci.run import state
from tests.conftest import WAIT_LIMIT, eventually, run_cli, start_cli
from tests.fakedagu import Dag, Step, hold, out
from tests.hosttools import ENTRYPOINT, HOST_ENV, run_entrypoint
from tests.test_templates import template_script

FAST = ("--poll-interval", "0.1")
NAME = re.compile(r"run-[A-Za-z0-9_.-]+\.json")


def long_dag():
    return Dag(file="deploy", name="deploy", steps=[Step("long", [out("working"), hold("never")])])


def wait_for_files(directory, pattern="run-*.json"):
    return eventually(lambda: list(directory.glob(pattern)), f"a {pattern} in {directory}")


def plant(directory, file_name, **fields):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / file_name
    path.write_text(json.dumps({"dag": "deploy", "name": "deploy", **fields}))
    return path


def start_victim(server, run_id, token=None):
    """Another pipeline's run on the same server: what a planted file would have us abort."""
    env = {"DAGU_API_TOKEN": token} if token else None
    result = run_cli("start", "deploy", "--url", server.url, "--run-id", run_id, env=env)
    assert result.code == 0, result.output
    server.wait_for_status("deploy", run_id, {1})


# -- file names (item 6) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,run_id",
    [
        ("a/b", "r1"),
        ("../../x", "r2"),
        ("x/../../../../tmp/dagu-ci-escape", "r3"),
        ("deploy", "../../../tmp/y"),
        ("deploy", "x\0y"),
        ("..", ".."),
        ("", ""),
    ],
)
def test_server_text_never_shapes_the_state_path(tmp_path, name, run_id):
    directory = tmp_path / "state"
    (directory / "run-x").mkdir(parents=True)  # a folder the old naming could be walked through
    run = state.RunState(url="http://dagu:8080", dag="deploy", name=name, run_id=run_id)
    path = state.save(str(directory), run)
    assert os.path.dirname(path) == str(directory) and NAME.fullmatch(os.path.basename(path))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [directory / os.path.basename(path)]
    (found,) = state.load_all(str(directory))
    assert (found.run.name, found.run.run_id) == (name, run_id)
    state.forget(str(directory), run)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


@settings(max_examples=200, deadline=None)
@given(st.text(), st.text(), st.text(), st.text())
def test_any_name_and_run_id_get_a_flat_distinct_file(name, run_id, other_name, other_id):
    run = state.RunState(url="http://d", dag="d", name=name, run_id=run_id)
    path = state.path_for("/state", run)
    assert os.path.dirname(path) == "/state" and NAME.fullmatch(os.path.basename(path))
    if (name, run_id) != (other_name, other_id):
        assert path != state.path_for(
            "/state", state.RunState(url="http://d", dag="d", name=other_name, run_id=other_id)
        )


# -- where the file lives (item 1) ---------------------------------------------------------------


def test_state_dir_is_outside_the_checkout_on_every_host(tmp_path):
    runner_temp = tmp_path / "_temp"
    runner_temp.mkdir()
    github = {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(tmp_path / "ws"), "RUNNER_TEMP": str(runner_temp)}
    assert detect(github).state_dir() == str(runner_temp / ".dagu-ci")
    # A Docker container action on a runner that does not mount RUNNER_TEMP: the runner's
    # temp home, mounted at /github/home, is kept for the whole job.
    home = tmp_path / "_github_home"
    home.mkdir()
    container = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": "/github/workspace",
        "RUNNER_TEMP": "/home/runner/work/_temp-not-here",
        "HOME": str(home),
    }
    assert detect(container).state_dir() == str(home / ".dagu-ci")

    gitlab = {"GITLAB_CI": "true", "CI_PROJECT_DIR": "/builds/g/p", "RUNNER_TEMP_PROJECT_DIR": "/builds/g/p.tmp"}
    assert detect(gitlab).state_dir() == "/builds/g/p.tmp/.dagu-ci"
    assert detect({"GITLAB_CI": "true", "CI_PROJECT_DIR": "/builds/g/p"}).state_dir() == "/builds/g/p.tmp/.dagu-ci"
    jenkins = {"JENKINS_URL": "http://j/", "WORKSPACE": "/ws/app", "WORKSPACE_TMP": "/ws/app@tmp"}
    assert detect(jenkins).state_dir() == "/ws/app@tmp/.dagu-ci"
    assert detect({}).state_dir(cwd=str(tmp_path)) == str(tmp_path / ".dagu-ci")


def test_gitlab_files_planted_in_the_checkout_are_never_read(fake_factory, tmp_path):
    """Issue 15 item 1's repro, through the template's script and after_script: the planted
    server gets no request at all, another pipeline's run keeps running, ours is stopped."""
    real = fake_factory(long_dag(), auth=("token", "tok-real"))
    evil = fake_factory(long_dag())
    start_victim(real, "victim", token="tok-real")
    project, private = tmp_path / "proj", tmp_path / "proj.tmp"
    project.mkdir()
    planted = [
        plant(project / ".dagu-ci", "run-deploy-x.json", url=evil.url, run_id="x", job="gl-4242"),
        plant(project / ".dagu-ci", "run-deploy-victim.json", url=real.url, run_id="victim", job="gl-4242"),
    ]
    env = {
        "GITLAB_CI": "true",
        "CI": "true",
        "CI_JOB_ID": "4242",
        "CI_PROJECT_DIR": str(project),
        "RUNNER_TEMP_PROJECT_DIR": str(private),
        "DAGU_INPUT_DAG": "deploy",
        "DAGU_INPUT_URL": real.url,
        "DAGU_INPUT_PARAMS": "",
        "DAGU_INPUT_TIMEOUT": "0",
        "DAGU_API_TOKEN": "tok-real",
    }
    full = {**HOST_ENV, **env}
    job = subprocess.Popen(
        [sys.executable, ENTRYPOINT, "sh", "-c", template_script()],
        env=full,
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        (state_file,) = wait_for_files(private / ".dagu-ci")
        run_id = json.loads(state_file.read_text())["run_id"]
        real.wait_for_status("deploy", run_id, {1})
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(timeout=WAIT_LIMIT)

    after = run_entrypoint("sh", "-c", template_script("after_script"), env=env, cwd=project)
    assert after.returncode == 0, after.stdout + after.stderr
    assert f"stopped run {run_id} of deploy" in after.stdout
    real.wait_for_status("deploy", run_id, {3})
    assert real.get_run("deploy", "victim").status == 1
    assert evil.requests == []
    assert all(path.exists() for path in planted)
    assert "tok-real" not in after.stdout + after.stderr


def test_state_of_another_job_or_server_is_left_alone_with_a_warning(fake_factory, tmp_path):
    real = fake_factory(long_dag(), auth=("token", "tok-real"))
    evil = fake_factory(long_dag())
    for run_id in ("victim", "ours"):
        start_victim(real, run_id, token="tok-real")
    directory = tmp_path / ".dagu-ci"
    other_job = plant(directory, "run-a.json", url=real.url, run_id="victim", job="gl-4241")
    other_server = plant(directory, "run-b.json", url=evil.url + "/base", run_id="x", job="gl-4242")
    unreadable = directory / "run-c.json"
    unreadable.write_text("{not json")
    ours = plant(directory, "run-d.json", url=real.url, run_id="ours", job="gl-4242")
    env = {"GITLAB_CI": "true", "CI_JOB_ID": "4242", "DAGU_API_TOKEN": "tok-real"}

    result = run_cli("stop", "--from-state", "--url", real.url, "--state-dir", str(directory), "--json", env=env)
    assert result.code == 0, result.output
    assert json.loads(result.stdout) == [
        {"dag": "deploy", "name": "deploy", "run_id": "ours", "action": "stopped", "status": "running"}
    ]
    warnings = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert len(warnings) == 3, result.stderr
    assert re.search(r"run-a\.json.*another CI job", result.stderr)
    assert re.search(
        rf"run-b\.json.*names {re.escape(evil.url)}, not the configured {re.escape(real.url)}", result.stderr
    )
    assert re.search(r"run-c\.json.*not a state file", result.stderr)
    real.wait_for_status("deploy", "ours", {3})
    assert real.get_run("deploy", "victim").status == 1
    assert evil.requests == []
    assert other_job.exists() and other_server.exists() and unreadable.exists() and not ours.exists()


def test_github_post_step_acts_only_on_its_own_main_steps_file(fake_factory, tmp_path):
    """The main step hands the post step a secret through GITHUB_STATE; a file of the same job
    without it (another step's, or forged) is left alone."""
    real = fake_factory(long_dag(), auth=("token", "tok-gh"))
    start_victim(real, "victim", token="tok-gh")
    runner_temp, workspace = tmp_path / "_temp", tmp_path / "ws"
    runner_temp.mkdir()
    workspace.mkdir()
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_RUN_ID": "77",
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_JOB": "deploy",
        "GITHUB_WORKSPACE": str(workspace),
        "RUNNER_TEMP": str(runner_temp),
        "INPUT_DAG": "deploy",
        "INPUT_URL": real.url,
        "INPUT_TOKEN": "tok-gh",
        "INPUT_RUN-ID": "gh-main",
        "INPUT_POLL-INTERVAL": "0.1",
        "GITHUB_STATE": str(runner_temp / "save_state"),
        "GITHUB_OUTPUT": str(runner_temp / "out"),
    }
    full = {**HOST_ENV, **env}
    main = subprocess.Popen(
        [sys.executable, ENTRYPOINT], env=full, cwd=workspace, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        (state_file,) = wait_for_files(runner_temp / ".dagu-ci")
        real.wait_for_status("deploy", "gh-main", {1})
    finally:
        main.kill()
        main.wait(timeout=WAIT_LIMIT)
    saved = json.loads(state_file.read_text())
    other = plant(
        runner_temp / ".dagu-ci", "run-other.json", url=real.url, run_id="victim", job=saved["job"], key="0" * 32
    )
    assert not (workspace / ".dagu-ci").exists()

    # What the runner does between the steps: GITHUB_STATE's lines become the post step's STATE_*.
    handed = dict(line.split("=", 1) for line in (runner_temp / "save_state").read_text().splitlines())
    assert list(handed) == ["dagu_ci_key"] and re.fullmatch(r"[0-9a-f]{32}", handed["dagu_ci_key"])
    post_env = {**full, **{f"STATE_{key}": value for key, value in handed.items()}}
    post = tmp_path / "bin" / "dagu-ci-post"
    post.parent.mkdir()
    post.symlink_to(ENTRYPOINT)
    proc = subprocess.run(
        [sys.executable, str(post)], env=post_env, cwd=workspace, capture_output=True, text=True, timeout=2 * WAIT_LIMIT
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "stopped run gh-main of deploy" in proc.stdout
    assert re.search(r"warning: .*run-other\.json.*another", proc.stdout)
    real.wait_for_status("deploy", "gh-main", {3})
    assert real.get_run("deploy", "victim").status == 1
    assert other.exists() and not state_file.exists()
    assert "tok-gh" not in proc.stdout + proc.stderr


# -- credentials (item 7) ------------------------------------------------------------------------


def test_credentials_only_in_the_url_reach_the_backstop(fake_factory, tmp_path):
    server = fake_factory(long_dag(), auth=("basic", "ci", "pw-s3cret"))
    with_credentials = server.url.replace("://", "://ci:pw-s3cret@", 1)
    proc = start_cli(
        "run", "deploy", "--url", with_credentials, *FAST, "--run-id", "basic", "--state-dir", str(tmp_path)
    )
    proc.wait_for("working")
    (state_file,) = tmp_path.glob("run-*.json")
    proc.send_signal(signal.SIGKILL)
    proc.finish()
    assert "pw-s3cret" not in state_file.read_text() and "ci:" not in state_file.read_text()

    result = run_cli("stop", "--from-state", "--url", with_credentials, "--state-dir", str(tmp_path))
    assert result.code == 0, result.output
    assert "stopped run basic of deploy" in result.stdout
    assert "pw-s3cret" not in result.output
    server.wait_for_status("deploy", "basic", {3})


# -- what is shown and left behind (issue 10 item 8) --------------------------------------------


def test_stop_latest_names_the_run_it_stopped(fake_factory):
    server = fake_factory(long_dag())
    start_victim(server, "the-newest")
    result = run_cli("stop", "deploy", "latest", "--url", server.url)
    assert result.code == 0, result.output
    assert "run the-newest of deploy" in result.stdout and "run latest" not in result.stdout
    server.wait_for_status("deploy", "the-newest", {3})
    again = run_cli("stop", "deploy", "latest", "--url", server.url, "--json")
    assert json.loads(again.stdout)["run_id"] == "the-newest"


def test_no_empty_state_folder_is_left_behind(fake_factory, tmp_path):
    server = fake_factory(Dag(file="quick", name="quick", steps=[Step("s", [out("hi")])]), long_dag())
    private = tmp_path / "proj.tmp"
    env = {
        "GITLAB_CI": "true",
        "CI_JOB_ID": "9",
        "CI_PROJECT_DIR": str(tmp_path / "proj"),
        "RUNNER_TEMP_PROJECT_DIR": str(private),
    }
    assert run_cli("run", "quick", "--url", server.url, *FAST, env=env).code == 0
    assert not (private / ".dagu-ci").exists()

    proc = start_cli("run", "deploy", "--url", server.url, *FAST, "--run-id", "killed", env=env)
    proc.wait_for("working")
    assert wait_for_files(private / ".dagu-ci")
    proc.send_signal(signal.SIGKILL)
    proc.finish()
    result = run_cli("stop", "--from-state", "--url", server.url, env=env)
    assert "stopped run killed of deploy" in result.stdout, result.output
    assert not (private / ".dagu-ci").exists()
    assert not (tmp_path / "proj").exists()  # nothing in the checkout either


def test_state_file_text_cannot_become_a_workflow_command(fake_factory, tmp_path):
    """A state file's name and contents are untrusted text: whatever they hold shows as one
    inert line, so nothing in them reaches GitHub or GitLab as a command or a section."""
    server = fake_factory(long_dag())
    start_victim(server, "ours")
    directory = tmp_path / ".dagu-ci"
    plant(directory, "run-x\n::error::named.json", url=server.url, run_id="x", job="gl-1")
    plant(directory, "run-y.json", url="http://evil\n::add-mask::host:1", run_id="y", job="gl-4242")
    plant(directory, "run-z.json", url=server.url, run_id="z", job="\n::warning::job\r\x1b[0Ksection_start:1:x")
    plant(
        directory,
        "run-ours.json",
        url=server.url,
        run_id="ours",
        job="gl-4242",
        name="deploy",
        dag="deploy\n::stop-commands::x",
    )
    env = {"GITLAB_CI": "true", "CI_JOB_ID": "4242", "GITHUB_ACTIONS": ""}
    result = run_cli("stop", "--from-state", "--url", server.url, "--state-dir", str(directory), env=env)
    assert result.code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 4 and all(line.startswith("dagu-ci: ") for line in lines), lines
    assert "\r" not in result.output and "\x1b" not in result.output
    assert "stopped run ours of deploy" in result.stdout
