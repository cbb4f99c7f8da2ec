"""Step log files: Dagu's buffered writer and its ReadLogLines reader (API.md §7.2).

The reader mirrors internal/cmn/fileutil/logutil.go: bufio.Scanner lines (64 KB
token limit), exact counts below 10 KB, a sampled *estimate* above, and the
offset/head/tail rules that follow from it, including their hazards.
"""

from __future__ import annotations

import codecs
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Tuple

EXACT_COUNT_LIMIT = 10 * 1024  # files smaller than this get an exact line count
SAMPLE_SIZE = 1024 * 1024  # estimateLineCount samples 1 MB at the start and the middle
MAX_TOKEN = 64 * 1024  # bufio.MaxScanTokenSize
DEFAULT_LIMIT = 1000
TOO_LONG = "Error: Line too long to read."


def _replace_each_byte(error: UnicodeError) -> tuple:
    """Go's JSON encoder writes each byte of invalid UTF-8 as U+FFFD (encoding/json
    appendString), so a character cut after 2 of its 3 bytes reads as two of them."""
    assert isinstance(error, UnicodeDecodeError)
    return "\ufffd" * (error.end - error.start), error.end


codecs.register_error("fakedagu-go-json", _replace_each_byte)


class LineTooLong(Exception):
    """bufio.ErrTooLong, for the versions where the reader does not turn it into content."""


@dataclass
class LogResult:
    lines: List[str] = field(default_factory=list)
    line_count: int = 0
    total_lines: int = 0
    has_more: bool = False
    is_estimate: bool = False

    def to_json(self) -> dict:
        """The API's Log object: every count/flag is an omitempty pointer (ptrOf)."""
        body: dict = {"content": "\n".join(self.lines)}
        if self.line_count:
            body["lineCount"] = self.line_count
        if self.total_lines:
            body["totalLines"] = self.total_lines
        if self.has_more:
            body["hasMore"] = True
        if self.is_estimate:
            body["isEstimate"] = True
        return body


def _scan(data: bytes) -> Iterator[str]:
    """bufio.ScanLines over bytes: split on \\n, drop one \\r, keep a last unterminated line."""
    start = 0
    size = len(data)
    while start < size:
        end = data.find(b"\n", start)
        token = data[start:] if end < 0 else data[start:end]
        # The scanner's buffer must hold the token plus its newline (or the token at EOF).
        if len(token) >= MAX_TOKEN:
            raise LineTooLong()
        if token.endswith(b"\r"):
            token = token[:-1]
        yield token.decode("utf-8", errors="fakedagu-go-json")
        if end < 0:
            return
        start = end + 1


def _count_exact(data: bytes) -> int:
    return sum(1 for _ in _scan(data))


def estimate_line_count(path: str, size: int) -> Tuple[int, bool]:
    if size < EXACT_COUNT_LIMIT:
        with open(path, "rb") as handle:
            return _count_exact(handle.read()), False
    sample = min(SAMPLE_SIZE, size)
    with open(path, "rb") as handle:
        start_lines = handle.read(sample).count(b"\n")
        middle_lines = 0
        if size > sample * 2:
            handle.seek(size // 2)
            middle_lines = handle.read(sample).count(b"\n")
    total_sample_lines = start_lines + middle_lines
    if total_sample_lines == 0:
        return 1, True
    average = float(sample * 2) / float(total_sample_lines) if size > sample * 2 else float(sample) / float(start_lines)
    estimate = int(float(size) / average)
    return int(float(estimate) * 1.05), True


def _read_first(data: bytes, n: int, total: int) -> LogResult:
    out: List[str] = []
    scanner = _scan(data)
    # Go's loop is `scanner.Scan() && lineCount < n`: it scans one token past n.
    for token in scanner:
        if len(out) >= n:
            break
        out.append(token)
    return LogResult(out, len(out), total, len(out) < total)


def _read_last(data: bytes, n: int, total: int) -> LogResult:
    if n >= total:
        return _read_first(data, total, total)  # capped at the (possibly estimated) total
    ring = list(_scan(data))[-n:]
    return LogResult(ring, len(ring), total, len(ring) < total)


def _read_range(data: bytes, offset: int, limit: int, total: int) -> LogResult:
    offset = max(offset, 1)
    if offset > total:
        return LogResult([], 0, total, False)
    out: List[str] = []
    line_num = 1
    scanner = _scan(data)
    while line_num < offset:
        if next(scanner, None) is None:
            break
        line_num += 1
    while line_num <= total and len(out) < limit:
        token = next(scanner, None)
        if token is None:
            break
        out.append(token)
        line_num += 1
    return LogResult(out, len(out), total, offset + len(out) - 1 < total)


def read_log_lines(
    path: str,
    head: int = 0,
    tail: int = 0,
    offset: int = 0,
    limit: int = 0,
    too_long_as_content_for_range: bool = True,
    too_long_as_content_for_head_tail: bool = True,
) -> LogResult:
    """ReadLogLines. Raises FileNotFoundError for a missing file (or an empty path).

    The two flags model versions where a >64 KB line is an error rather than content:
    head/tail reads from v1.18.0, offset/default reads from v1.26.0.
    """
    if not path or not os.path.exists(path):
        raise FileNotFoundError(f"file not found: {path}")
    size = os.stat(path).st_size
    if size == 0:
        return LogResult()
    total, is_estimate = estimate_line_count(path, size)
    with open(path, "rb") as handle:
        data = handle.read()
    if tail > 0:
        mode_ok = too_long_as_content_for_head_tail
        reader = lambda: _read_last(data, tail, total)  # noqa: E731
    elif head > 0:
        mode_ok = too_long_as_content_for_head_tail
        reader = lambda: _read_first(data, head, total)  # noqa: E731
    else:
        mode_ok = too_long_as_content_for_range
        start = offset if offset > 0 else 1
        page = limit if limit > 0 else DEFAULT_LIMIT
        reader = lambda: _read_range(data, start, page, total)  # noqa: E731
    try:
        result = reader()
    except LineTooLong:
        if not mode_ok:
            raise
        result = LogResult([TOO_LONG])
    result.is_estimate = is_estimate
    return result


class LogWriter:
    """A step's output file as Dagu writes it: a 4 KB bufio buffer flushed every 500 ms
    by the engine's flusher and on close, so readers can see a half-written line."""

    BUFFER_SIZE = 4096

    def __init__(self, path: str, buffer_size: int = BUFFER_SIZE):
        self.path = path
        self.buffer_size = buffer_size
        self._lock = threading.Lock()
        self._buffer = bytearray()
        self._closed = False
        self.next_flush = time.monotonic() + 0.5  # the engine's flusher advances this
        # Created at step start, like Data.Setup: an empty file, not a missing one.
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - open while the step writes; close() ends it

    def write(self, text: str) -> None:
        self.write_bytes(text.encode("utf-8"))

    def write_bytes(self, data: bytes) -> None:
        with self._lock:
            if self._closed:
                return
            # bufio.Writer: fill the buffer and flush it whole; a write larger than the
            # free space with an empty buffer goes straight to the file.
            while len(data) > self.buffer_size - len(self._buffer):
                if not self._buffer:
                    self._file.write(data)
                    return
                room = self.buffer_size - len(self._buffer)
                self._buffer += data[:room]
                data = data[room:]
                self._flush_locked()
            self._buffer += data

    def flush(self) -> None:
        with self._lock:
            if not self._closed:
                self._flush_locked()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._flush_locked()
            self._file.close()
            self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def _flush_locked(self) -> None:
        if self._buffer:
            self._file.write(bytes(self._buffer))
            self._buffer.clear()


class WorkerLogWriter:
    """A step's output on a distributed worker, as Dagu 2.6.5 brings it to the server's file.

    - The step's pipe is read in pieces of at most 32 KB (io.Copy's buffer), so a big write
      is cut at 32 KB marks wherever they fall: mid-line, mid-character.
    - The worker (runtime/remote/log_streamer.go) buffers what it reads and sends it to
      the coordinator once it holds 32 KB, and at the step's end.
    - The coordinator (service/coordinator/log_handler.go) writes it through a 64 KB
      bufio.Writer, flushed once 64 KB came in since the last flush, and when the stream ends.

    No time-based flush anywhere: `flush()` (the engine's 500 ms flusher) does nothing, so a
    cut stays in the file for as long as the step writes too little to fill the next burst.
    """

    PIPE_READ = 32 * 1024  # io.Copy
    SEND_AT = 32 * 1024  # logBufferSize
    FLUSH_AT = 64 * 1024  # flushThreshold, and the bufio.Writer's size

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._pending = bytearray()  # read from the pipe, not sent yet (on the worker)
        self._since_flush = 0
        # The coordinator's writer, opened with the first chunk: till then there is no file.
        self._file: Optional[LogWriter] = None
        self._closed = False
        self.next_flush = float("inf")  # the engine's flusher never finds it due

    def write(self, text: str) -> None:
        self.write_bytes(text.encode("utf-8"))

    def write_bytes(self, data: bytes) -> None:
        with self._lock:
            if self._closed:
                return
            for start in range(0, len(data), self.PIPE_READ):
                self._pending += data[start : start + self.PIPE_READ]
                if len(self._pending) >= self.SEND_AT:
                    self._send()

    def flush(self) -> None:
        """No timer flushes a remote step's log."""

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._send()
            if self._file is not None:
                self._file.close()  # the final marker: flush and close

    @property
    def closed(self) -> bool:
        return self._closed

    def _send(self) -> None:
        if not self._pending:
            return
        chunk, self._pending = bytes(self._pending), bytearray()
        if self._file is None:
            self._file = LogWriter(self.path, buffer_size=self.FLUSH_AT)
        self._file.write_bytes(chunk)
        self._since_flush += len(chunk)
        if self._since_flush >= self.FLUSH_AT:
            self._file.flush()
            self._since_flush = 0
