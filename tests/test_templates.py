"""The host files users copy: the GitLab CI template and the README's workflows, checked with
the hosts' own schemas and linters."""

from __future__ import annotations

import json
import os
import re
import subprocess

import yaml

import release
from tests.hosttools import ROOT, actionlint, tool


def template_documents():
    with open(os.path.join(ROOT, ".gitlab-ci-template.yml"), encoding="utf-8") as handle:
        return list(yaml.safe_load_all(handle))


def template_script(part: str = "script") -> str:
    """The hidden job's `script` (or `after_script`) as the shell gets it."""
    _, jobs = template_documents()
    return "\n".join(jobs[".dagu-run"][part])


def test_both_template_documents_match_gitlabs_schema(tmp_path):
    """check-jsonschema reads one document per file, and the spec header makes two."""
    checker = tool("check-jsonschema")
    header, jobs = template_documents()
    for name, document in (("header", header), ("jobs", jobs)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(document))
        proc = subprocess.run(
            [checker, "--builtin-schema", "vendor.gitlab-ci", str(path)], capture_output=True, text=True
        )
        assert proc.returncode == 0, f"{name}: {proc.stdout}{proc.stderr}"


def test_template_inputs_and_hidden_job():
    header, jobs = template_documents()
    inputs = header["spec"]["inputs"]
    assert list(inputs) == [
        "dag",
        "spec",
        "url",
        "params",
        "timeout",
        "on-waiting",
        "queue-timeout",
        "sub-run-logs",
        "cancel-superseded",
        "stage",
        "image",
    ]
    assert inputs["image"]["default"] == release.image_ref(release.version())  # the release it ships with
    job = jobs[".dagu-run"]
    assert job["image"] == {"name": "$[[ inputs.image ]]", "entrypoint": [""]}
    assert job["artifacts"] == {"when": "always", "reports": {"dotenv": "dagu.env", "junit": "dagu-junit.xml"}}
    text = json.dumps(jobs)
    # Credentials only from CI/CD variables, which dagu-ci reads itself: never an input, never on argv.
    assert not re.search(r"inputs\.(token|password|username)", text)
    assert not re.search(r"--(token|password)", text)


def run_template_script(tmp_path, variables):
    """The job's script under sh, with a stand-in dagu-ci that prints the arguments it gets."""
    _, jobs = template_documents()
    stub = tmp_path / "dagu-ci"
    stub.write_text('#!/bin/sh\nfor a in "$@"; do printf "[%s]" "$a"; done\n')
    stub.chmod(0o755)
    env = {"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    env.update({k: ("" if v.startswith("$[[") else v) for k, v in jobs[".dagu-run"]["variables"].items()})
    env.update(variables)
    return subprocess.run(["sh", "-c", template_script()], env=env, capture_output=True, text=True)


def test_template_script_maps_dag_spec_and_params(tmp_path):
    by_dag = run_template_script(tmp_path, {"DAGU_DAG": "deploy", "DAGU_PARAMS": "A=1 B=two words"})
    assert by_dag.stdout == (
        "[run][deploy][--params][A=1 B=two words][--timeout][0][--on-waiting][wait]"
        "[--queue-timeout][0][--sub-run-logs][all][--junit][dagu-junit.xml]"
    ), by_dag.stderr
    by_spec = run_template_script(tmp_path, {"DAGU_INPUT_SPEC": "dags/review.yaml"})
    assert by_spec.stdout.startswith("[run][--spec][dags/review.yaml][--timeout]"), by_spec.stderr
    neither = run_template_script(tmp_path, {})
    assert neither.returncode == 2 and neither.stderr.startswith("dagu-ci: error: set DAGU_DAG")


def test_readme_workflows_pass_actionlint(tmp_path):
    linter = actionlint()
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        blocks = re.findall(r"```yaml\n# \.github/workflows/(\S+)\n(.*?)```", handle.read(), re.S)
    assert len(blocks) >= 2
    paths = []
    for name, body in blocks:
        path = tmp_path / name
        path.write_text(body)
        paths.append(str(path))
    proc = subprocess.run([linter, "-no-color", *paths], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_readme_gitlab_example_matches_gitlabs_schema(tmp_path):
    checker = tool("check-jsonschema")
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        (body,) = re.findall(r"```yaml\n# \.gitlab-ci\.yml\n(.*?)```", handle.read(), re.S)
    path = tmp_path / "gitlab-ci.json"
    path.write_text(json.dumps(yaml.safe_load(body)))
    proc = subprocess.run([checker, "--builtin-schema", "vendor.gitlab-ci", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
