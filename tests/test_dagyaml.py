"""DAG files from the repository: local checks with file:line errors."""

import pytest

from dagu_ci.errors import UsageError
from dagu_ci.server.dagyaml import load_dag_file
from tests.conftest import run_cli


def write(tmp_path, text):
    path = tmp_path / "dag.yaml"
    path.write_text(text)
    return str(path)


def test_valid_file(tmp_path):
    text, spec = load_dag_file(write(tmp_path, "name: ship\nsteps:\n  - name: a\n    command: echo hi\n"))
    assert spec["name"] == "ship" and "echo hi" in text


@pytest.mark.parametrize(
    "text, message",
    [
        ("steps:\n  - name: a\n   command: x\n", r"dag\.yaml:3:4: expected <block end>"),
        ("name: x\n", r"dag\.yaml: no steps"),
        ("- just\n- a list\n", r"dag\.yaml:1: a DAG definition is a mapping"),
        ("", r"dag\.yaml: empty file"),
    ],
)
def test_broken_files(tmp_path, text, message):
    with pytest.raises(UsageError, match=message):
        load_dag_file(write(tmp_path, text))


def test_missing_file():
    with pytest.raises(UsageError, match="No such file"):
        load_dag_file("/nonexistent/dag.yaml")


def test_run_spec_checks_the_file_before_any_request(tmp_path):
    result = run_cli("run", "--spec", write(tmp_path, "name: x\n"), "--url", "http://127.0.0.1:9")
    assert result.code == 2
    assert result.stderr.strip().endswith("no steps: a DAG needs a non-empty `steps` list")
