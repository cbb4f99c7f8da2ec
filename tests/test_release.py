"""One version and one image name: every host file, the CHANGELOG, the metadata and the workflows agree
with them (release.py), and the release itself (the tag check, the notes, the action's prebuilt image)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

import release
from tests.conftest import WAIT_LIMIT, run_cli
from tests.hosttools import ROOT, actionlint, run_entrypoint, tool

VERSION = release.version()
IMAGE_REF = release.image_ref(VERSION)
MAJOR = VERSION.split(".")[0]


def copy_tree(tmp_path):
    """The files release.py reads, in a folder a test may change."""
    tmp_path.mkdir(exist_ok=True)
    for name in ("pyproject.toml", "README.md", "CHANGELOG.md", "action.yml", ".gitlab-ci-template.yml", "Dockerfile"):
        shutil.copy(os.path.join(ROOT, name), tmp_path / name)
    for folder in ("examples", ".github", "dagu_ci"):
        shutil.copytree(os.path.join(ROOT, folder), tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def problems(root) -> list:
    return [str(ref) for ref in release.references(str(root)) if ref.problem]


def test_version_is_the_package_metadata_and_what_version_prints(tmp_path):
    """setuptools reads __version__ into the metadata (pyproject's dynamic version); --version prints it."""
    project = release.pyproject()
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "dagu_ci.__version__"}
    source = copy_tree(tmp_path / "src")
    meta = tmp_path / "meta"
    meta.mkdir()
    # The metadata setuptools writes (PKG-INFO; the wheel's METADATA is made from it).
    built = subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "-q", "egg_info", "--egg-base", str(meta)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=3 * WAIT_LIMIT,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    metadata = (meta / "dagu_ci.egg-info" / "PKG-INFO").read_text()
    assert re.search(r"^Version: (.+)$", metadata, re.M).group(1) == VERSION
    assert run_cli("--version").stdout == f"dagu-ci {VERSION}\n"
    assert run_entrypoint("--version").stdout == f"dagu-ci {VERSION}\n"


def test_version_costs_no_metadata_lookup():
    """importlib.metadata costs ~60 ms of start-up (bench: `dagu-ci --version`)."""
    probe = (
        "import sys; sys.argv = ['dagu-ci', '--version']\n"
        "from dagu_ci.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('importlib.metadata', 'requests'))))"
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=WAIT_LIMIT)
    assert proc.stdout.splitlines() == [f"dagu-ci {VERSION}", "[]"], proc.stderr


def test_every_reference_agrees_with_the_version_and_the_image():
    found = list(release.references())
    assert [str(ref) for ref in found if ref.problem] == []
    named = {(ref.path, ref.text) for ref in found}
    # The defaults each host file ships with, and the action as the README shows it.
    assert (".gitlab-ci-template.yml", IMAGE_REF) in named
    assert (os.path.join("examples", "Jenkinsfile"), IMAGE_REF) in named
    assert ("README.md", f"{release.github_repo()}@v{MAJOR}") in named
    assert ("CHANGELOG.md", IMAGE_REF) in named
    # Every file under examples/ is read, whoever added it.
    for base, _, files in os.walk(os.path.join(ROOT, "examples")):
        for name in files:
            assert os.path.relpath(os.path.join(base, name), ROOT) in release.host_files()


@pytest.mark.parametrize(
    "line, problem",
    [
        ("image: ghcr.io/dagu-ci/dagu-ci:0.0.9", "the version is"),
        ("image: registry.acme.io/tools/dagu-ci:{v}", "the image is"),
        ("image: dagu-ci:latest", "the image is"),
        ("- uses: someone/dagu-ci@v{v}", "the action is"),
        ("- uses: {repo}@main", "the action's tags are"),
        ("pip install dagu-ci==0.0.1", "the version is"),
        ("remote: https://raw.githubusercontent.com/{repo}/main/.gitlab-ci-template.yml", "the release is"),
        ("image: registry.example.com/mirror/dagu-ci:{v}", "only a mirror"),  # a mirror, and no default
    ],
)
def test_a_new_example_that_disagrees_is_found(tmp_path, line, problem):
    root = copy_tree(tmp_path)
    assert problems(root) == []
    (root / "examples" / "woodpecker.yml").write_text(
        "steps:\n  dagu:\n    " + line.format(v=VERSION, repo=release.github_repo()) + "\n"
    )
    (found,) = problems(root)
    assert found.startswith(os.path.join("examples", "woodpecker.yml") + ":3: ") and problem in found
    assert subprocess.run([sys.executable, "release.py", "references"], cwd=ROOT, capture_output=True).returncode == 0


def test_a_mirror_beside_the_released_default_is_an_override():
    text = f"image: ${{DAGU_CI_IMAGE:-{IMAGE_REF}}}  # or registry.example.com/mirror/dagu-ci:{VERSION}\n"
    assert release.IMAGE_RE.findall(text) == [
        (release.image(), VERSION),
        ("registry.example.com/mirror/dagu-ci", VERSION),
    ]


def read_text(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def test_changelog_keeps_a_changelog():
    text = read_text(os.path.join(ROOT, "CHANGELOG.md"))
    assert text.startswith("# Changelog\n") and "keepachangelog.com" in text
    sections = release.changelog_sections()
    assert sections[0].name == "Unreleased"
    assert sections[1].name == VERSION  # the newest release is the package's version
    for section in sections[1:]:
        release.parse(section.name)
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}|Unreleased", section.date), section
        assert re.search(r"^### (Added|Changed|Deprecated|Removed|Fixed|Security)$", section.body, re.M), section.name
    versions = [release.parse(s.name) for s in sections[1:]]
    assert versions == sorted(versions, reverse=True)
    for section in sections:  # each heading links to its tag (or the compare view)
        assert re.search(rf"^\[{re.escape(section.name)}\]: https://github\.com/{release.github_repo()}/", text, re.M)
    assert "### Added" in release.notes(VERSION) and not release.notes(VERSION).startswith("##")


def date_the_section(root) -> None:
    path = root / "CHANGELOG.md"
    path.write_text(path.read_text().replace(f"## [{VERSION}] - Unreleased", f"## [{VERSION}] - 2030-01-02"))


def test_release_check_refuses_what_disagrees(tmp_path):
    root = copy_tree(tmp_path)
    date_the_section(root)
    owner = release.github_repo().split("/")[0]
    assert release.check(f"v{VERSION}", owner.upper(), str(root)) == []  # GitHub's owner may be capitalised
    assert release.check(f"v{VERSION}.1", owner, str(root)) == [
        f"tag v{VERSION}.1 is not v{VERSION}, the package's version ({release.VERSION_FILE})"
    ]
    (wrong_owner,) = release.check(f"v{VERSION}", "someone-else", str(root))
    assert "is not under ghcr.io/someone-else/" in wrong_owner
    (root / "examples" / "extra.yml").write_text("image: ghcr.io/dagu-ci/dagu-ci:0.0.9\n")
    (stale,) = release.check(f"v{VERSION}", None, str(root))
    assert stale.startswith("disagrees: examples/extra.yml:1:")


def test_release_check_wants_the_section_dated(tmp_path):
    root = copy_tree(tmp_path)
    undated = release.check(f"v{VERSION}", None, str(root))
    # Today's tree is ready but for the date the maintainer gives the section when tagging.
    assert undated in ([], [f"CHANGELOG.md: date the {VERSION} section (## [{VERSION}] - YYYY-MM-DD) before tagging"])
    proc = subprocess.run([sys.executable, "release.py", "check", "v0.0.0"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.startswith("release: tag v0.0.0 is not")


def test_released_action_runs_the_image_and_keeps_the_backstop(tmp_path):
    text = read_text(os.path.join(ROOT, "action.yml"))
    here, released = yaml.safe_load(text), yaml.safe_load(release.released_action(text, VERSION))
    assert here["runs"]["image"] == "Dockerfile"  # `uses: ./` builds the commit's own Dockerfile
    assert released["runs"]["image"] == f"docker://{IMAGE_REF}"
    here["runs"]["image"] = released["runs"]["image"]
    assert released == here  # nothing else changes: the post-entrypoint backstop and its post-if stay
    assert released["runs"]["post-entrypoint"] == "/usr/local/bin/dagu-ci-post"
    path = tmp_path / "action.yml"
    path.write_text(text)
    assert (
        subprocess.run([sys.executable, os.path.join(ROOT, "release.py"), "action-yml", VERSION, str(path)]).returncode
        == 0
    )
    assert path.read_text() == release.released_action(text, VERSION)
    checker = tool("check-jsonschema")
    proc = subprocess.run(
        [checker, "--builtin-schema", "vendor.github-actions", str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_image_tags_and_notes():
    assert release.image_tags("1.22.3") == ["1.22.3", "1.22", "1"]
    with pytest.raises(ValueError):
        release.image_tags("v1.2")
    proc = subprocess.run([sys.executable, "release.py", "notes", VERSION], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == release.notes(VERSION)


def workflow(name: str) -> dict:
    with open(os.path.join(ROOT, ".github", "workflows", name), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def test_workflows_pass_actionlint():
    linter = actionlint()
    proc = subprocess.run([linter, "-no-color"], cwd=ROOT, capture_output=True, text=True, timeout=3 * WAIT_LIMIT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ci_tests_every_python_the_package_claims():
    project = release.pyproject()["project"]
    floor = re.fullmatch(r">=3\.(\d+)", project["requires-python"]).group(1)
    claimed = [c.rsplit(" :: ", 1)[1] for c in project["classifiers"] if re.fullmatch(r".* :: 3\.\d+", c)]
    assert claimed[0] == f"3.{floor}"
    jobs = workflow("ci.yml")["jobs"]
    assert jobs["python"]["strategy"]["matrix"]["python"] == claimed
    assert {"run": "make test"} in jobs["make-test"]["steps"]


def test_release_workflow_takes_its_facts_from_release_py():
    text = read_text(os.path.join(ROOT, ".github", "workflows", "release.yml"))
    assert release.image() not in text and VERSION not in text  # nothing to keep in step by hand
    on = workflow("release.yml")[True]  # YAML 1.1 reads the key `on` as true
    assert on == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+"]}}
    jobs = workflow("release.yml")["jobs"]
    build = next(s for s in jobs["image"]["steps"] if s.get("uses", "").startswith("docker/build-push-action"))
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert build["with"]["sbom"] is True and build["with"]["provenance"] == "mode=max"
    assert jobs["pypi"]["permissions"] == {"id-token": "write"}  # trusted publishing, no token
    assert any("gh-action-pypi-publish" in s.get("uses", "") for s in jobs["pypi"]["steps"])
    assert "python release.py action-yml" in str(jobs["action"]["steps"])
