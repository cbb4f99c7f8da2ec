"""The GitLab template run for real by gitlab-ci-local (pinned 4.56.2: later ones need Node 22).

Install: `npm_config_nodedir=/usr npm install --prefix .tools/node gitlab-ci-local@4.56.2`
(the nodedir lets its re2 module build offline from Debian's node headers) and Debian's rsync.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import junitparser
import pytest

from tests.conftest import WAIT_LIMIT
from tests.fakedagu import Dag, Step, fail, out
from tests.hosttools import BIN, ROOT
from tests.test_reporter_gitlab import sections

VERSION = "4.56.2"


def gitlab_ci_local() -> str:
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("node and npm are needed to run gitlab-ci-local")
    for path in (
        os.environ.get("GITLAB_CI_LOCAL"),
        os.path.join(ROOT, ".tools", "node", "node_modules", ".bin", "gitlab-ci-local"),
        shutil.which("gitlab-ci-local"),
    ):
        if path and os.path.exists(path):
            break
    else:
        pytest.skip(f"gitlab-ci-local is not installed (npm install --prefix .tools/node gitlab-ci-local@{VERSION})")
    if not shutil.which("rsync"):
        pytest.skip("gitlab-ci-local needs rsync (apt-get install rsync)")
    return path


PROJECT = """\
include:
  - local: .gitlab-ci-template.yml
    inputs:
      url: {url}
      image: dagu-ci:test
      stage: checks
stages: [checks]
checks:
  extends: .dagu-run
  image: null  # the image is the tool itself here: --shell-executor-no-image runs it on this machine
  variables:
    DAGU_DAG: checks
"""


def test_template_runs_in_gitlab_ci_local(fake_factory, tmp_path):
    binary = gitlab_ci_local()
    server = fake_factory(
        Dag(
            file="checks",
            name="checks",
            steps=[
                Step("lint", [out("lint ok")]),
                Step("unit", [out("ran 3"), out("FAILED test_x"), fail(1)], depends=["lint"]),
            ],
        )
    )
    shutil.copy(os.path.join(ROOT, ".gitlab-ci-template.yml"), tmp_path)
    (tmp_path / ".gitlab-ci.yml").write_text(PROJECT.format(url=server.url))
    git = ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci"]
    subprocess.run([*git, "init", "-q", "."], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "test"], cwd=tmp_path, check=True)
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": ROOT,
    }  # this checkout's dagu_ci
    env = {key: value for key, value in env.items() if not key.startswith(("DAGU_", "GITHUB_", "CI_"))}
    # `image: null` is only for this test (see PROJECT): the template itself passes check-jsonschema elsewhere.
    proc = subprocess.run(
        [
            binary,
            "--shell-executor-no-image",
            "--json-schema-validation=false",
            "--variable",
            "GITLAB_CI=true",
            "--variable",
            "CI_JOB_ID=777",
            "checks",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=10 * WAIT_LIMIT,
    )
    log = (tmp_path / ".gitlab-ci-local" / "output" / "checks.log").read_bytes().decode()  # keep the CRs
    assert proc.returncode != 0, proc.stdout + proc.stderr  # the DAG failed, so the job fails
    markers, _ = sections(log)
    assert [(kind, name) for kind, _, name, _, _ in markers] == [
        ("start", "dagu_step_1_lint"),
        ("end", "dagu_step_1_lint"),
        ("start", "dagu_step_2_unit"),
        ("end", "dagu_step_2_unit"),
    ], log
    dotenv_path = tmp_path / ".gitlab-ci-local" / "artifacts" / "checks" / ".gitlab-ci-reports" / "dotenv" / "dagu.env"
    dotenv = dict(line.split("=", 1) for line in dotenv_path.read_text().splitlines())
    assert re.fullmatch(r"gl-777-[0-9a-f]+", dotenv["DAGU_RUN_ID"])
    assert (dotenv["DAGU_STATUS"], dotenv["DAGU_EXIT_CODE"], dotenv["DAGU_RUN_DAG"]) == ("failed", "1", "checks")
    junit = junitparser.JUnitXml.fromfile(str(tmp_path / "dagu-junit.xml"))
    cases = {case.name: case for suite in junit for case in suite}
    assert cases["lint"].is_passed and cases["unit"].result[0].text.splitlines()[-2:] == ["ran 3", "FAILED test_x"]
