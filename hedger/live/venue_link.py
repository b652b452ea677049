"""One configured venue: its ccxt client, broker, market state and feed.

The shell around a venue: connecting (markets), reading positions and balances, history
for the beta warm start, this daemon's open orders, and the ticker feed (Deribit's native
websocket when the venue speaks Deribit, ``ccxt.pro`` otherwise).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ccxt.async_support as ccxt_async
import numpy as np
import structlog
from numpy.typing import NDArray

from hedger.backoff import Backoff, retry
from hedger.config import Venue
from hedger.core.exposure import Position
from hedger.execution.brokers import VenueOrder, make_broker
from hedger.execution.brokers.deribit import DeribitBroker
from hedger.execution.brokers.deribit_ws import DeribitWsBroker
from hedger.execution.positions import AMOUNT_IS_UNITS, balance_positions, venue_positions
from hedger.live import venue_client
from hedger.market.ccxt_feed import CcxtTickerFeed
from hedger.market.deribit_feed import DeribitTickerFeed
from hedger.market.state import LiveMarket, MarketState

log = structlog.get_logger("hedger.live.venue_link")

_RETRY = Backoff(initial_s=0.2, cap_s=5.0)

_DERIBIT_WS = {False: "wss://www.deribit.com/ws/api/v2", True: "wss://test.deribit.com/ws/api/v2"}


class VenueLink:
    """A venue as the engine uses it. ``market`` and the feed exist once subscribed."""

    def __init__(self, name: str, cfg: Venue, client: Any | None = None) -> None:
        self.name = name
        self.cfg = cfg
        self.client = client if client is not None else make_client(cfg)
        self._rng = random.Random()
        self._rng = random.Random()
        self.broker = make_broker(self.client, name, cfg.exchange, cfg.label_max_len)
        if isinstance(self.broker, DeribitBroker) and cfg.order_socket:
            self.broker = DeribitWsBroker(
                self.client,
                name,
                cfg.urls.ws or _DERIBIT_WS[cfg.testnet],
                client_ids=self.broker.client_ids,
            )
        self.market: LiveMarket | None = None
        self.feed: DeribitTickerFeed | CcxtTickerFeed | None = None
        self._pro: Any | None = None
        self._pro_start: asyncio.Task[None] | None = None
        self.position_rows: list[Mapping[str, Any]] = []
        """ccxt's ``fetch_positions`` rows of the last read (liquidation prices, margins)."""
        self.balance: Mapping[str, Any] | None = None
        """The last ``fetch_balance`` answer (Deribit's account summaries)."""
        self.supervise: Callable[[asyncio.Task[Any], str], None] = lambda task, name: None
        """Set by the engine: the feed's tasks are reported to its supervisor if they fail."""

    @property
    def speaks_deribit(self) -> bool:
        return self.cfg.exchange == "deribit"

    @property
    def markets(self) -> Mapping[str, Mapping[str, Any]]:
        markets: Mapping[str, Mapping[str, Any]] = self.client.markets or {}
        return markets

    @property
    def decimal_places(self) -> bool:
        return bool(self.client.precisionMode == ccxt_async.DECIMAL_PLACES)

    @property
    def amount_is_units(self) -> bool:
        return self.cfg.exchange in AMOUNT_IS_UNITS

    def market_by_id(self, instrument_id: str) -> Mapping[str, Any]:
        found = self.client.markets_by_id.get(instrument_id)
        if not found:
            raise KeyError(f"{instrument_id!r} is not listed on {self.name}")
        market: Mapping[str, Any] = found[0]
        return market

    async def _retry(self, what: str, call: Any, *args: Any, limit_s: float = 60.0) -> Any:
        """``call(*args)``, retrying network trouble for ``limit_s`` with the shared backoff."""
        return await retry(
            lambda: call(*args),
            retry_on=ccxt_async.NetworkError,
            give_up_s=limit_s,
            pacing=_RETRY,
            rng=self._rng,
            on_failure=lambda attempt, _error: log.info(
                "venue_retry", venue=self.name, call=what, attempt=attempt + 1
            ),
        )

    async def connect(self) -> None:
        await self._retry("load_markets", self.client.load_markets)
        log.info("venue_connected", venue=self.name, markets=len(self.markets))
        if isinstance(self.broker, DeribitWsBroker):
            try:
                await self.broker.connect()
            except Exception as exc:  # REST still works; the socket is retried on use
                log.warning("order_socket_unavailable", venue=self.name, error=repr(exc))

    async def positions(self) -> list[Position]:
        """Open positions and coin/cash equity, as the venue reports them now."""
        positions: list[Position] = []
        if venue_client.reads_positions(self.cfg):
            rows = await self._retry("fetch_positions", self.client.fetch_positions)
            self.position_rows = list(rows)  # the margin guard reads them as the venue said
            held = venue_positions(rows, self.markets, self.cfg.exchange, self.name)
            # Equity already holds the futures' unrealised P&L: entry prices would count it
            # in NAV a second time (their delta does not depend on it).
            positions = [Position(p.instrument, p.qty, None) for p in held]
        for params in venue_client.balance_params(self.cfg):  # one per configured account
            balance = await self._retry("fetch_balance", self.client.fetch_balance, params)
            self.balance = balance
            positions += balance_positions(balance, self.name)
        return positions

    async def closes(
        self, instrument_ids: Sequence[str], timeframe: str, since_ms: int
    ) -> dict[str, tuple[NDArray[np.int64], NDArray[np.float64]]]:
        """OHLCV close series (timestamps, closes) per instrument id since ``since_ms``."""
        out = {}
        for instrument_id in instrument_ids:
            symbol = self.market_by_id(instrument_id)["symbol"]
            candles: list[list[float]] = []
            cursor = since_ms
            while True:
                page = await self._retry(
                    "fetch_ohlcv", self.client.fetch_ohlcv, symbol, timeframe, cursor, 1000
                )
                fresh = [c for c in page if not candles or c[0] > candles[-1][0]]
                if not fresh:
                    break
                candles += fresh
                cursor = int(fresh[-1][0]) + 1
                if len(page) < 1000:
                    break
            out[instrument_id] = (
                np.array([int(c[0]) for c in candles], dtype=np.int64),
                np.array([float(c[4]) for c in candles], dtype=np.float64),
            )
        return out

    async def own_open_orders(self, is_own: Callable[[str], bool]) -> list[VenueOrder]:
        orders = await self._retry("fetch_open_orders", self.broker.open_orders)
        return [o for o in orders if is_own(o.client_id)]

    def start_feed(
        self, instrument_ids: Sequence[str], changed: asyncio.Event, max_ahead_ms: int = 5_000
    ) -> LiveMarket:
        """Stream ``instrument_ids`` into a fresh state that sets the shared ``changed``;
        ticks stamped more than ``max_ahead_ms`` ahead of the receive clock are dropped."""
        market = LiveMarket(MarketState(instrument_ids, max_ahead_ms=max_ahead_ms))
        market.changed = changed
        self.market = market
        self._open_feed(instrument_ids)
        return market

    def grow_state(self, instrument_ids: Sequence[str]) -> None:
        """More rows at the end of the state; existing rows keep their index and data."""
        assert self.market is not None
        self.market.replace_state(self.market.state.extended(instrument_ids))

    async def reopen_feed(self) -> None:
        """Resubscribe to every row of the state (a new position to price). Reopening with
        the whole list is simpler to reason about than a diff, and it is rare."""
        assert self.market is not None
        if self.feed is not None:
            await self.feed.stop()
        self._open_feed(self.market.state.symbols)

    def _open_feed(self, instrument_ids: Sequence[str]) -> None:
        assert self.market is not None
        market = self.market
        if self.speaks_deribit:
            url = self.cfg.urls.ws or _DERIBIT_WS[self.cfg.testnet]
            feed = DeribitTickerFeed(market, url, instrument_ids)
            self.supervise(feed.start(), f"feed-{self.name}")
            self.feed = feed
        else:
            import ccxt.pro as ccxt_pro

            if self._pro is None:
                self._pro = make_client(self.cfg, ccxt_pro)
            generic = CcxtTickerFeed(market, self._pro, instrument_ids, supervise=self.supervise)
            self._pro_start = asyncio.get_running_loop().create_task(generic.start())
            self.supervise(self._pro_start, f"feed-start-{self.name}")
            self.feed = generic

    async def watch_own_trades(self, on_trade: Callable[[list[str]], None]) -> None:
        """Call ``on_trade(labels)`` whenever the account trades (own hedges, or anyone
        else's orders on the same account), forever, with each trade's order label (Deribit's
        client id; "" if none): the engine re-reads positions on it and matches the labels
        against orders whose fate it does not know."""
        import ccxt.pro as ccxt_pro

        if self._pro is None:
            self._pro = make_client(self.cfg, ccxt_pro)
        attempt = 0
        while True:
            try:
                trades = await self._pro.watch_my_trades()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a dead loop would leave fills to the next reconcile
                delay_s = min(30.0, 0.5 * 2**attempt)
                attempt += 1
                log.warning("trade_watch_failed", venue=self.name, error=repr(exc), delay_s=delay_s)
                await asyncio.sleep(delay_s)
                continue
            attempt = 0
            if trades:
                on_trade([str((t.get("info") or {}).get("label") or "") for t in trades])

    @property
    def reconnects(self) -> int:
        if isinstance(self.feed, DeribitTickerFeed):
            return self.feed.stats.reconnects
        if isinstance(self.feed, CcxtTickerFeed):
            return self.feed.stats.recoveries
        return 0

    async def close(self) -> None:
        if isinstance(self.broker, DeribitWsBroker):
            await self.broker.close()
        if self.feed is not None:
            await self.feed.stop()
        if self._pro is not None:
            await self._pro.close()
        await self.client.close()


def make_client(cfg: Venue, module: Any = ccxt_async) -> Any:
    """The venue's ccxt client (``hedger/live/venue_client.py`` holds the details)."""
    return venue_client.make_client(cfg, module)
