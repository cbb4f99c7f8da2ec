"""Artifact paths: everything lands inside the download folder, or nothing is written."""

import os

import pytest

from dagu_ci.errors import UsageError
from dagu_ci.run.artifacts import files, safe_target


@pytest.mark.parametrize(
    "bad", ["../x", "a/../../x", "/etc/passwd", "\\\\server\\share", "C:\\x", "a//b", "", "a/./../..", "x\0y"]
)
def test_escaping_paths_are_refused(tmp_path, bad):
    with pytest.raises(UsageError, match="outside the download folder"):
        safe_target(str(tmp_path), bad)


def test_a_symlink_inside_cannot_lead_out(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    inside = tmp_path / "dl"
    inside.mkdir()
    os.symlink(outside, inside / "link")
    with pytest.raises(UsageError):
        safe_target(str(inside), "link/file.txt")


def test_nested_paths_stay_inside(tmp_path):
    assert safe_target(str(tmp_path), "reports/a.html") == os.path.join(os.path.realpath(tmp_path), "reports", "a.html")


def test_listing_is_flattened_depth_first():
    listing = [
        {
            "name": "r",
            "path": "r",
            "type": "directory",
            "children": [{"name": "a", "path": "r/a", "type": "file", "size": 3}],
        },
        {"name": "b", "path": "b", "type": "file", "size": 1},
    ]
    assert [(a.path, a.size) for a in files(listing)] == [("r/a", 3), ("b", 1)]
