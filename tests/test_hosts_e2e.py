"""entrypoint.py run the way each CI host runs the image, against the fake Dagu server."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile

import junitparser
import pytest

from tests.conftest import WAIT_LIMIT, eventually
from tests.fakedagu import Dag, Step, fail, hold, out, sleep
from tests.hosttools import ENTRYPOINT, HOST_ENV, ROOT, run_entrypoint
from tests.reporting import Runner
from tests.test_reporter_github import HOSTILE
from tests.test_reporter_gitlab import sections
from tests.test_templates import template_script

DURATION = re.compile(r"duration=\d+\.\d{3}")


def deploy(*steps):
    return Dag(
        file="deploy",
        name="deploy",
        params={"VERSION": "0.0.0"},
        steps=list(steps)
        or [
            Step("build", [out("compiling {VERSION}"), sleep(0.2), out("built")]),
            Step("test", [out("tests pass")], depends=["build"]),
        ],
    )


def test_github_action_inputs_outputs_summary_and_inert_logs(fake_factory, tmp_path):
    server = fake_factory(
        deploy(
            Step("build", [out("compiling {VERSION}")]),
            Step("evil", [out(line) for line in HOSTILE], depends=["build"]),
        )
    )
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_RUN_ID": "9876",
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_JOB": "deploy",
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
        "INPUT_DAG": "deploy",
        "INPUT_URL": server.url,
        "INPUT_POLL-INTERVAL": "0.1",
        "INPUT_TOKEN": "tok-s3cret",
        "INPUT_PARAMS": "VERSION: 1.2.3\n",
        "INPUT_LOGS": "true",
        "INPUT_STOP-ON-CANCEL": "true",
        "INPUT_FAIL-ON-PARTIAL": "false",
        "INPUT_TIMEOUT": "0",
        "INPUT_RUN-ID": "",
        "INPUT_JUNIT": "reports/junit.xml",
    }
    proc = run_entrypoint(env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shown = Runner.read(proc.stdout)
    assert proc.stdout.startswith("::add-mask::tok-s3cret\n")
    assert "tok-s3cret" not in proc.stdout.split("\n", 1)[1] + proc.stderr
    assert {c.name for c in shown.commands} <= {"add-mask", "group", "endgroup", "stop-commands"}
    assert [c.data for c in shown.named("group")] == ["build", "evil"]
    assert [line for line in HOSTILE if "│ " + line.split("\r")[0] not in shown.visible] == []
    assert "│ compiling 1.2.3" in shown.visible

    lines = (tmp_path / "output").read_text().splitlines()
    run_id = lines[0].split("=", 1)[1]
    assert re.fullmatch(r"gh-9876-1-deploy-[0-9a-f]+", run_id)
    url = f"{server.url}/dag-runs/deploy/{run_id}"
    assert lines[:5] == [f"run-id={run_id}", f"url={url}", "status=succeeded", "exit-code=0", "outputs={}"]
    assert DURATION.fullmatch(lines[5]) and len(lines) == 6

    summary = (tmp_path / "summary").read_text()
    assert summary.startswith("### ✅ Dagu run of `deploy` succeeded\n")
    assert re.search(r"^\| build \| ✅ succeeded \| (<1s|\d+s) \|$", summary, re.M)
    assert re.search(r"^\| evil \| ✅ succeeded \| (<1s|\d+s) \|$", summary, re.M)
    assert f"Run [{run_id.replace('_', chr(92) + '_')}]({url}) in the Dagu UI · exit code 0" in summary
    assert '"VERSION": "1.2.3"' in summary or '"VERSION":"1.2.3"' in summary
    junit = junitparser.JUnitXml.fromfile(str(tmp_path / "reports" / "junit.xml"))
    assert [case.name for suite in junit for case in suite] == ["build", "evil"]


def test_github_failed_step_annotation_and_exit_code(fake_factory, tmp_path):
    server = fake_factory(deploy(Step("build", [out("step one"), out("boom: disk full"), fail(3)])))
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "INPUT_DAG": "deploy",
        "INPUT_URL": server.url,
        "INPUT_POLL-INTERVAL": "0.1",
    }
    proc = run_entrypoint(env=env, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (error,) = Runner.read(proc.stdout).named("error")
    assert error.properties["title"] == "Dagu step build failed (deploy)"
    assert error.data.splitlines()[-2:] == ["step one", "boom: disk full"]
    assert "status=failed\nexit-code=1\n" in (tmp_path / "output").read_text()


def jenkinsfile_commands() -> "tuple[str, str]":
    """The example Jenkinsfile's `sh` commands: the run, and the one in `post { aborted }`."""
    with open(os.path.join(ROOT, "examples", "Jenkinsfile"), encoding="utf-8") as handle:
        text = handle.read()
    (run,) = re.findall(r"sh '(dagu-ci run [^']+)'", text)
    (backstop,) = re.findall(r"aborted \{.*?sh '([^']+)'", text, re.S)
    return run, backstop


@pytest.mark.parametrize("host", ["gitlab", "jenkins"])
def test_a_killed_job_leaves_no_run_behind(fake_factory, tmp_path, host):
    """The host kills the job outright (no handler runs); its cancel hook, as the host file
    writes it (the template's after_script, the Jenkinsfile's aborted block), stops the run."""
    server = fake_factory(deploy(Step("long", [out("working"), hold("never")])), auth=("token", "tok-host"))
    # The state file goes to the job's temp directory beside the checkout, which a commit cannot reach.
    job_temp = tmp_path / "job.tmp"
    if host == "gitlab":
        env = gitlab_env(
            server, CI_PROJECT_DIR=str(tmp_path), RUNNER_TEMP_PROJECT_DIR=str(job_temp), DAGU_API_TOKEN="tok-host"
        )
        job, backstop = template_script(), template_script("after_script")
    else:
        env = {
            "JENKINS_URL": "http://jenkins:8080/",
            "BUILD_TAG": "jenkins-deploy-7",
            "GIT_COMMIT": "abc",
            "WORKSPACE": str(tmp_path),
            "WORKSPACE_TMP": str(job_temp),
            "DAGU_URL": server.url,
            "DAGU_API_TOKEN": "tok-host",
        }
        job, backstop = jenkinsfile_commands()
    full = {**HOST_ENV, **env}
    job_log = tmp_path / "job.log"
    with open(job_log, "wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, ENTRYPOINT, "sh", "-c", job],
            env=full,
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (state_file,) = eventually(
        lambda: list((job_temp / ".dagu-ci").glob("run-deploy-*.json")),
        lambda: (
            f"the job's state file (job {'ended' if proc.poll() is not None else 'running'}, "
            f"said: {job_log.read_text(errors='replace')!r})"
        ),
    )
    run_id = json.loads(state_file.read_text())["run_id"]
    server.wait_for_status("deploy", run_id, {1})
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=WAIT_LIMIT)
    assert server.get_run("deploy", run_id).status == 1  # nobody stopped it yet

    after = run_entrypoint("sh", "-c", backstop, env=env, cwd=tmp_path)
    assert after.returncode == 0, after.stdout + after.stderr
    assert f"stopped run {run_id} of deploy" in after.stdout
    assert "tok-host" not in after.stdout + after.stderr
    server.wait_for_status("deploy", run_id, {3})
    assert not (job_temp / ".dagu-ci").exists() and not (tmp_path / ".dagu-ci").exists()


def gitlab_env(server, **extra):
    """What the template's job sees: its variables with the inputs filled in, GitLab's own, and the job's."""
    return {
        "GITLAB_CI": "true",
        "CI": "true",
        "CI_JOB_ID": "4242",
        "DAGU_DOTENV": "dagu.env",
        "DAGU_INPUT_DAG": "deploy",
        "DAGU_INPUT_URL": server.url,
        "DAGU_INPUT_PARAMS": "",
        "DAGU_INPUT_TIMEOUT": "0",
        "DAGU_CI_POLL": "0.1",
        **extra,
    }


def test_gitlab_template_script_sections_dotenv_and_junit(fake_factory, tmp_path):
    server = fake_factory(
        deploy(),
        Dag(
            file="checks",
            name="checks",
            steps=[
                Step("lint", [out("lint ok")]),
                Step("unit", [out("ran 3"), out("FAILED test_x"), fail(1)]),
            ],
        ),
    )
    # GitLab's docker executor hands the image `sh -c <script>`: the entrypoint must pass it through.
    env = gitlab_env(server, DAGU_DAG="checks", DAGU_PARAMS="", DAGU_CI_REPORTER="gitlab")
    script = template_script().replace("dagu-ci run ", "dagu-ci run --poll-interval $DAGU_CI_POLL ")
    proc = run_entrypoint("sh", "-c", script, env=env, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    markers, _ = sections(proc.stdout)
    assert [(kind, name) for kind, _, name, _, _ in markers] == [
        ("start", "dagu_step_1_lint"),
        ("end", "dagu_step_1_lint"),
        ("start", "dagu_step_2_unit"),
        ("end", "dagu_step_2_unit"),
    ]
    dotenv = dict(line.split("=", 1) for line in (tmp_path / "dagu.env").read_text().splitlines())
    run_id = dotenv["DAGU_RUN_ID"]
    assert re.fullmatch(r"gl-4242-[0-9a-f]+", run_id)
    assert dotenv == {
        "DAGU_RUN_ID": run_id,
        "DAGU_RUN_URL": f"{server.url}/dag-runs/checks/{run_id}",
        "DAGU_RUN_DAG": "checks",
        "DAGU_STATUS": "failed",
        "DAGU_EXIT_CODE": "1",
        "DAGU_DURATION": dotenv["DAGU_DURATION"],
        "DAGU_OUTPUTS": "{}",
    }
    junit = junitparser.JUnitXml.fromfile(str(tmp_path / "dagu-junit.xml"))
    (suite,) = list(junit)
    cases = {case.name: case for case in suite}
    assert set(cases) == {"lint", "unit"} and cases["lint"].is_passed
    (failure,) = cases["unit"].result
    assert failure.text.splitlines()[-2:] == ["ran 3", "FAILED test_x"]


def test_gitlab_template_falls_back_to_the_dag_input(fake_factory, tmp_path):
    server = fake_factory(deploy())
    script = template_script().replace("dagu-ci run ", "dagu-ci run --poll-interval $DAGU_CI_POLL ")
    proc = run_entrypoint("sh", "-c", script, env=gitlab_env(server, DAGU_INPUT_PARAMS="VERSION=9.9"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "compiling 9.9" in proc.stdout
    assert "DAGU_RUN_DAG=deploy\n" in (tmp_path / "dagu.env").read_text()


def _interpreter_for_other_users():
    """An interpreter another uid can run (this venv's may live under /root), of our version."""
    for candidate in (sys.executable, "/usr/local/bin/python3", "/usr/bin/python3"):
        if not os.path.exists(candidate):
            continue
        probe = subprocess.run(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "sh",
                "-c",
                '"$0" -c "import sys; print(sys.version_info[:2])"',
                candidate,
            ],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.strip() == str(tuple(sys.version_info[:2])):
            return candidate
    return None


@pytest.fixture
def shared_tmp():
    """A directory another uid can reach (pytest's tmp_path sits in a root-only directory)."""
    path = tempfile.mkdtemp(prefix="dagu-ci-uid-")
    os.chmod(path, 0o755)
    yield pathlib.Path(path)
    shutil.rmtree(path, ignore_errors=True)


def test_jenkins_inside_as_another_uid_without_home(fake_factory, shared_tmp):
    """docker.image().inside: `cat` keeps the container up, then `sh -c 'dagu-ci run ...'` as the agent's uid."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run as another uid")
    python = _interpreter_for_other_users()
    if python is None:
        pytest.skip(f"no Python {sys.version_info[0]}.{sys.version_info[1]} that uid 65534 may run")
    server = fake_factory(deploy())
    bindir = shared_tmp / "bin"
    bindir.mkdir()
    (bindir / "dagu-ci").write_text(f"#!{python}\nfrom dagu_ci.cli import main\nmain()\n")
    (bindir / "dagu-ci").chmod(0o755)
    workspace = shared_tmp / "ws"
    workspace.mkdir()
    os.chmod(workspace, 0o777)
    site = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    env = {
        "HOME": "/nonexistent",
        "BUILD_TAG": "jenkins-deploy-12",
        "JENKINS_URL": "http://jenkins",
        "PATH": f"{bindir}:/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": os.pathsep.join([ROOT, *site]),
    }

    def drop():
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)

    assert run_entrypoint("cat", env=env, input="alive\n", python=python, preexec_fn=drop).stdout == "alive\n"
    proc = run_entrypoint(
        "sh",
        "-c",
        f"id -u; dagu-ci run deploy --url {server.url} --poll-interval 0.1 --junit dagu-junit.xml",
        env=env,
        cwd=workspace,
        python=python,
        preexec_fn=drop,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("65534\n")
    assert re.search(r"started run jenkins-deploy-12-[0-9a-f]+ of deploy", proc.stdout)
    assert "\x1b[" not in proc.stdout  # not a TTY, no FORCE_COLOR: no colours
    junit = junitparser.JUnitXml.fromfile(str(workspace / "dagu-junit.xml"))
    assert [case.name for suite in junit for case in suite] == ["build", "test"]
    assert proc.stderr == ""
