"""stdout as a run needs it: a reader that went away (`dagu-ci run x | head -3`) is a
cancellation to act on, never a traceback or an "Exception ignored" at exit.

Python ignores SIGPIPE, so a closed pipe shows up as EPIPE on the next write. The guard
swallows it and remembers; the run's lifecycle asks `raise_if_reader_gone()` at each poll
(which also sees a pipe whose reader left while nothing was being written) and stops the run.
"""

from __future__ import annotations

import os
import select
import stat
import sys
from typing import IO, Any, Optional

from dagu_ci.errors import OutputClosed


class GuardedStream:
    """Wraps a text stream; after EPIPE every write is dropped and `broken` is set."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.broken = False
        self.announced = False  # OutputClosed was raised for it

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self.mark_broken()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self.mark_broken()

    def reader_gone(self) -> bool:
        """True once a write met EPIPE, or the stream is a pipe whose reader has closed it."""
        if not self.broken and _pipe_closed(self.stream):
            self.mark_broken()
        return self.broken

    def mark_broken(self) -> None:
        """Point the descriptor at /dev/null: what is still buffered, and the interpreter's
        flush at exit, then go nowhere instead of failing again."""
        self.broken = True
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self.stream.fileno())
            os.close(null)
        except (OSError, ValueError, AttributeError):
            pass  # not a real file (a test's StringIO): writes are dropped here anyway

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno, ...: the stream's own
        return getattr(self.stream, name)


def _pipe_closed(stream: IO[str]) -> bool:
    try:
        fd = stream.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def guard_std_streams() -> None:
    """Install the guards as sys.stdout and sys.stderr (once). Only a closed stdout ends a
    run; a closed stderr just loses its lines."""
    if not isinstance(sys.stdout, GuardedStream):
        sys.stdout = GuardedStream(sys.stdout)
    if not isinstance(sys.stderr, GuardedStream):
        sys.stderr = GuardedStream(sys.stderr)


def stdout_reader_gone() -> bool:
    return isinstance(sys.stdout, GuardedStream) and sys.stdout.reader_gone()


def stdout_lost_output() -> bool:
    """A write to stdout went nowhere (its reader had left)."""
    return isinstance(sys.stdout, GuardedStream) and sys.stdout.broken


def raise_if_reader_gone(*_ignored: Any) -> None:
    """OutputClosed once stdout's reader has gone (a follower check, called each poll).
    Only once: the stop that follows keeps polling through the same check."""
    stream = sys.stdout
    if isinstance(stream, GuardedStream) and not stream.announced and stream.reader_gone():
        stream.announced = True
        raise OutputClosed()


def tell(text: str, stream: Optional[IO[str]] = None) -> None:
    """A line for people on stderr, if anyone still reads it."""
    target = stream or sys.stderr
    try:
        target.write(f"dagu-ci: {text}\n")
        target.flush()
    except (OSError, ValueError):
        pass  # nobody reads it either
