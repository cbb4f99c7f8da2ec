"""Run ids: derived from CI context so a retried job attaches instead of starting twice."""

import pytest

from dagu_ci.errors import UsageError
from dagu_ci.hosts import detect
from dagu_ci.hosts.runid import RUN_ID, derive_run_id as derive_from_job, validate_run_id

GITHUB = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "987654321", "GITHUB_RUN_ATTEMPT": "2", "GITHUB_JOB": "deploy"}


def derive_run_id(env, dag, params):
    """As a run does: from the job of the host the environment shows."""
    return derive_from_job(detect(env).job(), dag, params)


def test_github_id_is_stable_and_changes_with_attempt():
    first = derive_run_id(GITHUB, "deploy", "")
    assert first == derive_run_id(dict(GITHUB), "deploy", "")
    assert first.startswith("gh-987654321-2-deploy-")
    assert derive_run_id({**GITHUB, "GITHUB_RUN_ATTEMPT": "3"}, "deploy", "") != first


def test_matrix_legs_with_different_params_get_different_ids():
    assert derive_run_id(GITHUB, "deploy", "ENV=a") != derive_run_id(GITHUB, "deploy", "ENV=b")


def test_gitlab_and_jenkins():
    assert derive_run_id({"GITLAB_CI": "true", "CI_JOB_ID": "4242"}, "d", "").startswith("gl-4242-")
    jenkins = derive_run_id({"BUILD_TAG": "jenkins-folder/my job-17"}, "d", "")
    assert jenkins.startswith("jenkins-folder-my-job-17-")
    assert RUN_ID.match(jenkins)


def test_long_context_is_cut_to_64_and_stays_unique():
    env_a = {"BUILD_TAG": "jenkins-" + "x" * 100 + "-1"}
    env_b = {"BUILD_TAG": "jenkins-" + "x" * 100 + "-2"}
    a, b = derive_run_id(env_a, "d", ""), derive_run_id(env_b, "d", "")
    assert len(a) <= 64 and RUN_ID.match(a)
    assert a != b


def test_random_outside_ci():
    a, b = derive_run_id({}, "d", ""), derive_run_id({}, "d", "")
    assert a != b and RUN_ID.match(a)


@pytest.mark.parametrize("bad", ["latest", "a b", "x" * 65, "", "semi;colon"])
def test_invalid_run_id(bad):
    with pytest.raises(UsageError, match="--run-id"):
        validate_run_id(bad)
