"""Gap-free, duplicate-free incremental reading of step logs (API.md §7.3).

The server serves a log by 1-based line offsets, may be mid-way through
writing the last line, re-reads the file on every call, and estimates
`totalLines` for files of 10 KB and more (offset reads stop at the estimate).
One `StreamCursor` per (step, stream) remembers how far the user has seen,
`LogSchedule` says when each stream is read next, and `LogFeed` tells what is new
as events (the run's own steps and sub-runs' alike).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Deque, Dict, Iterator, List, Optional, Protocol, Tuple

from dagu_ci.follow.events import Event, Level, Notice, StepLog
from dagu_ci.server.client import Retry
from dagu_ci.server.models import LogPage, StepSnapshot

PAGE = 10000  # lines per read: the spec's maximum; fewer requests, and the server rescans less
ANCHOR = 24  # lines of context used to find our place in a tail window
RELEASE_AFTER = 2.0  # seconds a trailing line must stay unchanged before it is shown
# A log cut inside a multi-byte character reaches us with each byte of the cut replaced by
# U+FFFD (Go's JSON encoder does that to invalid UTF-8): at most 3 bytes of a 4-byte one.
CUT_CHARACTER_MAX = 3
REPLACEMENT = "\ufffd"
TOO_LONG_NOTICE = "[dagu-ci] a line longer than 64 KB cannot be read through this server's API (Dagu < 2.0); the rest of this log is skipped"
LOG_CAP = 40.0  # longest wait between reads of a quiet log (a step's end still reads it at once)
PUSHED_LOG_CAP = 300.0  # a quiet log's safety-net read while the server says when logs change
YOUNG_LOG = 3.0  # seconds after a log is first read during which it is read at the base rate
QUIET_GROWTH = 3  # a quiet log's wait grows this much per empty read (0.5, 1.5, 4.5, 13.5, 40 s)
# While one of a step's streams grows, the other is read at least this often: the two files have no
# common clock, so the wait of the quiet one is how far a line of it can fall behind the busy one's.
SIBLING_LAG = 2.5


class ReadMode(Enum):
    LIVE = "live"  # step running: the last line may be half-written, hold it back
    FLUSH = "flush"  # step finished: show everything, but its last line may still grow
    FINAL = "final"  # run finished: every line is complete


@dataclass
class StreamCursor:
    path: str = ""
    emitted: int = 0  # complete lines shown
    partial: str = ""  # already-shown beginning of line `emitted + 1`
    held: str = ""
    held_since: float = 0.0
    recent: Deque[str] = field(default_factory=lambda: deque(maxlen=ANCHOR))
    skipped: bool = False  # unreadable (too-long line on an old server)


@dataclass
class Chunk:
    lines: List[str]
    restarted: bool = False  # the log path changed: a new attempt began
    notices: List[str] = field(default_factory=list)
    active: bool = False  # the log grew (new lines, or a held-back line changed)
    release_at: Optional[float] = None  # when a held-back trailing line may be shown (if unchanged)
    continued: bool = False  # lines[0] is the rest of a line whose beginning was shown already


class LogReader(Protocol):
    """Where logs are read: a DaguClient, or a sub-run's reader."""

    def read_log(
        self, dag_name: str, run_id: str, step: str, stream: str, retry: Retry, **query: int
    ) -> Optional[LogPage]: ...

    def download_log(self, dag_name: str, run_id: str, step: str, stream: str, retry: Retry) -> Optional[str]: ...


class LogTailer:
    def __init__(
        self,
        client: LogReader,
        dag_name: str,
        run_id: str,
        retry: Callable[[], Retry],
        clock: Callable[[], float] = time.monotonic,
    ):
        self.client = client
        self.dag_name = dag_name
        self.run_id = run_id
        self._retry = retry
        self._clock = clock
        self._cursors: Dict[Tuple[str, str], StreamCursor] = {}
        # A run on a worker: its log reaches the server in bursts cut anywhere, and a cut can
        # stand still for minutes, so a held-back line is never released for standing still.
        self.whole_lines = False

    def pending(self) -> List[str]:
        """Steps with a held-back line not shown yet (a worker's next burst will bring its end)."""
        return sorted(
            {step for (step, _), cursor in self._cursors.items() if cursor.held and cursor.held != cursor.partial}
        )

    def streams(self, step: StepSnapshot) -> List[Tuple[str, str]]:
        """(stream, path) pairs to read; a merged log is read once."""
        pairs = [("stdout", step.stdout)]
        if not step.merged:
            pairs.append(("stderr", step.stderr))
        return [(stream, path) for stream, path in pairs if path]

    def read(self, step: StepSnapshot, stream: str, path: str, mode: ReadMode) -> Iterator[Chunk]:
        """New lines, one chunk per page read: a big log streams out as it is read,
        and memory stays flat whatever the log's size."""
        cursor = self._cursors.get((step.name, stream))
        restarted = cursor is not None and cursor.path != path
        if cursor is None or restarted:
            cursor = self._cursors[(step.name, stream)] = StreamCursor(path=path)
        chunk = Chunk([], restarted=restarted)
        if cursor.skipped:
            yield chunk
            return
        while True:
            offset = cursor.emitted + 1
            page = self._read(step.name, stream, offset=offset, limit=PAGE)
            if page is None:
                yield chunk
                return
            if page.too_long:
                self._read_whole(step.name, stream, cursor, mode, chunk)
                yield chunk
                return
            lines = list(page.lines)
            full = len(lines) >= PAGE
            if mode is ReadMode.FINAL:
                cursor.held = ""
                self._take(cursor, lines, chunk)
                if not full and _maybe_capped(page, offset, len(lines)):
                    self._reconcile(step.name, stream, cursor, page, chunk)
            else:
                # The last line returned may be half-written: never count it complete yet.
                tail = lines.pop() if lines else None
                self._take(cursor, lines, chunk)
                if not full and tail is None:
                    cursor.held = ""  # the file ends with a line end: nothing held back
                elif not full and tail is not None:
                    if mode is ReadMode.LIVE:
                        self._hold(cursor, tail, chunk)
                    else:
                        cursor.held = ""
                        self._show_partial(cursor, tail, chunk)
            chunk.active = chunk.active or bool(chunk.lines)
            yield chunk
            if not full:
                return
            chunk = Chunk([])

    # -- pieces ---------------------------------------------------------------

    def _read(self, step: str, stream: str, **query: int) -> Optional[LogPage]:
        return self.client.read_log(self.dag_name, self.run_id, step, stream, self._retry(), **query)

    def _take(self, cursor: StreamCursor, lines: List[str], chunk: Chunk) -> None:
        """Lines known to be complete: show them, minus any part shown already."""
        for line in lines:
            cursor.held = ""  # the held-back line is complete: the next one starts afresh
            if cursor.partial:
                shown, cursor.partial = cursor.partial, ""
                if line.startswith(shown):
                    line = line[len(shown) :]
                    if not line:
                        cursor.emitted += 1
                        cursor.recent.append(shown)
                        continue
                    chunk.continued = chunk.continued or not chunk.lines
            chunk.lines.append(line)
            cursor.emitted += 1
            cursor.recent.append(line)

    def _hold(self, cursor: StreamCursor, tail: str, chunk: Chunk) -> None:
        """The last line may be half-written. Show it once it has stayed still a while
        (a prompt, a quiet step's last line), unless the run is on a worker."""
        now = self._clock()
        if tail != cursor.held:
            cursor.held, cursor.held_since = tail, now
            chunk.active = True
        if self.whole_lines:
            return  # only its end, or the step's end, shows it
        if now - cursor.held_since >= RELEASE_AFTER:
            self._show_partial(cursor, tail, chunk)
        if without_cut_character(tail) != cursor.partial:
            chunk.release_at = cursor.held_since + RELEASE_AFTER

    def _show_partial(self, cursor: StreamCursor, text: str, chunk: Chunk) -> None:
        text = without_cut_character(text)
        grows = bool(cursor.partial) and text.startswith(cursor.partial)
        new = text[len(cursor.partial) :] if grows else text
        if new:
            chunk.continued = chunk.continued or (grows and not chunk.lines)
            chunk.lines.append(new)
            cursor.partial = text

    def _reconcile(self, step: str, stream: str, cursor: StreamCursor, page: LogPage, chunk: Chunk) -> None:
        """The estimate may hide the end of the file: find it from the true tail (cheap)."""
        window = 4 * ANCHOR
        while window < page.total_lines:
            tail = self._read(step, stream, tail=window)
            if tail is None:
                return
            lines = list(tail.lines)
            if len(lines) < window:  # the window holds the whole file
                self._take(cursor, lines[cursor.emitted :], chunk)
                return
            start = _after_anchor(lines, list(cursor.recent))
            if start is not None:
                self._take(cursor, lines[start:], chunk)
                return
            window *= 4
        self._head_pages(step, stream, cursor, chunk)

    def _head_pages(self, step: str, stream: str, cursor: StreamCursor, chunk: Chunk) -> None:
        """Exact but costly fallback: `head` reads are not capped by the estimate."""
        while True:
            page = self._read(step, stream, head=cursor.emitted + PAGE)
            if page is None:
                return
            fresh = list(page.lines[cursor.emitted :])
            self._take(cursor, fresh, chunk)
            if len(fresh) < PAGE:
                return

    def _read_whole(self, step: str, stream: str, cursor: StreamCursor, mode: ReadMode, chunk: Chunk) -> None:
        """A line over 64 KB blocks offset reads; only the raw download gets past it."""
        if mode is ReadMode.LIVE:
            return
        text = self.client.download_log(self.dag_name, self.run_id, step, stream, self._retry())
        if text is None:
            cursor.skipped = True
            chunk.notices.append(TOO_LONG_NOTICE)
            return
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        self._take(cursor, lines[cursor.emitted :], chunk)


StreamKey = Tuple[str, str]


class LogSchedule:
    """When each log stream is next read: soon while it is busy, rarer while it is quiet."""

    def __init__(self, base: float):
        self.base = base
        self.cap = LOG_CAP
        self._due: Dict[StreamKey, float] = {}
        self._interval: Dict[StreamKey, float] = {}
        self._first: Dict[StreamKey, float] = {}

    def due(self, key: StreamKey, now: float) -> bool:
        return self._due.get(key, 0.0) <= now

    def record(self, key: StreamKey, now: float, active: bool, release_at: Optional[float]) -> None:
        first = self._first.setdefault(key, now)
        # A young log is read at the base rate: its first lines should show at once.
        young = now - first < YOUNG_LOG
        if active or young:
            interval = self.base
        elif self.cap >= PUSHED_LOG_CAP:
            interval = self.cap  # the server pushes when this log changes: no periodic reads
        else:
            interval = min(self._interval.get(key, self.base) * QUIET_GROWTH, self.cap)
        self._interval[key] = interval
        due = now + interval
        # A held-back last line is re-read when it may be released, so it shows promptly.
        self._due[key] = min(due, release_at) if release_at is not None else due
        if active:
            for other in self._due:
                if other[0] == key[0] and other != key:
                    self._due[other] = min(self._due[other], now + SIBLING_LAG)

    def forget(self, step: str) -> None:
        """A step whose log will not be read again (a sub-run's, once it ended)."""
        for key in [key for key in self._due if key[0] == step]:
            del self._due[key]

    def touch(self, step: str) -> None:
        for key in self._due:
            if key[0] == step:
                self._due[key] = 0.0

    def next_due(self) -> Optional[float]:
        return min(self._due.values()) if self._due else None


class LogFeed:
    """A step's new log lines, read as they are due and told as events: its lines, the
    reader's notices, and that a new attempt began (once per attempt, though its stdout
    and stderr both start afresh, maybe rounds apart). The follower has one for the run's
    own steps, the sub-run follower one per sub-run."""

    def __init__(self, tailer: LogTailer, schedule: LogSchedule, emit: Callable[[Event], None]):
        self.tailer = tailer
        self.schedule = schedule
        self.emit = emit
        self._new_attempts: Dict[str, Tuple[str, str]] = {}  # a step's log files whose new attempt was told

    def tail(self, step: StepSnapshot, mode: ReadMode, name: str = "") -> bool:
        """Read each of the step's streams that is due (every one, unless LIVE); True if
        lines showed. `name`: the step as the user knows it (a sub-run's, by its path)."""
        name = name or step.name
        shown = False
        now = time.monotonic()
        for stream, path in self.tailer.streams(step):
            key = (name, stream)
            if mode is ReadMode.LIVE and not self.schedule.due(key, now):
                continue
            active, release_at = False, None
            for chunk in self.tailer.read(step, stream, path, mode):
                if chunk.restarted and self._new_attempts.get(name) != (step.stdout, step.stderr):
                    self._new_attempts[name] = (step.stdout, step.stderr)
                    self.emit(Notice(f"{name}: a new attempt began; its log starts afresh", step=name))
                for text in chunk.notices:
                    self.emit(Notice(text, Level.WARNING, step=name))
                if chunk.lines:
                    self.emit(StepLog(name, stream, chunk.lines, chunk.continued))
                    shown = True
                active = active or chunk.active
                release_at = chunk.release_at
            self.schedule.record(key, now, active=active, release_at=release_at)
        return shown


def without_cut_character(text: str) -> str:
    """A line's beginning without the replaced bytes of a character cut at its end: they are
    shown (whole) with the rest of the line. A line that truly ends in U+FFFD loses nothing:
    its end shows once the line is complete, or at the run's end."""
    replaced = len(text) - len(text.rstrip(REPLACEMENT))
    return text[: len(text) - min(replaced, CUT_CHARACTER_MAX)]


def _maybe_capped(page: LogPage, offset: int, count: int) -> bool:
    """Did the read stop at the estimated total rather than at the end of the file?"""
    return page.is_estimate and offset + count - 1 >= page.total_lines


def _after_anchor(window: List[str], anchor: List[str]) -> Optional[int]:
    """Index in `window` just after the one place `anchor` ends; None if absent or ambiguous."""
    if not anchor:
        return None
    size = len(anchor)
    found = [end for end in range(size, len(window) + 1) if window[end - size : end] == anchor]
    return found[0] if len(found) == 1 else None
