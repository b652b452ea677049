"""A line that is not in the recording format is one clear line for the operator."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from hedger.backtest import commands as cli
from hedger.backtest.recording_format import RecordingError, decode_line, encode_line
from tests.backtest.test_replay import ticker_frame

CONFIG = """
venues:
  sim: {exchange: deribit}
factors:
  - asset: BTC
    hedge: {venue: sim, symbol: BTC-PERPETUAL}
portfolio:
  holdings:
    - {asset: SOL, qty: 2000}
beta: {bar: 1m, half_life: 1h, window: 2h, min_observations: 5}
"""
T0 = 1_795_564_800_000


def _spaced(recv_ms: int, frame: bytes) -> bytes:
    """The same line as ``json.dumps`` writes it by default: a space after each separator."""
    return json.dumps({"recv_ms": recv_ms, "frame": json.loads(frame)}).encode() + b"\n"


def test_a_spaced_line_says_what_is_wrong() -> None:
    line = _spaced(5, ticker_frame("BTC-PERPETUAL", T0, 9e4)).rstrip()
    with pytest.raises(RecordingError, match="has spaces or line breaks around its keys"):
        decode_line(line)
    with pytest.raises(RecordingError, match=r"expected \{\"recv_ms\":<ms>,\"frame\":<frame>\}"):
        decode_line(b'{"other": 1}')
    with pytest.raises(RecordingError, match="not a recording line"):
        decode_line(b'{"recv_ms":12x,"frame":{}}')


def test_the_backtest_refuses_a_spaced_recording_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: ValueError from decode_line reached the operator as a traceback."""
    config = tmp_path / "alts.yaml"
    config.write_text(CONFIG)
    reply = (
        b'{"jsonrpc":"2.0","id":2,"result":'
        b'["ticker.BTC-PERPETUAL.100ms","ticker.SOL_USDC-PERPETUAL.100ms"]}'
    )
    lines = [encode_line(0, reply)]
    for second in range(0, 600, 10):
        for name, px in (("BTC-PERPETUAL", 9e4), ("SOL_USDC-PERPETUAL", 150.0)):
            lines.append(
                encode_line(T0 + second * 1000, ticker_frame(name, T0 + second * 1000, px))
            )
    lines.append(_spaced(T0 + 601_000, ticker_frame("BTC-PERPETUAL", T0 + 601_000, 9e4)))
    path = tmp_path / "day.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(lines)))
    code = cli.main(["backtest", "--config", str(config), "--replay", str(path), "--json"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"hedger: --replay {path}: not a recording line: ")
    assert "spaces" in err and err.count("\n") == 1
