"""``hedger record`` says what it is doing: frames and bytes as they arrive, against the
paper venue on loopback."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from hedger.backtest.record import RecordProgress, RecordStats, TickerRecorder
from tests.paper.conftest import make_server

PERPS = ["BTC-PERPETUAL", "ETH-PERPETUAL"]


async def test_progress_reports_growing_frames_and_bytes(tmp_path: Path) -> None:
    """Before: ``record`` printed nothing until it stopped, minutes later."""
    server = make_server(ticks_per_second=20.0, history_minutes=10)
    await server.start()
    seen: list[tuple[int, int, float]] = []

    def on_progress(stats: RecordStats, elapsed_s: float) -> None:
        seen.append((stats.frames, stats.bytes_written, elapsed_s))

    recorder = TickerRecorder(server.ws_url, tmp_path / "t.jsonl.gz", PERPS)
    try:
        stats = await recorder.run(duration_s=2.0, on_progress=on_progress, progress_every_s=0.1)
    finally:
        await server.stop()
    assert len(seen) >= 5  # every 0.1 s over 2 s, however busy the machine
    frames, written, elapsed = zip(*seen, strict=True)
    assert list(frames) == sorted(frames) and list(written) == sorted(written)
    assert list(elapsed) == sorted(elapsed)
    assert seen[-1][:2] == (stats.frames, stats.bytes_written) and stats.frames > 10
    assert stats.bytes_written > 0


def _stats(frames: int, written: int) -> RecordStats:
    return RecordStats(frames=frames, tickers=frames - 1, channels=2, bytes_written=written)


def test_a_terminal_gets_one_redrawn_line_with_a_bar(tmp_path: Path) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120, color_system=None)
    with RecordProgress(console, tmp_path / "t.gz", duration_s=60.0) as progress:
        progress.update(_stats(1_234, 2_500_000), 30.0)
    text = screen.getvalue()
    assert "1,234 frames (1,233 tickers, 2 channels), 2.5 MB written" in text
    assert "━" in text  # the bar towards --seconds


def test_a_log_file_gets_plain_lines_now_and_then(tmp_path: Path) -> None:
    log = io.StringIO()
    console = Console(file=log, force_terminal=False, width=200)
    path = tmp_path / "t.gz"
    path.write_bytes(b"x" * 300_000)
    with RecordProgress(console, path, plain_every_s=10.0) as progress:
        for second in range(25):
            progress.update(_stats(100 * second + 1, 10_000 * second), float(second))
    lines = log.getvalue().splitlines()
    assert lines == [
        "recording: 1 frames (0 tickers, 2 channels), 0.0 MB written, 0.3 MB gzip on disk, 0 s",
        "recording: 1,001 frames (1,000 tickers, 2 channels), 0.1 MB written, 0.3 MB gzip on "
        "disk, 10 s",
        "recording: 2,001 frames (2,000 tickers, 2 channels), 0.2 MB written, 0.3 MB gzip on "
        "disk, 20 s",
    ]
    assert "\x1b" not in log.getvalue()  # no control codes in a log
