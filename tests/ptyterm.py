"""dagu-ci on a real pseudo-terminal of a chosen size, its output replayed into a
terminal emulator model (pyte), so tests see the screen a person would see."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time
from dataclasses import dataclass
from typing import Callable, List, Optional

import pyte

from tests.conftest import ROOT, clean_env, cli_command

CLEAR = "\r\x1b[2K"
SPINNER = re.compile(r"^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏|/\\-] ")


def set_size(fd: int, columns: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


@dataclass
class PtyRun:
    code: int
    output: bytes
    columns: int
    rows: int
    marks: List[int]  # output offsets where `on_output` acted

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", "replace")

    def emulator(self) -> pyte.Screen:
        screen = pyte.Screen(self.columns, self.rows)
        pyte.ByteStream(screen).feed(self.output)
        return screen

    def screen(self) -> List[str]:
        """The final screen's rows (trailing blanks removed), as the emulator shows them."""
        rows = [row.rstrip() for row in self.emulator().display]
        while rows and not rows[-1]:
            rows.pop()
        return rows

    def status_lines(self, start: int = 0) -> List[str]:
        """Each progress line drawn (from output offset `start` on), as written."""
        text = self.output[start:].decode("utf-8", "replace")
        drawn = []
        for segment in text.split(CLEAR)[1:]:
            line = re.split(r"[\r\n]", segment, maxsplit=1)[0]
            if SPINNER.match(line):
                drawn.append(line)
        return drawn


def run_in_pty(
    *args: str,
    columns: int,
    rows: int = 1000,
    env: Optional[dict] = None,
    timeout: float = 90,
    on_output: Optional[Callable[[bytes, int], bool]] = None,
) -> PtyRun:
    """Run the CLI with stdout and stderr on a pty of `columns` x `rows`.

    `on_output(output, master_fd)` is called as output arrives; when it returns True
    the current offset is recorded in `marks` (e.g. where the test resized the pty).
    """
    master, slave = os.openpty()
    set_size(slave, columns, rows)
    proc = subprocess.Popen(
        cli_command(*args),
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=clean_env({"TERM": "xterm-256color", "PYTHONIOENCODING": "utf-8", **(env or {})}),
        cwd=ROOT,
    )
    os.close(slave)
    output = b""
    marks: List[int] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer has closed the pty
                break
            if not chunk:
                break
            output += chunk
            if on_output is not None and on_output(output, master):
                marks.append(len(output))
        else:
            raise AssertionError(f"dagu-ci did not finish within {timeout}s:\n{output.decode(errors='replace')}")
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return PtyRun(code, output, columns, rows, marks)
