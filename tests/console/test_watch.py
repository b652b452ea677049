"""``hedger ctl watch`` in a real terminal: a daemon on the paper venue, the view in tmux.

The daemon is the real ``hedger run`` (embedded paper venue on an ephemeral port, HTTP on a
free one); the view is found from the daemon's config alone (``--config``), as an operator
would run it, and read off the tmux pane.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.net import free_port, wait_until
from tests.obs.test_http import write_config

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def _cycling(url: str, daemon: subprocess.Popen[str]) -> bool:
    assert daemon.poll() is None, daemon.communicate()[1]
    try:
        with urllib.request.urlopen(f"{url}/status", timeout=1) as response:
            return bool(json.loads(response.read())["cycles"])
    except OSError:
        return False


@pytest.fixture
def daemon_config(tmp_path: Path) -> Iterator[Path]:
    port = free_port()
    path = write_config(tmp_path, port)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "hedger.cli", "run", "--config", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        wait_until(lambda: _cycling(f"http://127.0.0.1:{port}", daemon), 90, "the engine")
        yield path
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=60)


class Terminal:
    """A tmux server of this test only (its own socket), one session, 120 x 50."""

    def __init__(self, tmp_path: Path) -> None:
        conf = tmp_path / "tmux.conf"
        # Keep the pane when the command exits, so a crash shows its message.
        conf.write_text("set -g remain-on-exit on\n")
        self.tmux = ["tmux", "-S", str(tmp_path / "tmux.sock"), "-f", str(conf)]

    def start(self, command: str) -> None:
        # rich takes COLUMNS/LINES over the terminal's size: the pane's own size must win.
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        session = ["new-session", "-d", "-s", "view", "-x", "120", "-y", "50", "-c", str(ROOT)]
        subprocess.run(
            [*self.tmux, *session, command],
            check=True,
            env=env,
        )

    def screen(self) -> str:
        shown = subprocess.run(
            [*self.tmux, "capture-pane", "-p", "-t", "view"],
            check=True,
            capture_output=True,
            text=True,
        )
        return shown.stdout

    def stop(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], check=False, capture_output=True)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal(tmp_path)
    yield term
    term.stop()


def _screen_with(terminal: Terminal, *needles: str) -> str:
    """The screen if it shows every needle, else '' (not yet)."""
    screen = terminal.screen()
    return screen if all(n in screen for n in needles) else ""


def test_watch_shows_factor_rows_and_trading_state_and_redraws(
    daemon_config: Path, terminal: Terminal
) -> None:
    terminal.start(
        f"{sys.executable} -m hedger.cli ctl watch --config {daemon_config} --interval 0.3"
    )
    screen = wait_until(
        lambda: _screen_with(terminal, "trading RUNNING", "factors", "venues"),
        90,
        "the watch view",
        every_s=0.25,
    )
    rows = [line for line in screen.splitlines() if re.match(r"^│ BTC\s+│", line)]
    assert rows, screen
    row = rows[0]
    assert re.search(r"[+-][\d,]+\.\d{4} BTC", row), row  # beta-delta in factor units
    assert "± 0.2500" in row, row  # the paper config's band
    assert re.search(r"[·─│┼●◀▶]{21}", row), row  # the band bar
    assert re.search(r"\b(inside|OUTSIDE)\b", row), row
    venue = next(line for line in screen.splitlines() if line.startswith("│ paper"))
    assert re.search(r"\d+\.\d s", venue), venue  # data age

    # The view redraws in place: a pause from another terminal shows on the same screen.
    paused = subprocess.run(
        [sys.executable, "-m", "hedger.cli", "ctl", "pause", "--config", str(daemon_config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert paused.returncode == 0, paused.stderr
    screen = wait_until(
        lambda: _screen_with(terminal, "trading PAUSED"), 30, "the paused state", every_s=0.25
    )
    assert "trading RUNNING" not in screen
    assert screen.count("hedger ctl watch") == 1, screen  # one screen, not a scroll of them
