"""A tape from a recording: every frame through the live feed's ``handle_frame`` into a
``MarketState``, conflated into bars on the recording's own clock (exchange timestamps).

The bar logic is the engine's wake-up, made deterministic: when a ticker stamped after the
open bar's end arrives, the state as it stood (every quote up to the boundary) is read once
for that bar, at the time of the newest tick in it, then the tick is stored. Bars without
any tick are not read, as the live engine does not wake without one. Staleness is judged
on exchange time, like the rest.

Hedge instrument metadata (lot, taker fee, inverse) comes from the recording's
``public/get_instruments`` reply when the recorder captured one, else from Deribit's
conventions (inverse BTC/ETH perpetuals: 10/1 USD lots; 0.05% taker).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from hedger.backtest.layout import LayoutError, book_layout
from hedger.backtest.recording_format import FRAME_KEY, PREFIX_LEN, decode_line, iter_line_batches
from hedger.backtest.tape import BookLayout, FloatArray, Tape
from hedger.config import Config
from hedger.core.factors import CASH_ASSETS
from hedger.core.instruments import Kind
from hedger.core.policy import HedgeMarket
from hedger.market.deribit_feed import FrameKind, handle_frame
from hedger.market.quotes import NO_ROW, QuoteMap
from hedger.market.state import LiveMarket, MarketState
from hedger.sim.expiries import expiry_code
from hedger.sim.instruments import option_name

_TS_KEY = b'"timestamp":'
_PUSH = b'"subscription"'
DERIBIT_TAKER = 0.0005


@dataclass(slots=True)
class RecordingIndex:
    """What the recording's replies say: the instruments and their metadata."""

    names: list[str] = field(default_factory=list)
    """MarketState rows: every instrument the recording may carry."""
    streamed: frozenset[str] = frozenset()
    """the instruments subscribed (all of ``names`` when no subscribe reply was kept)"""
    metadata: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    from_replies: bool = False
    """names came from the recorder's replies (instrument list, subscriptions), not from
    scanning every push; such replies open a recording, so its first lines suffice."""


def index_recording(lines: Iterable[bytes]) -> RecordingIndex:
    """Instruments from subscribe replies (``ticker.<name>.<interval>``) and the instrument
    list reply (a superset, with lots and fees); from the pushes themselves if neither."""
    found = RecordingIndex()
    names: dict[str, None] = {}
    pushes = []
    for line in lines:
        if _PUSH in line:
            pushes.append(line)
            continue
        if not line.strip():
            continue
        try:
            result = orjson.loads(decode_line(line)[1]).get("result")
        except (ValueError, AttributeError):
            continue
        if not isinstance(result, list):
            continue
        for item in result:
            if isinstance(item, str) and item.startswith("ticker."):
                names[item.split(".")[1]] = None
            elif isinstance(item, dict) and "instrument_name" in item:
                found.metadata[str(item["instrument_name"])] = item
    found.from_replies = bool(names or found.metadata)
    subscribed = frozenset(names)
    names.update(dict.fromkeys(found.metadata))
    if not names:
        for line in pushes:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                data = orjson.loads(decode_line(line)[1])["params"]["data"]
                names[data["instrument_name"]] = None
    found.names = list(names)
    found.streamed = subscribed or frozenset(names)
    return found


def _hedge_lookup(index: RecordingIndex) -> Any:
    def lookup(factor: str, symbol: str) -> tuple[HedgeMarket, float]:
        if symbol not in index.streamed:
            raise LayoutError(
                f"factor {factor}: hedge instrument {symbol!r} is not in the recording"
            )
        meta = index.metadata.get(symbol)
        if meta is not None:
            step = float(meta.get("min_trade_amount") or 1.0)
            inverse = meta.get("settlement_currency") == factor or "_" not in symbol
            fee = float(meta.get("taker_commission") or DERIBIT_TAKER)
        else:
            inverse = "_" not in symbol
            step = 10.0 if inverse and factor == "BTC" else 1.0
            fee = DERIBIT_TAKER
        return HedgeMarket(symbol, inverse, step, step), fee

    return lookup


def _price_source(asset: str, cfg: Config, names: frozenset[str]) -> str | None:
    for factor in cfg.factors:
        if factor.asset == asset and factor.hedge.symbol in names:
            return factor.hedge.symbol
    for candidate in (f"{asset}-PERPETUAL", f"{asset}_USDC-PERPETUAL", f"{asset}_USDC"):
        if candidate in names:
            return candidate
    return None


def replay_quote_map(
    cfg: Config, layout: BookLayout, rows: Mapping[str, int], streamed: frozenset[str]
) -> QuoteMap:
    """Which MarketState row feeds each book input; only streamed instruments count (an
    instrument listed but never subscribed would read as a quote that never came)."""
    names = streamed
    asset_row = []
    for asset in layout.assets:
        if asset in CASH_ASSETS:
            asset_row.append(NO_ROW)
            continue
        source = _price_source(asset, cfg, names)
        if source is None:
            raise LayoutError(f"asset {asset}: the recording has no perpetual or spot to price it")
        asset_row.append(rows[source])
    mark_row = np.full(len(layout.positions), NO_ROW, np.intp)
    for row in layout.hedge_rows:
        mark_row[row] = rows[layout.positions[row].instrument.symbol]
    option_row, fallback = [], []
    for position in layout.positions:
        inst = position.instrument
        if inst.kind is not Kind.OPTION:
            continue
        assert inst.strike is not None and inst.expiry_ms is not None
        name = option_name(
            inst.underlying,
            inst.inverse,
            expiry_code(inst.expiry_ms),
            inst.strike,
            bool(inst.is_call),
        )
        iv = cfg.portfolio.reference.implied_vols.get(inst.underlying, np.nan)
        if name not in streamed and not iv > 0:
            raise LayoutError(
                f"option {inst.symbol}: not in the recording and portfolio.reference."
                f"implied_vols has no vol for {inst.underlying}"
            )
        option_row.append(rows[name] if name in streamed else NO_ROW)
        fallback.append(iv)
    asset_rows = np.array(asset_row, np.intp)
    options = np.array(option_row, np.intp)
    inputs = np.unique(np.concatenate([asset_rows, mark_row, options]))
    return QuoteMap(
        asset_row=asset_rows,
        mark_row=mark_row,
        option_row=options,
        option_fallback_iv=np.array(fallback, np.float64),
        inputs=inputs[inputs >= 0].astype(np.intp),
    )


def exchange_ms(frame: bytes) -> int | None:
    """A ticker push's exchange timestamp, read without parsing the frame (the parse is
    ``handle_frame``'s); None for anything else."""
    if _PUSH not in frame:
        return None
    at = frame.find(_TS_KEY)
    if at < 0:
        return None
    start = at + len(_TS_KEY)
    comma, brace = frame.find(b",", start), frame.find(b"}", start)
    end = brace if comma < 0 or 0 <= brace < comma else comma
    try:
        return int(frame[start:end])
    except ValueError:
        return None


class _TapeWriter:
    """Reads the state once per bar into growing columns."""

    def __init__(
        self, cfg: Config, layout: BookLayout, state: MarketState, streamed: frozenset[str]
    ) -> None:
        self.cfg, self.layout, self.state = cfg, layout, state
        self.qmap = replay_quote_map(cfg, layout, state.rows, streamed)
        hedge_syms = [layout.positions[r].instrument.symbol for r in layout.hedge_rows]
        self.hedge_rows = np.array([state.rows[s] for s in hedge_syms], np.intp)
        self.book_asset = np.array(
            [layout.assets.index(p.instrument.underlying) for p in layout.positions], np.intp
        )
        self.option_rows = np.array(
            [i for i, p in enumerate(layout.positions) if p.instrument.kind is Kind.OPTION], np.intp
        )
        self.rows: dict[str, list[Any]] = {k: [] for k in ("t", "a", "m", "u", "v", "b", "k", "h")}
        self.input_names = tuple(state.symbols[int(i)] for i in self.qmap.inputs)
        self.ages: list[FloatArray] = []

    def read(self, now_ms: int, recv_now_s: float) -> None:
        s = self.state
        q = self.qmap.quotes(
            s.mark, s.index, s.underlying_price, s.mark_iv, self.book_asset, self.option_rows
        )
        r = self.rows
        r["t"].append(now_ms)
        r["a"].append(q.asset_price)
        r["m"].append(q.mark)
        r["u"].append(q.underlying_price)
        r["v"].append(q.implied_vol)
        h = self.hedge_rows
        r["b"].append(s.bid[h])
        r["k"].append(s.ask[h])
        r["h"].append(s.mark[h])
        # The receive clock, as live: the recording stamps every frame when it arrived.
        age = recv_now_s - s.received_s[self.qmap.inputs]
        self.ages.append(np.where(np.isnan(age), np.inf, age))

    def tape(self, source: str) -> Tape:
        r = self.rows
        if not r["t"]:
            raise LayoutError("the recording has no ticker for the book's instruments")
        return Tape(
            layout=self.layout,
            time_ms=np.array(r["t"], np.int64),
            asset_price=np.array(r["a"]),
            mark=np.array(r["m"]),
            underlying_price=np.array(r["u"]),
            implied_vol=np.array(r["v"]),
            hedge_bid=np.array(r["b"]),
            hedge_ask=np.array(r["k"]),
            hedge_mark=np.array(r["h"]),
            true_loadings=None,
            input_names=self.input_names,
            input_age_s=np.array(self.ages).reshape(len(self.ages), len(self.input_names)),
            source=source,
            updates=self.state.accepted,
        )


def replay_lines(cfg: Config, lines: list[bytes], bar_ms: int, source: str = "replay") -> Tape:
    """A recording already in memory."""
    return replay_tape(cfg, [lines], bar_ms, index_recording(lines), source)


def replay_file(cfg: Config, path: str | Path, bar_ms: int) -> Tape:
    """A recording streamed from its file: the index from its opening replies when the
    recorder wrote them, else from a first full pass."""
    batches = iter_line_batches(path)
    first = next(batches, [])
    batches.close()
    index = index_recording(first)
    if not index.from_replies:
        index = index_recording(line for batch in iter_line_batches(path) for line in batch)
    return replay_tape(cfg, iter_line_batches(path), bar_ms, index, f"replay:{path}")


def replay_bars(
    live: LiveMarket, batches: Iterable[Sequence[bytes]], bar_ms: int
) -> Iterator[tuple[int, float]]:
    """Feed a recording's frames into ``live`` as the live feed would, and yield at every
    bar close (``bar_ms`` of exchange time) the instant a cycle runs: the newest exchange
    time seen (ms) and the newest receive time (s). The backtest reads a tape row there;
    the parity test runs the live engine's cycle there."""
    bar_end = -1
    clock_ms = 0
    recv_now_s = 0.0
    fresh = False
    ticker = FrameKind.TICKER
    ts_key_len = len(_TS_KEY)
    # The per-message loop of the whole backtest: the line is cut, not parsed (the frame's
    # one parse is handle_frame's), and the exchange time is read from the frame's bytes.
    for lines in batches:
        for line in lines:
            split = line.find(FRAME_KEY, PREFIX_LEN)
            if split < 0 or line[-1:] != b"}":
                if line.strip():
                    decode_line(line)  # raises, naming the line
                continue
            frame = line[split + len(FRAME_KEY) : -1]
            if frame[:1] == b'"':
                frame = decode_line(line)[1]
            recv_s = int(line[PREFIX_LEN:split]) / 1000.0
            # exchange_ms, inlined: a call per message costs as much as the search itself.
            ts = None
            at = frame.find(_TS_KEY)
            if at >= 0 and _PUSH in frame:
                end = frame.find(b",", at)
                ts = int(frame[at + ts_key_len : end]) if end > 0 else exchange_ms(frame)
            if ts is None:
                handle_frame(live, frame, recv_s)
                continue
            if bar_end < 0:
                bar_end = -(-ts // bar_ms) * bar_ms  # a tick on a boundary closes that bar
            elif ts > bar_end:
                if fresh:
                    yield clock_ms, recv_now_s
                    fresh = False
                bar_end += -(-(ts - bar_end) // bar_ms) * bar_ms
            if handle_frame(live, frame, recv_s) is ticker:
                fresh = True
                clock_ms = ts if ts > clock_ms else clock_ms
                recv_now_s = recv_s if recv_s > recv_now_s else recv_now_s
    if fresh:
        yield clock_ms, recv_now_s


def replay_tape(
    cfg: Config,
    batches: Iterable[Sequence[bytes]],
    bar_ms: int,
    index: RecordingIndex,
    source: str = "replay",
) -> Tape:
    """The recording's lines, conflated into bars of ``bar_ms`` of exchange time."""
    layout = book_layout(cfg, _hedge_lookup(index))
    # No future-tick check here: a recording's receive stamps are whatever the recorder's
    # clock said, and refusing ticks on them would change the tape, not protect a trade.
    state = MarketState(index.names)
    writer = _TapeWriter(cfg, layout, state, index.streamed)
    for clock_ms, recv_now_s in replay_bars(LiveMarket(state), batches, bar_ms):
        writer.read(clock_ms, recv_now_s)
    return writer.tape(source)
