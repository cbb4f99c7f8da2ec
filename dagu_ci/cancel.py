"""SIGINT/SIGTERM (Ctrl-C, a CI host's cancel) as the Cancelled exception in the main thread.

The handler raises, so that a signal cuts short whatever the main thread waits in: a sleep,
a request, a write to a full pipe. But Python runs a handler between any two bytecodes,
also inside a finaliser (`__del__`, or the weakref callback `threading` runs for each ended
thread: one per request here), and an exception raised there is dropped with an "Exception
ignored" traceback. The signal is taken, so a second one would be ignored, and the run
would be followed on for ever. So the unraisable hook keeps a dropped Cancelled, and
`raise_if_lost()` (each follow round, each request) raises it again, in ordinary code,
while the run is followed: once an ending is under way (a stop), it must not be cut short.
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from dagu_ci.errors import Cancelled

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class _Taken:
    signum: Optional[int] = None  # the signal taken (later ones are ignored)
    lost: bool = False  # its exception was raised inside a finaliser, and dropped there
    following: bool = False  # raise_if_lost() may raise


_taken = _Taken()


@contextmanager
def signals_raise_cancelled() -> Iterator[None]:
    """SIGINT/SIGTERM raise Cancelled once; later signals are ignored, so that the stop
    request and the summary can finish."""
    global _taken
    taken = _taken = _Taken()

    def handler(signum: int, _frame: Any) -> None:
        if taken.signum is None:
            taken.signum = signum
            raise Cancelled(signum)

    def unraisable(info: Any) -> None:
        if isinstance(info.exc_value, Cancelled) and info.exc_value.signum == taken.signum:
            taken.lost = True  # raised again at the next raise_if_lost(); no traceback
            return
        previous_hook(info)

    previous_hook = sys.unraisablehook
    sys.unraisablehook = unraisable
    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        sys.unraisablehook = previous_hook
        _taken = _Taken()


@contextmanager
def following() -> Iterator[None]:
    """The stretch where a lost cancellation is raised again: from the start request to the
    end of the follow, not in the stop and the report that come after.

    Here an error raised while a Cancelled was on its way up is that cancel too: a handler
    that runs as a lock wait takes its lock back leaves the lock released, and the wait's
    `with` then fails ("release unlocked lock") in place of the Cancelled.
    """
    taken = _taken
    taken.following = True
    try:
        yield
    except Exception as exc:
        behind = _cancel_behind(exc)
        if behind is None:
            raise
        raise behind from None
    finally:
        taken.following = False


def _cancel_behind(exc: BaseException) -> Optional[Cancelled]:
    seen = set()
    cause: Optional[BaseException] = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, Cancelled):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def raise_if_lost(*_ignored: Any) -> None:
    """Cancelled, if a signal's own raise was dropped inside a finaliser (once)."""
    taken = _taken
    if taken.lost and taken.following and threading.current_thread() is threading.main_thread():
        taken.lost = False
        raise Cancelled(taken.signum or signal.SIGTERM)
