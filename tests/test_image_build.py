"""The Dockerfile built with buildah and run the way each host runs the image: the GitHub Action (no
arguments, INPUT_*; its post-entrypoint), GitLab (`sh`), Jenkins (`cat`, any uid). Skipped, saying
why, where buildah or a base image is missing (tests/imagebuild.py; `make image-base`)."""

from __future__ import annotations

import json
import os
from typing import Dict, List, Optional

import pytest

import release
from tests import imagebuild
from tests.conftest import WAIT_LIMIT
from tests.fakedagu.yamlspec import load_dags
from tests.hosttools import ROOT

ENTRYPOINT = ["python", "/usr/local/bin/dagu-ci-entrypoint"]
RUNTIME = {"dagu-ci", "requests", "click", "pyyaml", "urllib3", "idna", "charset-normalizer", "certifi"}


@pytest.fixture(scope="module")
def image():
    missing = imagebuild.unavailable()
    if missing:
        pytest.skip(missing.reason)
    tag = f"localhost/dagu-ci:test-{os.getpid()}"
    built = imagebuild.build(tag, f"VERSION={release.version()}")
    assert built.returncode == 0, built.stderr[-3000:]
    yield tag
    imagebuild.buildah("rmi", tag, timeout=WAIT_LIMIT)


def start(image_name: str) -> str:
    made = imagebuild.buildah("from", "--pull=never", "-q", image_name, timeout=5 * WAIT_LIMIT)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


@pytest.fixture
def container(image):
    name = start(image)
    yield name
    imagebuild.buildah("rm", name, timeout=WAIT_LIMIT)


def run(
    container: str,
    *args: str,
    env: Optional[Dict[str, str]] = None,
    user: str = "",
    volumes: List[str] = (),
    command: List[str] = ENTRYPOINT,
):
    """What `docker run IMAGE ARGS` does: the image's entrypoint with ARGS (buildah run does not add it)."""
    options = [f"--env={k}={v}" for k, v in (env or {}).items()] + [f"--volume={v}" for v in volumes]
    options += [f"--user={user}"] if user else []
    return imagebuild.buildah(
        "run", "--isolation", "chroot", *options, container, "--", *command, *args, timeout=3 * WAIT_LIMIT
    )


def packages(container: str) -> set:
    listed = run(container, "list", "--format", "json", command=["python", "-m", "pip"])
    assert listed.returncode == 0, listed.stderr
    return {p["name"].lower() for p in json.loads(listed.stdout)}


def test_the_image_runs_as_each_host_runs_it(image, container):
    config = json.loads(imagebuild.buildah("inspect", "--type", "image", image).stdout)["OCIv1"]["config"]
    assert config["Entrypoint"] == ENTRYPOINT and not config.get("Cmd")
    assert config["Labels"]["org.opencontainers.image.version"] == release.version()
    assert config["Labels"]["org.opencontainers.image.title"] == "dagu-ci"

    version = run(container, "--version")
    assert (version.returncode, version.stdout) == (0, f"dagu-ci {release.version()}\n"), version.stderr
    shell = run(container, "sh", "-c", 'echo "$0 $1"; exit 7', "a", "b")  # GitLab's docker executor
    assert (shell.returncode, shell.stdout) == (7, "a b\n")
    # Jenkins' .inside: the agent's uid, no home, `dagu-ci` on PATH.
    other = run(container, "dagu-ci", "--version", user="1234:1234")
    assert (other.returncode, other.stdout) == (0, f"dagu-ci {release.version()}\n"), other.stderr
    # The action's post-entrypoint is in the image; with no state file left it stops nothing.
    post = run(
        container,
        env={"GITHUB_ACTIONS": "true", "INPUT_URL": "http://127.0.0.1:9"},
        command=["python", "/usr/local/bin/dagu-ci-post"],
    )
    assert post.returncode == 0, post.stdout + post.stderr


def test_the_image_adds_only_what_runs(image, container):
    base = start(imagebuild.BASE)
    try:
        added = packages(container) - packages(base)
    finally:
        imagebuild.buildah("rm", base, timeout=WAIT_LIMIT)
    assert added == RUNTIME
    leftovers = run(
        container, "-c", "ls -d /root/.cache/pip /tmp/dist /src /opt/dagu-ci 2>/dev/null; true", command=["sh"]
    )
    assert leftovers.stdout == ""  # no pip cache, no wheel, no build tree, no source copy


def test_the_action_runs_in_the_image_against_a_server(container, fake_factory, tmp_path):
    server = fake_factory(*load_dags(os.path.join(ROOT, "examples", "demo-dags.yaml")))
    files = tmp_path / "file_commands"
    files.mkdir()
    (files / "output").touch()
    proc = run(
        container,
        volumes=[f"{files}:/github/file_commands"],
        env={
            "GITHUB_ACTIONS": "true",
            "GITHUB_OUTPUT": "/github/file_commands/output",
            "INPUT_DAG": "deploy",
            "INPUT_URL": server.url,
            "INPUT_PARAMS": "VERSION: 1.2.3",
        },
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "│ building app 1.2.3" in proc.stdout
    assert "status=succeeded" in (files / "output").read_text()
