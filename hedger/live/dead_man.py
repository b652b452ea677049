"""Venue-side dead-man's switches: the venue cancels our orders if the daemon goes quiet.

An armed switch is a timer at the venue that the daemon keeps pushing back; if the daemon
dies, hangs or loses its network, the timer runs out and the venue cancels the orders (a
limit hedge left resting would otherwise fill unwatched). Off by default, per venue
(``venues.<name>.dead_man``). What each venue offers, through its real ccxt client:

- OKX: ``cancel_all_orders_after`` -> ``POST /api/v5/trade/cancel-all-after`` with
  ``timeOut`` (seconds, 10 to 120; 0 disarms). Cancels every order of the account.
- Binance USD-M: ``POST /fapi/v1/countdownCancelAll`` with ``symbol`` and ``countdownTime``
  (ms; 0 disarms), one timer per symbol: armed for each hedge instrument on the venue.
  Cancels every order of that symbol.
- Bybit: ``cancel_all_orders_after`` -> ``POST /v5/order/disconnected-cancel-all`` with
  ``product`` and ``timeWindow`` (3 to 300 s) sets the window of the account's DCP; the
  timer is a private websocket subscribed to ``dcp.future`` (``hedger.execution.bybit_dcp``).
  Needs DCP enabled on the account by Bybit. There is no 0: disarming unsubscribes.
- Deribit: cancel-on-disconnect on the order socket instead (``DeribitWsBroker``).

``refresh()`` arms or pushes the timer back, ``disarm()`` stops it, ``run(stop)`` refreshes
every ``refresh_every_s`` until ``stop`` is set and then disarms (a planned stop should not
cancel the account's orders; cancelling the task instead leaves the timer to run out). A
failed refresh is logged and counted, and retried at the next beat: with the timer longer
than the beat, one miss does not fire it.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

import structlog

from hedger.execution.bybit_dcp import PRIVATE_WS, TOPICS, BybitDcpSocket
from hedger.market.symbols import resolve

if TYPE_CHECKING:
    from hedger.config import Venue

log = structlog.get_logger("hedger.live.dead_man")

# What each venue's switch accepts lives with the config that validates it.


class DeadManSwitch(ABC):
    """One venue's switch. ``refresh``/``disarm`` raise what the venue or ccxt raises."""

    def __init__(self, venue: str, timeout_s: float, refresh_every_s: float) -> None:
        if not 0 < refresh_every_s < timeout_s:
            raise ValueError(f"{venue}: dead_man.refresh_every must be below its timeout")
        self.venue = venue
        self.timeout_s = timeout_s
        self.refresh_every_s = refresh_every_s
        self.refreshes = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.armed = False

    @abstractmethod
    async def refresh(self) -> None:
        """Arm the switch, or push its timer back to ``timeout_s`` from now."""

    @abstractmethod
    async def disarm(self) -> None:
        """Stop the timer; orders stay."""

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh every ``refresh_every_s`` until ``stop`` is set, then disarm."""
        while not stop.is_set():
            try:
                await self.refresh()
            except Exception as exc:  # any: the next beat retries; the timer outlasts a miss
                self.failures += 1
                self.consecutive_failures += 1
                log.warning(
                    "dead_man_refresh_failed",
                    venue=self.venue,
                    error=repr(exc),
                    consecutive=self.consecutive_failures,
                )
            else:
                if self.refreshes == 0:
                    log.info("dead_man_armed", venue=self.venue, timeout_s=self.timeout_s)
                elif self.consecutive_failures:
                    log.info("dead_man_refreshed_again", venue=self.venue)
                self.refreshes += 1
                self.consecutive_failures = 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.refresh_every_s)
        try:
            await self.disarm()
        except Exception as exc:  # the timer then runs out: orders are cancelled, the safe side
            log.warning("dead_man_disarm_failed", venue=self.venue, error=repr(exc))
        else:
            log.info("dead_man_disarmed", venue=self.venue)


class OkxDeadMan(DeadManSwitch):
    """OKX's cancel-all-after: one account-wide timer."""

    def __init__(self, client: Any, venue: str, timeout_s: float, refresh_every_s: float) -> None:
        super().__init__(venue, timeout_s, refresh_every_s)
        self.client = client

    async def _set(self, seconds: int) -> None:
        # OKX documents timeOut as a string of seconds; ccxt would send the number.
        await self.client.cancel_all_orders_after(seconds * 1000, {"timeOut": str(seconds)})

    async def refresh(self) -> None:
        await self._set(int(self.timeout_s))
        self.armed = True

    async def disarm(self) -> None:
        await self._set(0)
        self.armed = False


class BinanceCountdown(DeadManSwitch):
    """Binance USD-M's countdownCancelAll: one timer per hedge symbol.

    ``symbols()`` names the venue's hedge instruments now (ids or unified symbols, as the
    config writes them); a symbol that leaves the set (a reload) has its timer stopped."""

    def __init__(
        self,
        client: Any,
        venue: str,
        timeout_s: float,
        refresh_every_s: float,
        symbols: Callable[[], Collection[str]],
    ) -> None:
        super().__init__(venue, timeout_s, refresh_every_s)
        self.client = client
        self.symbols = symbols
        self.armed_ids: set[str] = set()

    async def _countdown(self, market_id: str, ms: int) -> None:
        await self.client.fapiPrivatePostCountdownCancelAll(
            {"symbol": market_id, "countdownTime": ms}
        )

    async def _each(
        self, market_ids: Collection[str], ms: int
    ) -> tuple[set[str], Exception | None]:
        """Set every timer, even after one fails: the ones set, and the first error."""
        done: set[str] = set()
        error: Exception | None = None
        for market_id in market_ids:
            try:
                await self._countdown(market_id, ms)
            except Exception as exc:
                error = error or exc
            else:
                done.add(market_id)
        return done, error

    async def refresh(self) -> None:
        wanted = [str(resolve(self.client.markets, s, self.venue)["id"]) for s in self.symbols()]
        stopped, stop_error = await self._each(sorted(self.armed_ids - set(wanted)), 0)
        armed, arm_error = await self._each(wanted, int(self.timeout_s * 1000))
        self.armed_ids = (self.armed_ids - stopped) | armed
        self.armed = bool(self.armed_ids)
        error = arm_error or stop_error
        if error is not None:
            raise error

    async def disarm(self) -> None:
        stopped, error = await self._each(sorted(self.armed_ids), 0)
        self.armed_ids -= stopped
        self.armed = bool(self.armed_ids)
        if error is not None:
            raise error


class BybitDcp(DeadManSwitch):
    """Bybit's DCP: the window set over REST once, the socket kept subscribed and pinged."""

    def __init__(
        self,
        client: Any,
        venue: str,
        timeout_s: float,
        refresh_every_s: float,
        socket: BybitDcpSocket,
        product: str = "DERIVATIVES",
    ) -> None:
        super().__init__(venue, timeout_s, refresh_every_s)
        self.client = client
        self.socket = socket
        self.product = product
        self._window_set = False

    async def refresh(self) -> None:
        if not self._window_set:
            await self.client.cancel_all_orders_after(
                int(self.timeout_s) * 1000, {"product": self.product}
            )
            self._window_set = True
        try:
            if not self.socket.connected:
                await self.socket.open()
            await self.socket.ping()
        except BaseException:
            await self.socket.close(unsubscribe=False)  # reopened at the next beat
            self.armed = False
            raise
        self.armed = True

    async def disarm(self) -> None:
        await self.socket.close(unsubscribe=True)
        self.armed = False


def make_dead_man(
    client: Any,
    venue: str,
    cfg: Venue,
    hedge_symbols: Callable[[], Collection[str]],
    *,
    bybit_ws_url: str | None = None,
) -> DeadManSwitch | None:
    """The venue's switch as configured, or None when it is off. ``hedge_symbols()``: the
    venue's hedge instruments now (Binance arms one timer each). ``bybit_ws_url`` overrides
    the private stream's address (a loopback test, a proxy)."""
    settings = cfg.dead_man
    if not settings.enabled:
        return None
    timeout_s, every_s = settings.timeout, settings.refresh_every
    if cfg.exchange == "okx":
        return OkxDeadMan(client, venue, timeout_s, every_s)
    if cfg.exchange == "binanceusdm":
        return BinanceCountdown(client, venue, timeout_s, every_s, hedge_symbols)
    if cfg.exchange == "bybit":
        environment = "testnet" if cfg.testnet else "demo" if cfg.demo_trading else "live"
        if cfg.api_key is None or cfg.secret is None:
            raise ValueError(f"venues.{venue}.dead_man: Bybit's DCP needs api_key and secret")
        socket = BybitDcpSocket(
            bybit_ws_url or PRIVATE_WS[environment],
            cfg.api_key.get_secret_value(),
            cfg.secret.get_secret_value(),
            TOPICS["DERIVATIVES"],
            reply_timeout_s=cfg.timeout_seconds,
        )
        return BybitDcp(client, venue, timeout_s, every_s, socket)
    raise ValueError(f"venues.{venue}.dead_man: no dead-man's switch for {cfg.exchange}")
