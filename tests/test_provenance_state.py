"""Provenance labels from each CI host, and the run state files backstops read."""

import re

from hypothesis import given, strategies as st

from dagu_ci.hosts import detect as detect_host
from dagu_ci.hosts.provenance import label_value
from dagu_ci.run import state


def detect(env):
    return detect_host(env).provenance()


def test_github_provenance():
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/app",
        "GITHUB_RUN_ID": "42",
        "GITHUB_RUN_ATTEMPT": "2",
        "GITHUB_SHA": "abc123",
        "GITHUB_REF_NAME": "main",
    }
    assert detect(env).labels() == [
        "ci=github",
        "ci-url=github.com/acme/app/actions/runs/42/attempts/2",
        "sha=abc123",
        "ref=main",
    ]


def test_gitlab_and_jenkins_provenance():
    gitlab = {
        "GITLAB_CI": "true",
        "CI_JOB_URL": "https://gl/x/-/jobs/7",
        "CI_COMMIT_SHA": "def",
        "CI_COMMIT_REF_NAME": "feature x",
    }
    assert detect(gitlab).labels() == ["ci=gitlab", "ci-url=gl/x/-/jobs/7", "sha=def", "ref=feature-x"]
    jenkins = {
        "JENKINS_URL": "https://j/",
        "BUILD_URL": "https://j/job/a/3/",
        "GIT_COMMIT": "f00",
        "BRANCH_NAME": "rel",
    }
    assert detect(jenkins).labels() == ["ci=jenkins", "ci-url=j/job/a/3/", "sha=f00", "ref=rel"]
    assert detect({}) is None


@given(st.text())
def test_any_label_value_is_one_dagu_accepts_and_keeps(text):
    """Dagu's ValidateLabel pattern and length, after its lower-casing: nothing it would refuse or change."""
    value = label_value(text)
    assert value == "" or re.fullmatch(r"[a-z0-9][a-z0-9_./-]*", value)
    assert len(value) <= 255 and value == value.lower()


def test_state_files_round_trip_and_forget(tmp_path):
    directory = detect_host({}).state_dir(cwd=str(tmp_path))
    assert directory == str(tmp_path / ".dagu-ci")
    run = state.RunState(url="http://dagu:8080", dag="deploy", name="deploy-prod", run_id="r1", job="gl-7", key="k")
    state.save(directory, run)
    (found,) = state.load_all(directory)
    loaded = found.run
    assert (loaded.url, loaded.dag, loaded.name, loaded.run_id, loaded.job, loaded.key) == (
        "http://dagu:8080",
        "deploy",
        "deploy-prod",
        "r1",
        "gl-7",
        "k",
    )
    assert loaded.pid > 0 and loaded.started_at > 0
    state.forget(directory, run)
    assert state.load_all(directory) == []
    assert not (tmp_path / ".dagu-ci").exists()  # no empty folder left behind


def test_state_dir_fallbacks(tmp_path):
    github = {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": "/ws/x", "RUNNER_TEMP": str(tmp_path / "absent")}
    assert detect_host(github).state_dir() == "/ws/x/.dagu-ci"  # no job temp directory: the workspace
    assert detect_host({}).state_dir(cwd=str(tmp_path)) == str(tmp_path / ".dagu-ci")
