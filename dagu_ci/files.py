"""Files other programs read (CI hosts, scripts): written whole or not at all."""
from __future__ import annotations

import os

# How the files and streams dagu-ci writes treat text their encoding cannot hold.
ENCODING_ERRORS = "backslashreplace"


def write_atomic(path: str, text: str) -> None:
    """A reader (a CI host collecting artifacts, a script) never sees half a file.

    Text UTF-8 cannot hold (a lone surrogate a broken server sent) is written as a
    backslash escape: the file is always written."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temp = f"{path}.tmp{os.getpid()}"
    with open(temp, "w", encoding="utf-8", errors=ENCODING_ERRORS) as handle:
        handle.write(text)
    os.replace(temp, path)
