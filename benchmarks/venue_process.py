"""``hedger paper-venue`` as its own process, for the benchmarks that measure across a socket.

Imported by the benchmark scripts, which run with ``benchmarks/`` first on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def paper_venue(*options: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """The venue on an ephemeral loopback port with extra ``options`` (CLI flags); yields the
    process and its URLs (``rest``, ``ws``) once it listens, and always ends it."""
    argv = [sys.executable, "-m", "hedger.cli", "paper-venue", "--host", "127.0.0.1"]
    venue = subprocess.Popen(
        [*argv, "--port", "0", "--log-level", "warning", *options],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert venue.stdout is not None
        line = venue.stdout.readline()  # printed once it listens: {"rest": ..., "ws": ...}
        if not line:
            raise RuntimeError(f"paper venue exited with code {venue.wait()} before listening")
        yield venue, json.loads(line)
    finally:
        venue.terminate()
        try:
            venue.wait(timeout=20)
        except subprocess.TimeoutExpired:
            venue.kill()
            venue.wait()
