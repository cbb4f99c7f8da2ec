"""What a new user hits first (issue 10, item 8): options and arguments, checked before the
server is asked, and params too big for a command line."""

from __future__ import annotations

import json
import subprocess

from tests.conftest import ROOT, clean_env, cli_command, run_cli
from tests.fakedagu import Dag, Step, out
from tests.inprocess import invoke
from tests.test_run_e2e import FAST, assert_clean_error, log_lines


def deploy_dag():
    return Dag(file="deploy", params={"VERSION": "0.0.0"}, steps=[Step("build", [out("building {VERSION}")])])


def test_insecure_on_a_plain_http_url_says_nothing_about_tls(fake_factory):
    server = fake_factory(deploy_dag())
    assert server.url.startswith("http://")
    for args in (("dags", "--insecure"), ("run", "deploy", *FAST, "--insecure")):
        result = run_cli(*args, "--url", server.url)
        assert result.code == 0, result.output
        assert "TLS" not in result.output
    result = run_cli("dags", "--url", server.url, env={"DAGU_INSECURE": "1"})
    assert result.code == 0 and "TLS" not in result.output, result.output


def test_run_takes_params_as_arguments_like_start(fake_factory):
    server = fake_factory(deploy_dag())
    result = run_cli("run", "deploy", "VERSION=1.2.3", "--url", server.url, *FAST, "--run-id", "r1")
    assert result.code == 0, result.output
    assert log_lines(result.stdout) == ["building 1.2.3"]
    assert server.get_run("deploy", "r1").effective_params["VERSION"] == "1.2.3"
    # --param still wins over the others, as --param wins over --params.
    result = run_cli("run", "deploy", "VERSION=1", "--param", "VERSION=2", "--url", server.url, *FAST, "--run-id", "r2")
    assert result.code == 0, result.output
    assert server.get_run("deploy", "r2").effective_params["VERSION"] == "2"


def test_run_spec_with_params_as_arguments(fake_factory, tmp_path):
    server = fake_factory()
    spec = tmp_path / "review.yaml"
    spec.write_text("params:\n  - VERSION: 0.0.0\nsteps:\n  - name: a\n    command: echo ${VERSION}\n")
    result = run_cli("run", "--spec", str(spec), "VERSION=4.5.6", "--url", server.url, *FAST, "--run-id", "s1")
    assert result.code == 0, result.output
    assert json.loads(server.get_run("review", "s1").params) == {"VERSION": "4.5.6"}


def test_run_without_a_dag_is_a_usage_error():
    assert_clean_error(invoke("run", "VERSION=1"), 2, r"run needs a DAG")


def test_a_bad_run_id_is_refused_before_the_server_is_asked(fake_factory):
    server = fake_factory(deploy_dag())
    for command in ("run", "start"):
        result = invoke(command, "deploy", "--run-id", "has space", "--url", server.url)
        assert_clean_error(result, 2, r"bad --run-id 'has space'")
    assert server.requests == []


def test_validate_and_push_of_a_missing_file_exit_2_before_the_server_is_asked(fake_factory, tmp_path):
    server = fake_factory(deploy_dag())
    missing = str(tmp_path / "missing.yaml")
    assert_clean_error(invoke("validate", missing, "--local"), 2, r"missing\.yaml.*(does not exist|no such file)")
    for command in ("validate", "push"):
        assert_clean_error(invoke(command, missing, "--url", server.url), 2, r"missing\.yaml")
    assert server.requests == []


# -- --params @FILE and --params - ------------------------------------------------------

BIG = "x" * (1024 * 1024)  # past Linux's 128 KiB limit on one argument


def test_a_megabyte_param_from_a_file(fake_factory, tmp_path):
    server = fake_factory(Dag(file="deploy", params={"BLOB": "", "NOTE": ""}, steps=[Step("a", [out("ok")])]))
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"BLOB": BIG, "NOTE": "é"}), encoding="utf-8")
    result = run_cli("start", "deploy", "--params", f"@{params}", "--url", server.url, "--run-id", "big1")
    assert result.code == 0, result.output
    assert json.loads(server.get_run("deploy", "big1").params) == {"BLOB": BIG, "NOTE": "é"}


def test_params_from_stdin(fake_factory):
    server = fake_factory(deploy_dag())
    proc = subprocess.run(
        cli_command("run", "deploy", "--params", "-", "--url", server.url, *FAST, "--run-id", "in1"),
        input="VERSION: 7.7.7\n",
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=90,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert log_lines(proc.stdout) == ["building 7.7.7"]


def test_a_params_file_that_cannot_be_read_is_a_usage_error(fake_factory, tmp_path):
    server = fake_factory(deploy_dag())
    missing = tmp_path / "nope.json"
    assert_clean_error(
        invoke("run", "deploy", "--params", f"@{missing}", "--url", server.url),
        2,
        r"--params @.*nope\.json: No such file",
    )
    not_text = tmp_path / "binary"
    not_text.write_bytes(b"K=\xff\xfe")
    assert_clean_error(
        invoke("start", "deploy", "--params", f"@{not_text}", "--url", server.url),
        2,
        r"--params @.*binary: not UTF-8 text",
    )
    assert server.requests == []
