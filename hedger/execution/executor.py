"""Sends an approved hedge, and makes sure it is on the venue exactly once.

For each leg of an intent: journal the order with its deterministic client id, then send.
ccxt's error classes decide what happens next:

- network trouble (timeout, rate limit, 5xx, dropped connection): the request may or may
  not have reached the venue, so look the client id up first (retrying the lookup with
  backoff until the venue answers). Found: adopt it, nothing is resent. Not found after a
  grace period: journal it as ``not_sent`` and send a new attempt under a new id.
- the venue refused the order (invalid order, insufficient funds, auth): journal it as
  ``rejected`` and raise ``OrderRefusedError``: retrying would be refused again.

So there are never two live orders for one leg, even across restarts: ``reconcile()``
resolves every order the journal does not know to be final before the first new hedge.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import ccxt.async_support as ccxt
import structlog
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from hedger.execution.broker import Broker, VenueOrder
from hedger.journal import Journal, OrderRecord, client_order_id

log = structlog.get_logger("hedger.execution")

Clock = Callable[[], int]
"""UTC epoch milliseconds."""


class OrderRefusedError(Exception):
    """The venue refused the order itself; resending would be refused again."""

    def __init__(self, client_id: str, reason: str) -> None:
        super().__init__(f"{client_id}: {reason}")
        self.client_id = client_id
        self.reason = reason


class ExecutionFailedError(Exception):
    """Every attempt failed on the network; the journal knows each one's fate."""


@dataclass(slots=True, frozen=True)
class Fill:
    client_id: str
    """of the last order of the leg (the market remainder after a limit, if any)."""
    order: VenueOrder
    attempts: int
    filled_total: float = 0.0
    """amount filled over every order of the leg."""


class Executor:
    def __init__(
        self,
        journal: Journal,
        broker: Broker,
        *,
        daemon_name: str,
        clock: Clock,
        max_attempts: int = 5,
        label_max_len: int = 64,
        lookup_timeout_s: float = 60.0,
        not_found_grace_s: float = 1.0,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 5.0,
        limit_poll_s: float = 0.25,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.journal = journal
        self.broker = broker
        self.name = daemon_name
        self.clock = clock
        self.max_attempts = max_attempts
        self.label_max_len = label_max_len
        self.lookup_timeout_s = lookup_timeout_s
        self.not_found_grace_s = not_found_grace_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.limit_poll_s = limit_poll_s
        self._sleep = sleep

    async def execute(
        self,
        intent_seq: int,
        leg: int,
        symbol: str,
        side: str,
        amount: float,
        *,
        limit_price: float | None = None,
        limit_timeout_s: float = 10.0,
        amount_step: float = 0.0,
    ) -> Fill:
        """Market order; or a limit at ``limit_price`` that, unfilled after
        ``limit_timeout_s``, is cancelled (confirmed) before the rest goes at market, so
        the leg never has two live orders. ``amount_step``: the venue's lot, for the rest."""
        if limit_price is None:
            return await self._send(intent_seq, leg, 0, symbol, side, amount, None)
        first = await self._send(intent_seq, leg, 0, symbol, side, amount, limit_price)
        order = first.order
        if order.status == "open":
            order = await self._await_fill(first.client_id, symbol, limit_timeout_s)
        if order.status == "open":
            order = await self._cancel(first.client_id, order)
        rest = amount - order.filled
        if amount_step > 0:
            rest = math.floor(rest / amount_step + 1e-9) * amount_step
        if rest <= 0 or order.status not in ("cancelled", "filled"):
            return Fill(first.client_id, order, first.attempts, order.filled)
        log.info("limit_timed_out", client_id=first.client_id, filled=order.filled, rest=rest)
        market = await self._send(intent_seq, leg, first.attempts, symbol, side, rest, None)
        return Fill(
            market.client_id,
            market.order,
            first.attempts + market.attempts,
            order.filled + market.order.filled,
        )

    async def _await_fill(self, client_id: str, symbol: str, timeout_s: float) -> VenueOrder:
        """Poll the order until it is no longer open or the timeout passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        order: VenueOrder | None = None
        while True:
            found = await self._lookup(client_id, symbol)
            if found:
                order = found[0]
                if order.status != "open" or loop.time() >= deadline:
                    break
            elif loop.time() >= deadline:
                break
            await self._sleep(min(self.limit_poll_s, max(0.0, deadline - loop.time())))
        if order is None:
            raise ExecutionFailedError(f"{client_id}: acknowledged but no longer found")
        if order.status != "open":
            self._adopt(client_id, order)
        return order

    async def _cancel(self, client_id: str, order: VenueOrder) -> VenueOrder:
        """Cancel and return the order's final state (a fill may have won the race)."""
        try:
            final = await self.broker.cancel(order.venue_order_id, order.symbol)
        except ccxt.OrderNotFound:
            found = await self._lookup(client_id, order.symbol)
            if not found:
                raise ExecutionFailedError(f"{client_id}: vanished while cancelling") from None
            final = found[0]
        if final.status == "open":
            found = await self._lookup(client_id, order.symbol)
            final = found[0] if found else final
        self._adopt(client_id, final)
        return final

    async def _send(
        self,
        intent_seq: int,
        leg: int,
        first_attempt: int,
        symbol: str,
        side: str,
        amount: float,
        price: float | None,
    ) -> Fill:
        for attempt in range(first_attempt, first_attempt + self.max_attempts):
            client_id = client_order_id(self.name, intent_seq, leg, attempt, self.label_max_len)
            self.journal.record_order(
                now_ms=self.clock(),
                client_id=client_id,
                intent_seq=intent_seq,
                leg=leg,
                attempt=attempt,
                venue=self.broker.venue,
                symbol=symbol,
                side=side,
                qty=amount,
            )
            log.info(
                "order_sent",
                client_id=client_id,
                venue=self.broker.venue,
                symbol=symbol,
                side=side,
                qty=amount,
                price=price,
                attempt=attempt,
            )
            try:
                order = await self.broker.place(symbol, side, amount, client_id, price)
            except ccxt.NetworkError as exc:
                self._event(
                    client_id, "order_send_failed", error=type(exc).__name__, detail=str(exc)
                )
                found = await self._resolve(client_id, symbol)
                if found is not None:
                    return Fill(client_id, found, attempt + 1 - first_attempt, found.filled)
                await self._sleep(self._backoff(attempt - first_attempt))
                continue
            except ccxt.ExchangeError as exc:
                self._settle(client_id, "rejected")
                self._event(client_id, "order_rejected", error=type(exc).__name__, detail=str(exc))
                log.warning("order_rejected", client_id=client_id, error=type(exc).__name__)
                raise OrderRefusedError(client_id, f"{type(exc).__name__}: {exc}") from exc
            self._adopt(client_id, order)
            return Fill(client_id, order, attempt + 1 - first_attempt, order.filled)
        raise ExecutionFailedError(
            f"intent {intent_seq} leg {leg}: {self.max_attempts} attempts failed"
        )

    async def reconcile(self) -> list[OrderRecord]:
        """Resolve every journaled order whose fate is unknown (e.g. after a crash between
        'journaled' and 'acked'), before anything new is sent. Returns what was resolved."""
        resolved = []
        for record in self.journal.unresolved_orders():
            if record.venue != self.broker.venue:
                continue  # another venue's executor owns it
            await self._resolve(record.client_id, record.symbol)
            updated = self.journal.order(record.client_id)
            assert updated is not None
            resolved.append(updated)
            log.info("order_reconciled", client_id=record.client_id, status=updated.status)
        return resolved

    # -- internals ------------------------------------------------------------------------

    async def _resolve(self, client_id: str, symbol: str) -> VenueOrder | None:
        """Look the id up until the venue answers; adopt what it knows, or mark not sent."""
        found = await self._lookup(client_id, symbol)
        if not found:
            # A request can still be in flight; look once more before giving the id up.
            await self._sleep(self.not_found_grace_s)
            found = await self._lookup(client_id, symbol)
        if not found:
            self._settle(client_id, "not_sent")
            self._event(client_id, "order_not_on_venue")
            return None
        order = found[0]
        self._adopt(client_id, order)
        return order

    async def _lookup(self, client_id: str, symbol: str) -> list[VenueOrder]:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(ccxt.NetworkError),
            wait=wait_exponential_jitter(
                multiplier=self.backoff_initial_s,
                max=self.backoff_max_s,
                jitter=self.backoff_initial_s,
            ),
            stop=stop_after_delay(self.lookup_timeout_s),
            sleep=self._sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self.broker.find(client_id, symbol)
        raise AssertionError("unreachable: tenacity reraises or returns")

    def _adopt(self, client_id: str, order: VenueOrder) -> None:
        self.journal.update_order(
            client_id,
            now_ms=self.clock(),
            status=order.status,
            venue_order_id=order.venue_order_id,
            filled_qty=order.filled,
        )
        kind = "order_filled" if order.status == "filled" else f"order_{order.status}"
        self._event(
            client_id,
            kind,
            venue_order_id=order.venue_order_id,
            filled=order.filled,
            average_price=order.average_price,
        )
        log.info(
            kind,
            client_id=client_id,
            venue_order_id=order.venue_order_id,
            filled=order.filled,
            average_price=order.average_price,
        )

    def _settle(self, client_id: str, status: str) -> None:
        self.journal.update_order(client_id, now_ms=self.clock(), status=status)

    def _event(self, client_id: str, kind: str, **payload: object) -> None:
        self.journal.record_event(
            now_ms=self.clock(), kind=kind, client_id=client_id, payload=payload
        )

    def _backoff(self, attempt: int) -> float:
        return float(min(self.backoff_max_s, self.backoff_initial_s * 2**attempt))
