"""Files other programs read (CI hosts, scripts): written whole or not at all."""
from __future__ import annotations

import os


def write_atomic(path: str, text: str) -> None:
    """A reader (a CI host collecting artifacts, a script) never sees half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temp = f"{path}.tmp{os.getpid()}"
    with open(temp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temp, path)
