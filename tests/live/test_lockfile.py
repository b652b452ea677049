"""One daemon per journal: the lock beside it, held for the life of the process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hedger.live.lockfile import JournalLock, JournalLockedError, lock_path
from tests.net import free_port, wait_until
from tests.obs.test_http import write_config

ROOT = Path(__file__).resolve().parents[2]


def test_a_held_lock_refuses_a_second_holder_and_names_the_first(tmp_path: Path) -> None:
    """Before: there was no lock (hedger.live.lockfile did not exist)."""
    journal = tmp_path / "var" / "j.sqlite"
    first, second = JournalLock(journal), JournalLock(journal)
    first.acquire()
    with pytest.raises(JournalLockedError) as info:
        second.acquire()
    assert info.value.holder_pid == os.getpid()
    assert str(info.value) == (
        f"journal {journal} is in use by pid {os.getpid()} (one daemon per journal)"
    )
    first.release()
    second.acquire()  # released means free: nothing stale is left to clean up
    assert lock_path(journal).read_text() == f"{os.getpid()}\n"
    second.release()


def test_a_second_daemon_on_the_same_journal_exits_before_connecting(tmp_path: Path) -> None:
    """Before: both daemons ran on one journal and hedged against each other.

    Two real processes on one config: the second must exit non-zero, naming the journal
    and the first's pid, without starting its paper venue or connecting to any venue.
    """
    path = write_config(tmp_path, free_port())
    command = [sys.executable, "-m", "hedger.cli", "run", "--config", str(path)]
    first = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT
    )
    lock = lock_path(tmp_path / "j.sqlite")
    try:
        wait_until(
            lambda: lock.exists() and lock.read_text().strip() == str(first.pid),
            60,
            "the first daemon to hold the journal's lock",
        )
        second = subprocess.run(
            command, capture_output=True, text=True, cwd=ROOT, timeout=60, check=False
        )
        assert first.poll() is None, "the first daemon must keep running"
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)
    assert second.returncode == 1, second.stderr
    assert "Traceback" not in second.stderr
    assert second.stderr.strip().splitlines()[-1] == (
        f"hedger run: journal {tmp_path}/j.sqlite is in use by pid {first.pid} "
        "(one daemon per journal)"
    )
    for started in ("paper_venue", "venue_connected", "http_started", "engine_started"):
        assert started not in second.stderr
