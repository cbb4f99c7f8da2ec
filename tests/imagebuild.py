"""The Dockerfile built and run with Debian's buildah, where no Docker engine runs and no registry
can be reached.

`python -m tests.imagebuild` (`make image-base`, best effort in `make tools`) makes a stand-in for
the Dockerfile's base image: a debootstrapped Debian with its Python, tagged python:3.12-slim, with
the runtime's wheels inside (pip inside a build cannot verify the package index's certificate with
the base's CA bundle here, so the build installs from those wheels, offline). The stand-in checks the
Dockerfile's steps and the entrypoint, not the real base's size.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = "docker.io/library/python:3.12-slim"  # the Dockerfile's FROM
STANDIN_PYTHON = "3.11"  # Debian bookworm's
STANDIN_PACKAGES = "python3,python3-pip,python-is-python3,ca-certificates"
BUILDAH = ["buildah", "--storage-driver", "vfs"]  # no overlay mounts in this sandbox
BUILD_TIMEOUT = 900.0


@dataclass(frozen=True)
class Unavailable:
    reason: str


def buildah(*args: str, timeout: float = BUILD_TIMEOUT, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*BUILDAH, *args], capture_output=True, text=True, timeout=timeout, **kwargs)


def unavailable() -> Optional[Unavailable]:
    """Why the image cannot be built here, or None."""
    if not shutil.which("buildah"):
        return Unavailable("buildah is not installed (`make image-base` installs it and makes the stand-in base)")
    if os.geteuid() != 0:
        return Unavailable("buildah runs as root here (vfs storage, chroot isolation)")
    if buildah("inspect", "--type", "image", BASE, timeout=120).returncode != 0:
        return Unavailable(
            f"no {BASE} in buildah's storage and no registry to pull it from: `make image-base` makes a stand-in"
        )
    return None


def build(tag: str, *build_args: str) -> subprocess.CompletedProcess:
    args = [arg for pair in build_args for arg in ("--build-arg", pair)]
    return buildah("bud", "--isolation", "chroot", "--pull=never", "--layers=false", *args, "-t", tag, ROOT)


def standin_wheels(folder: str) -> None:
    """The runtime's dependencies (and the build's setuptools) as wheels for the stand-in's Python."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        project = tomllib.load(handle)
    wanted: List[str] = project["project"]["dependencies"] + project["build-system"]["requires"] + ["wheel"]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--python-version",
            STANDIN_PYTHON,
            "--platform",
            "manylinux2014_x86_64",
            "--platform",
            "manylinux_2_17_x86_64",
            "--platform",
            "any",
            "-d",
            folder,
            *wanted,
        ],
        check=True,
    )


def debian_mirror() -> str:
    for path in ("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"):
        try:
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    words = line.split()
                    if words[:1] == ["URIs:"] or (words[:1] == ["deb"] and "debian" in line):
                        url = words[1] if words[0] == "URIs:" else next(w for w in words[1:] if "://" in w)
                        if "security" not in url:
                            return url
        except OSError:
            continue
    return "http://deb.debian.org/debian"


def make_standin() -> int:
    """Build the stand-in base and tag it BASE (once: an existing one is kept)."""
    if buildah("inspect", "--type", "image", BASE, timeout=120).returncode == 0:
        print(f"image-base: {BASE} is already in buildah's storage")
        return 0
    work = tempfile.mkdtemp(prefix="dagu-ci-standin-")
    try:
        rootfs, wheels = os.path.join(work, "rootfs"), os.path.join(work, "wheels")
        print("image-base: debootstrap (about a minute)", flush=True)
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={STANDIN_PACKAGES}", "bookworm", rootfs, debian_mirror()],
            check=True,
            capture_output=True,
            timeout=BUILD_TIMEOUT,
        )
        os.remove(os.path.join(rootfs, "usr", "lib", f"python{STANDIN_PYTHON}", "EXTERNALLY-MANAGED"))
        standin_wheels(wheels)
        shutil.copytree(wheels, os.path.join(rootfs, "wheels"))
        container = buildah("from", "scratch").stdout.strip()
        try:
            mount = buildah("mount", container).stdout.strip()
            subprocess.run(["cp", "-a", f"{rootfs}/.", mount], check=True)
            buildah("umount", container)
            buildah(
                "config",
                "--env",
                "PATH=/usr/local/bin:/usr/bin:/bin",
                "--env",
                "PIP_NO_INDEX=1",
                "--env",
                "PIP_FIND_LINKS=/wheels",
                container,
            )
            committed = buildah("commit", "-q", container, BASE)
            if committed.returncode != 0:
                raise RuntimeError(committed.stderr.strip())
        finally:
            buildah("rm", container)
        print(f"image-base: made the stand-in {BASE} (Debian bookworm, Python {STANDIN_PYTHON})")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(make_standin())
