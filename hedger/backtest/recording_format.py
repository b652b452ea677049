"""The recording format: gzip-compressed JSON lines, one websocket frame per line.

    {"recv_ms": 1795564800123, "frame": {...the frame exactly as received...}}

A frame that is valid JSON (every Deribit frame) is embedded as is, so the line stays valid
JSON while a replay hands the frame's own bytes to ``handle_frame`` without decoding the
line first (one parse per message, as live); anything else is embedded as a JSON string.
"""

from __future__ import annotations

import contextlib
import queue
import re
import threading
import zlib
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import orjson

_zlib: Any
try:  # zlib-ng inflates about 1.5x faster than zlib, and ships with aiohttp's fast path
    from zlib_ng import zlib_ng as _zlib
except ImportError:  # pragma: no cover - the standard library does the same, slower
    _zlib = zlib

_GZIP_MAGIC = b"\x1f\x8b"
_AUTO_HEADER = 47  # zlib wbits: gzip or zlib header, detected
_CHUNK_BYTES = 1 << 20
_QUEUED_CHUNKS = 8

_PREFIX = b'{"recv_ms":'
_FRAME_KEY = b',"frame":'
PREFIX_LEN = len(_PREFIX)
FRAME_KEY = _FRAME_KEY


def encode_line(recv_ms: int, frame: str | bytes) -> bytes:
    raw = frame.encode() if isinstance(frame, str) else frame
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        raw = orjson.dumps(raw.decode(errors="replace"))
    return b"%s%d%s%s}\n" % (_PREFIX, recv_ms, _FRAME_KEY, raw)


class RecordingError(ValueError):
    """A line that is not in the recording format: ``str()`` shows it and says why."""


_SPACED = re.compile(rb'^\s*\{\s*"recv_ms"\s*:\s*-?\d+\s*,\s*"frame"\s*:')


def _foreign(line: bytes) -> RecordingError:
    if _SPACED.match(line):
        # The replay cuts lines at fixed bytes rather than parsing them (one parse per
        # message, as live), so a reformatted file must be compacted back, not guessed at.
        return RecordingError(
            f"not a recording line: {line[:40]!r} has spaces or line breaks around its keys; "
            f'`hedger record` writes {{"recv_ms":<ms>,"frame":<frame>}} compactly, one per '
            "line: rewrite the file that way (e.g. `zcat f.gz | jq -c . | gzip > g.gz`)"
        )
    return RecordingError(
        f'not a recording line: {line[:40]!r} (expected {{"recv_ms":<ms>,"frame":<frame>}})'
    )


def decode_line(line: bytes) -> tuple[int, bytes]:
    """(receive time in epoch ms, the frame's bytes); RecordingError for a foreign line."""
    if not line.startswith(_PREFIX):
        raise _foreign(line)
    split = line.find(_FRAME_KEY, len(_PREFIX))
    end = len(line.rstrip())
    if split < 0 or line[end - 1 : end] != b"}":
        raise _foreign(line)
    try:
        recv_ms = int(line[len(_PREFIX) : split])
    except ValueError:
        raise _foreign(line) from None
    frame = line[split + len(_FRAME_KEY) : end - 1]
    if frame.startswith(b'"'):
        try:
            frame = str(orjson.loads(frame)).encode()
        except orjson.JSONDecodeError:
            raise _foreign(line) from None
    return recv_ms, frame


def _inflate(
    path: Path, out: queue.Queue[bytes | BaseException | None], stop: threading.Event
) -> None:
    """Producer thread: the file's bytes, decompressed (gzip members back to back too)."""
    try:
        with path.open("rb") as handle:
            gzipped = handle.read(2) == _GZIP_MAGIC
            handle.seek(0)
            inflater = _zlib.decompressobj(_AUTO_HEADER)
            while not stop.is_set() and (chunk := handle.read(_CHUNK_BYTES)):
                while chunk:
                    data = inflater.decompress(chunk) if gzipped else chunk
                    chunk = b""
                    if gzipped and inflater.eof:
                        chunk = inflater.unused_data
                        inflater = _zlib.decompressobj(_AUTO_HEADER)
                    if data:
                        out.put(data)
        out.put(None)
    except BaseException as exc:  # handed to the reader, which raises it
        out.put(exc)


def iter_line_batches(path: str | Path) -> Generator[list[bytes], None, None]:
    """The recording's lines in batches, decompressed in a thread while the caller works on
    the previous batch (inflating releases the GIL), in bounded memory: a recording can be
    far larger than RAM once decompressed."""
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(_QUEUED_CHUNKS)
    stop = threading.Event()
    worker = threading.Thread(target=_inflate, args=(Path(path), chunks, stop), daemon=True)
    worker.start()
    carry = b""
    try:
        while (item := chunks.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            lines = (carry + item).splitlines() if carry else item.splitlines()
            carry = b"" if item.endswith(b"\n") else lines.pop()
            yield lines
        if carry:
            yield [carry]
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                chunks.get(timeout=0.01)
        worker.join()


def read_recording(path: str | Path) -> list[bytes]:
    """Every line of a (small) recording in memory."""
    return [line for batch in iter_line_batches(path) for line in batch]


def iter_frames(lines: list[bytes]) -> Iterator[tuple[int, bytes]]:
    for line in lines:
        if line.strip():
            yield decode_line(line)
