"""Files other programs read (CI hosts, scripts): written whole or not at all, and
checked before a run starts, so that a bad path never costs a run's report."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from dagu_ci.errors import UsageError


@dataclass(frozen=True)
class Target:
    """A file (or folder) a run writes: `what` names it for people (an option or a variable)."""

    what: str
    path: Optional[str]
    folder: bool = False


# How the files and streams dagu-ci writes treat text their encoding cannot hold.
ENCODING_ERRORS = "backslashreplace"


def write_atomic(path: str, text: str) -> None:
    """A reader (a CI host collecting artifacts, a script) never sees half a file.

    Text UTF-8 cannot hold (a lone surrogate a broken server sent) is written as a
    backslash escape: the file is always written. An OSError names `path` (not the
    temporary file), and leaves no temporary file behind.
    """
    directory = os.path.dirname(os.path.abspath(path))
    temp = f"{path}.tmp{os.getpid()}"
    try:
        os.makedirs(directory, exist_ok=True)
        with open(temp, "w", encoding="utf-8", errors=ENCODING_ERRORS) as handle:
            handle.write(text)
        os.replace(temp, path)
    except OSError as exc:
        try:
            os.remove(temp)
        except OSError:
            pass
        raise OSError(exc.errno, exc.strerror, path) from exc


def check_writable(target: Target) -> None:
    """UsageError unless `target` can be written; creates nothing that stays.

    A missing file or folder is fine if it could be made: the nearest existing folder
    above it must take a new file (tried with a probe file, removed at once, because
    permission bits do not tell, e.g. for root or under /proc).
    """
    path = os.path.abspath(target.path or "")
    if os.path.isdir(path) and not target.folder:
        raise UsageError(f"{target.what} {target.path}: is a folder, not a file")
    if os.path.exists(path) and not os.path.isdir(path):
        if target.folder:
            raise UsageError(f"{target.what} {target.path}: is a file, not a folder")
        try:
            with open(path, "a", encoding="utf-8"):
                pass  # opened for appending, written nothing
        except OSError as exc:
            raise UsageError(f"{target.what} {target.path}: cannot write there ({exc.strerror})") from None
    folder = path if target.folder else os.path.dirname(path)
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise UsageError(f"{target.what} {target.path}: {folder} is a file, not a folder")
    import tempfile  # here: cli.py imports this module, and --version/--help should not pay for it

    try:
        handle, probe = tempfile.mkstemp(prefix=".dagu-ci-probe-", dir=folder)
    except OSError as exc:
        raise UsageError(f"{target.what} {target.path}: cannot write in {folder} ({exc.strerror})") from None
    os.close(handle)
    os.remove(probe)


def describe(exc: OSError, path: Optional[str] = None) -> str:
    """'PATH (Permission denied)' for a warning."""
    return f"{exc.filename or path or 'a report'} ({exc.strerror or exc})"
