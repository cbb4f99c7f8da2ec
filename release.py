#!/usr/bin/env python3
"""Release helpers over the project's two facts, each defined once:

- the version: `__version__` in dagu_ci/__init__.py, which setuptools reads into the package metadata;
- the image repository: `image` in pyproject.toml's [tool.dagu-ci] table.

Every other place that names them (CHANGELOG.md, the README, the GitLab template, every file under
examples/, the workflows) is checked against them by `references` (and tests/test_release.py).

    python release.py version | image | image-ref   print one fact
    python release.py references                     every reference found; exit 1 on a disagreement
    python release.py check vX.Y.Z [--owner OWNER]   may this tag be released? (exit 1 with the reasons)
    python release.py notes X.Y.Z                    the version's CHANGELOG section (release notes)
    python release.py action-yml X.Y.Z [PATH]        point action.yml's runs.image at the released image
    python release.py image-tags X.Y.Z               X.Y.Z, X.Y and X, one a line
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

if sys.version_info >= (3, 11):
    import tomllib
else:  # the tests run on every Python the package claims
    import tomli as tomllib

ROOT = os.path.dirname(os.path.abspath(__file__))
VERSION_FILE = os.path.join("dagu_ci", "__init__.py")
CHANGELOG = "CHANGELOG.md"
# The files a user copies or reads for how to run dagu-ci; examples/ is walked whole, so an
# example added later is checked too.
HOST_FILES = ("README.md", CHANGELOG, "action.yml", ".gitlab-ci-template.yml", "Dockerfile")
HOST_DIRS = ("examples", os.path.join(".github", "workflows"))
SEMVER = re.compile(r"(\d+)\.(\d+)\.(\d+)")
# Domains reserved for documentation (RFC 2606): a mirror there stands for the user's own registry.
EXAMPLE_DOMAIN = re.compile(r"(^|\.)example\.(com|org|net)(:\d+)?$")

# An image reference whose last path segment is dagu-ci: a registry host (with a dot) and a path,
# or the bare name with a tag. Not part of a URL or a longer path (the look-behind).
IMAGE_RE = re.compile(
    r"(?<![\w./])(?P<repo>(?:[a-z0-9][a-z0-9-]*\.)+[a-z]{2,}(?::\d+)?/(?:[a-z0-9._-]+/)*dagu-ci"
    r"|dagu-ci(?=:\w))(?::(?P<tag>\w[\w.-]*))?(?![\w-])"
)
ACTION_RE = re.compile(r"(?<![\w./-])(?P<repo>[\w.-]+/dagu-ci)@(?P<ref>[\w./-]+)")
PIN_RE = re.compile(r"\bdagu-ci\s*==\s*(?P<version>[\w.]+)")
GITHUB_RE = re.compile(r"https://github\.com/(?P<repo>[\w.-]+/dagu-ci)\b")
# A file of a release (the GitLab template, included remotely): the tag must be this version's.
RAW_RE = re.compile(r"https://raw\.githubusercontent\.com/(?P<repo>[\w.-]+/dagu-ci)/(?P<ref>[\w.-]+)/")


@dataclass(frozen=True)
class Reference:
    path: str
    line: int
    text: str
    problem: str = ""  # empty: it agrees

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.text}" + (f": {self.problem}" if self.problem else "")


def read(path: str, root: str = ROOT) -> str:
    with open(os.path.join(root, path), encoding="utf-8") as handle:
        return handle.read()


def version(root: str = ROOT) -> str:
    """`__version__` as setuptools reads it: the literal, without importing the package."""
    for node in ast.parse(read(VERSION_FILE, root)).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__version__" for t in node.targets):
            return str(ast.literal_eval(node.value))
    raise ValueError(f"{VERSION_FILE} sets no __version__")


def pyproject(root: str = ROOT) -> Dict[str, Any]:
    with open(os.path.join(root, "pyproject.toml"), "rb") as handle:
        return tomllib.load(handle)


def image(root: str = ROOT) -> str:
    return str(pyproject(root)["tool"]["dagu-ci"]["image"])


def image_ref(release: str, root: str = ROOT) -> str:
    return f"{image(root)}:{release}"


def github_repo(root: str = ROOT) -> str:
    """owner/name on GitHub: ghcr.io/OWNER/NAME is pushed from the repository OWNER/NAME."""
    return image(root).split("/", 1)[1]


def image_tags(release: str) -> List[str]:
    major, minor, _ = parse(release)
    return [release, f"{major}.{minor}", str(major)]


def parse(release: str) -> Tuple[int, ...]:
    match = SEMVER.fullmatch(release)
    if not match:
        raise ValueError(f"{release!r} is not a version X.Y.Z")
    return tuple(int(part) for part in match.groups())


def host_files(root: str = ROOT) -> List[str]:
    found = [path for path in HOST_FILES if os.path.exists(os.path.join(root, path))]
    for folder in HOST_DIRS:
        for base, dirs, files in os.walk(os.path.join(root, folder)):
            dirs.sort()
            found += sorted(os.path.relpath(os.path.join(base, name), root) for name in files)
    return found


def references(root: str = ROOT) -> Iterator[Reference]:
    """Every place a host file names the image, the action, a pinned package or the repository."""
    current, repository, repo = version(root), image(root), github_repo(root)
    major = str(parse(current)[0])
    for path in host_files(root):
        try:
            text = read(path, root)
        except UnicodeDecodeError:
            continue  # not text: names nothing
        released, mirrors = False, []
        for number, line in enumerate(text.splitlines(), 1):
            for match in IMAGE_RE.finditer(line):
                name, tag = match.group("repo"), match.group("tag")
                host = name.split("/", 1)[0] if "/" in name else ""
                problem = ""
                if name != repository and not EXAMPLE_DOMAIN.search(host):
                    problem = f"the image is {repository}"
                elif tag is not None and tag not in image_tags(current):
                    problem = f"the version is {current}"
                released = released or (name == repository and tag == current)
                if name != repository and not problem:
                    mirrors.append(Reference(path, number, match.group(0)))
                yield Reference(path, number, match.group(0), problem)
            for match in ACTION_RE.finditer(line):
                problem = ""
                if match.group("repo") != repo:
                    problem = f"the action is {repo}"
                elif match.group("ref") not in (f"v{major}", f"v{current}"):
                    problem = f"the action's tags are v{major} (prebuilt image) and v{current}"
                yield Reference(path, number, match.group(0), problem)
            for match in PIN_RE.finditer(line):
                yield Reference(
                    path,
                    number,
                    match.group(0),
                    "" if match.group("version") == current else f"the version is {current}",
                )
            for match in GITHUB_RE.finditer(line):
                yield Reference(
                    path, number, match.group(0), "" if match.group("repo") == repo else f"the repository is {repo}"
                )
            for match in RAW_RE.finditer(line):
                problem = "" if match.group("repo") == repo else f"the repository is {repo}"
                if not problem and match.group("ref") != f"v{current}":
                    problem = f"the release is v{current}"
                yield Reference(path, number, match.group(0), problem)
        # A mirror (an example domain) shows how to override the default; the default is the release.
        for mirror in mirrors if not released else []:
            yield Reference(
                mirror.path,
                mirror.line,
                mirror.text,
                f"only a mirror: this file must default to {repository}:{current}",
            )


# -- CHANGELOG.md (Keep a Changelog) ----------------------------------------------------------
HEADING_RE = re.compile(r"^## \[(?P<name>[^\]]+)\](?: - (?P<date>.+))?$", re.M)


@dataclass(frozen=True)
class Section:
    name: str  # "Unreleased" or X.Y.Z
    date: str  # YYYY-MM-DD, "Unreleased", or ""
    body: str


def changelog_sections(root: str = ROOT) -> List[Section]:
    text = read(CHANGELOG, root)
    heads = list(HEADING_RE.finditer(text))
    sections = []
    for index, head in enumerate(heads):
        end = heads[index + 1].start() if index + 1 < len(heads) else len(text)
        body = text[head.end() : end]
        body = re.split(r"^\[[^\]]+\]: ", body, maxsplit=1, flags=re.M)[0]  # the link definitions at the end
        sections.append(Section(head.group("name"), (head.group("date") or "").strip(), body.strip()))
    return sections


def notes(release: str, root: str = ROOT) -> str:
    for section in changelog_sections(root):
        if section.name == release:
            return section.body
    raise ValueError(f"{CHANGELOG} has no section for {release}")


# -- the release ------------------------------------------------------------------------------
def check(tag: str, owner: Optional[str] = None, root: str = ROOT) -> List[str]:
    """Why this tag cannot be released (empty: it can)."""
    problems = []
    current = version(root)
    if tag != f"v{current}":
        problems.append(f"tag {tag} is not v{current}, the package's version ({VERSION_FILE})")
    released = [s for s in changelog_sections(root) if s.name != "Unreleased"]
    section = next((s for s in released if s.name == current), None)
    if section is None:
        problems.append(f"{CHANGELOG} has no section for {current}")
    else:
        if released[0] is not section:
            problems.append(f"{CHANGELOG}: the newest section is {released[0].name}, not {current}")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", section.date):
            problems.append(f"{CHANGELOG}: date the {current} section (## [{current}] - YYYY-MM-DD) before tagging")
        if not section.body:
            problems.append(f"{CHANGELOG}: the {current} section is empty")
    if owner is not None and github_repo(root).split("/")[0] != owner.lower():
        problems.append(
            f"the image {image(root)} is not under ghcr.io/{owner.lower()}/ "
            "(pyproject.toml [tool.dagu-ci] image): the release could not push it"
        )
    problems += [f"disagrees: {ref}" for ref in references(root) if ref.problem]
    return problems


ACTION_IMAGE_RE = re.compile(r"^(  image: )Dockerfile[ \t]*$", re.M)


def released_action(text: str, release: str, root: str = ROOT) -> str:
    """action.yml for the tagged release: runs the prebuilt image, builds nothing. The rest,
    post-entrypoint included, stays as it is (docker:// actions run the same entrypoints)."""
    new, count = ACTION_IMAGE_RE.subn(lambda m: f"{m.group(1)}docker://{image_ref(release, root)}", text)
    if count != 1:
        raise ValueError("action.yml has no `  image: Dockerfile` line under runs")
    return new


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python release.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("version", "image", "image-ref", "references"):
        commands.add_parser(name)
    checking = commands.add_parser("check")
    checking.add_argument("tag")
    checking.add_argument("--owner", help="the GitHub repository's owner (the image must be under ghcr.io/OWNER/)")
    commands.add_parser("notes").add_argument("release")
    commands.add_parser("image-tags").add_argument("release")
    action = commands.add_parser("action-yml")
    action.add_argument("release")
    action.add_argument("path", nargs="?", default=os.path.join(ROOT, "action.yml"))
    args = parser.parse_args(argv)
    try:
        if args.command == "version":
            print(version())
        elif args.command == "image":
            print(image())
        elif args.command == "image-ref":
            print(image_ref(version()))
        elif args.command == "image-tags":
            print("\n".join(image_tags(args.release)))
        elif args.command == "notes":
            print(notes(args.release))
        elif args.command == "references":
            found = list(references())
            for ref in found:
                print(ref)
            return 1 if any(ref.problem for ref in found) else 0
        elif args.command == "check":
            problems = check(args.tag, args.owner)
            for problem in problems:
                print(f"release: {problem}", file=sys.stderr)
            return 1 if problems else 0
        elif args.command == "action-yml":
            parse(args.release)
            with open(args.path, encoding="utf-8") as handle:
                text = released_action(handle.read(), args.release)
            with open(args.path, "w", encoding="utf-8") as handle:
                handle.write(text)
    except (OSError, ValueError, KeyError) as exc:
        print(f"release: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
