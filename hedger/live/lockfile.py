"""One daemon per journal: an exclusive ``flock`` on ``<journal>.lock`` for the process's life.

Two daemons on one journal would each take the other's fills for their own and hedge
against each other. The lock is advisory, held on an open file (not by the file's
existence), so the kernel releases it when the process dies however it dies: a SIGKILL
never leaves a stale lock behind, and nothing ever needs deleting. The holder writes its
pid into the file so that the daemon refused can say who holds it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class JournalLockedError(Exception):
    """Another process holds the journal's lock."""

    def __init__(self, journal: str, holder_pid: int | None) -> None:
        self.journal = journal
        self.holder_pid = holder_pid
        holder = f"pid {holder_pid}" if holder_pid is not None else "another process"
        super().__init__(f"journal {journal} is in use by {holder} (one daemon per journal)")


def lock_path(journal: str | Path) -> Path:
    return Path(f"{journal}.lock")


class JournalLock:
    """The lock of one journal; ``acquire`` raises ``JournalLockedError`` when it is held
    (by another process, or by another ``JournalLock`` of this one), or ``OSError`` when
    the lock file cannot be created (the journal's directory is not writable)."""

    def __init__(self, journal: str | Path) -> None:
        self.journal = str(journal)
        self.path = lock_path(journal)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise JournalLockedError(self.journal, holder) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        # The stale pid stays in the file: a holder is known by its lock, never by the
        # file's contents, and the next holder overwrites it.
        os.close(self._fd)
        self._fd = None


def _read_pid(fd: int) -> int | None:
    """The holder's pid, or None while it has not written it yet (it locks, then writes)."""
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None
