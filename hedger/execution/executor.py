"""Sends an approved hedge leg, and makes sure it fills on the venue at most once.

For each attempt of a leg: journal the order with its deterministic client id (and, where
the venue honours one, a request time-to-live), then send. What happens next depends on
what is known about the request, never on a guess:

- the venue refused it (ccxt ``ExchangeError``: invalid order, insufficient funds, auth,
  a request that arrived after its time-to-live): ``rejected``, ``OrderRefusedError``;
  retrying would be refused again.
- the venue turned it away at the door (429, ``DDoSProtection``): ``not_sent``, back off,
  send the next attempt.
- anything else (timeout, dropped connection, 5xx, an unparseable answer): the request may
  still reach the venue. It is ``unknown`` and its leg is blocked: the client id is looked
  up until the venue shows it (adopted, nothing is resent), or proves it can never land
  (its time-to-live passed on the venue's own clock and the venue still does not know it:
  ``not_sent``), or, on a venue without a time-to-live, shows it absent for the whole
  ``unknown_window_s`` (``abandoned``: the leg may be resent, but the id keeps being looked
  up by ``watch_abandoned`` and a late fill is adopted). An error that ccxt does not
  classify as network trouble also raises ``ExecutionFaultError`` once the order's fate is
  settled: the engine halts on it.

Before any new request, every order of this venue still in doubt is settled first, so a
leg is never sent while an earlier request of the daemon may still land (also across
restarts: ``reconcile()`` does the same before the first hedge).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import ccxt.async_support as ccxt
import structlog

from hedger.backoff import Backoff, retry
from hedger.core.policy import round_to_lot
from hedger.execution.brokers import Broker, Lookup, VenueOrder
from hedger.execution.brokers.client_ids import ClientIdRule, rule_for
from hedger.execution.journal import (
    ABANDONED,
    IN_DOUBT_STATUSES,
    Journal,
    OrderRecord,
)

log = structlog.get_logger("hedger.execution")

Clock = Callable[[], int]
"""UTC epoch milliseconds."""

StopCheck = Callable[[], str | None]
"""A reason not to send the next part of a hedge (paused, stale, ...), or None to go on."""


class OrderRefusedError(Exception):
    """The venue refused the order itself; resending would be refused again."""

    def __init__(self, client_id: str, reason: str) -> None:
        super().__init__(f"{client_id}: {reason}")
        self.client_id = client_id
        self.reason = reason


class ExecutionFailedError(Exception):
    """Every attempt failed on the network, or an order of unknown fate blocks the leg;
    the journal knows each one's fate."""


class ExecutionFaultError(Exception):
    """An error nobody classified (an unparseable answer, a bug in a parser): the order's
    fate was settled as far as the venue allows, and the engine must halt."""

    def __init__(self, client_id: str, detail: str, order: VenueOrder | None) -> None:
        super().__init__(f"{client_id}: {detail}")
        self.client_id = client_id
        self.detail = detail
        self.order = order


@dataclass(slots=True, frozen=True)
class Fill:
    client_id: str
    """of the last order of the leg (the market remainder after a limit, if any)."""
    order: VenueOrder
    attempts: int
    filled_total: float = 0.0
    """amount filled over every order of the leg."""
    stopped: str | None = None
    """why the rest of the leg was not sent (the limit part ran, the market part did not)."""


def _refused_at_the_door(exc: Exception) -> bool:
    # A 429 / DDoS answer is the venue saying it did not take the request.
    return isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded)


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
        order_ttl_s: float | None = 10.0,
        unknown_window_s: float = 30.0,
        watch_horizon_s: float = 3600.0,
        lookup_poll_s: float = 0.25,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 5.0,
        limit_poll_s: float = 0.25,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.journal = journal
        self.broker = broker
        self.name = daemon_name
        self.clock = clock
        self.max_attempts = max_attempts
        self.label_max_len = label_max_len
        # Client ids follow the venue's rules (field, length, alphabet): the broker's rule
        # (make_broker gives every broker its venue's), else readable ids of label_max_len.
        rule = getattr(broker, "client_ids", None)
        self.client_ids: ClientIdRule = rule if rule is not None else rule_for("", label_max_len)
        self.lookup_timeout_s = lookup_timeout_s
        self.order_ttl_s = order_ttl_s
        self.unknown_window_s = unknown_window_s
        self.watch_horizon_s = watch_horizon_s
        self.lookup_poll_s = lookup_poll_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.limit_poll_s = limit_poll_s
        self._sleep = sleep
        self._monotonic = monotonic
        self._pacing = Backoff(initial_s=backoff_initial_s, cap_s=backoff_max_s)
        self._rng = random.Random(daemon_name)  # jitter, reproducible per daemon
        self.failing_since_s: float | None = None
        """Monotonic time of the first of an unbroken run of network failures on this
        venue (None while its REST answers): readiness turns on it."""

    def _reached(self) -> None:
        self.failing_since_s = None

    def _unreachable(self) -> None:
        if self.failing_since_s is None:
            self.failing_since_s = self._monotonic()

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
        may_continue: StopCheck | None = None,
    ) -> Fill:
        """Market order; or a limit at ``limit_price`` that, unfilled after
        ``limit_timeout_s``, is cancelled (confirmed) before the rest goes at market, so
        the leg never has two live orders. ``amount_step``: the venue's lot, for the rest.
        ``may_continue`` is asked again before the market part."""
        await self._settle_in_doubt()
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
            rest = round_to_lot(rest, amount_step)
        if rest <= 0 or order.status not in ("cancelled", "filled"):
            return Fill(first.client_id, order, first.attempts, order.filled)
        stop = may_continue() if may_continue is not None else None
        if stop is not None:
            log.warning("leg_stopped", client_id=first.client_id, why=stop, rest=rest)
            return Fill(first.client_id, order, first.attempts, order.filled, stopped=stop)
        log.info("limit_timed_out", client_id=first.client_id, filled=order.filled, rest=rest)
        market = await self._send(intent_seq, leg, first.attempts, symbol, side, rest, None)
        return Fill(
            market.client_id,
            market.order,
            first.attempts + market.attempts,
            order.filled + market.order.filled,
        )

    async def execute_limit(
        self,
        intent_seq: int,
        leg: int,
        symbol: str,
        side: str,
        amount: float,
        *,
        price_now: Callable[[], float | None],
        reprice_every_s: float,
        timeout_s: float,
        amount_step: float = 0.0,
        may_continue: StopCheck | None = None,
    ) -> Fill:
        """Limit orders only (options: never a market order unless configured): a limit at
        ``price_now()``, re-priced every ``reprice_every_s`` (the resting order is cancelled,
        and the cancel confirmed, before the rest goes at the new price: one live order per
        leg at any time), until filled or ``timeout_s`` has passed; the rest is then left
        unsent (the next decision sees what did fill)."""
        await self._settle_in_doubt()
        deadline = self._monotonic() + timeout_s
        attempts, filled = 0, 0.0
        last: Fill | None = None
        rest = amount
        while True:
            price = price_now()
            if price is None or not price > 0:
                log.warning("limit_not_priced", symbol=symbol, side=side, rest=rest)
                break
            sent = await self._send(intent_seq, leg, attempts, symbol, side, rest, price)
            attempts += sent.attempts
            order = sent.order
            wait_s = max(0.0, min(reprice_every_s, deadline - self._monotonic()))
            if order.status == "open":
                order = await self._await_fill(sent.client_id, symbol, wait_s)
            if order.status == "open":
                order = await self._cancel(sent.client_id, order)
            filled += order.filled
            last = Fill(sent.client_id, order, attempts, filled)
            rest = amount - filled
            if amount_step > 0:
                rest = round_to_lot(rest, amount_step)
            if rest <= 0 or order.status not in ("cancelled", "filled"):
                break
            if self._monotonic() >= deadline:
                log.info("limit_expired", client_id=sent.client_id, filled=filled, rest=rest)
                break
            stop = may_continue() if may_continue is not None else None
            if stop is not None:
                log.warning("leg_stopped", client_id=sent.client_id, why=stop, rest=rest)
                return Fill(sent.client_id, order, attempts, filled, stopped=stop)
        if last is None:
            raise ExecutionFailedError(f"{symbol}: no price to place a limit order at")
        return last

    # -- sending ------------------------------------------------------------------------------

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
        # Attempts whose fate was in doubt count toward max_attempts; a venue that turns
        # requests away at the door (429) is waited out for lookup_timeout_s instead: those
        # requests provably never landed, so retrying them cannot double a fill.
        in_doubt = 0
        door_gives_up = self._monotonic() + self.lookup_timeout_s
        attempt = first_attempt - 1
        pauses = 0
        while in_doubt < self.max_attempts:
            attempt += 1
            client_id = self.client_ids.mint(self.name, intent_seq, leg, attempt)
            try:
                valid_until_ms = await self._deadline()
            except ccxt.NetworkError as exc:  # nothing journaled, nothing sent
                log.warning("venue_clock_unavailable", client_id=client_id, error=repr(exc))
                if self._monotonic() >= door_gives_up:
                    break
                attempt -= 1  # that id was never used: the next try takes it
                await self._sleep(self._backoff(pauses))
                pauses += 1
                continue
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
                valid_until_ms=valid_until_ms,
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
            sent_at = self._monotonic()
            try:
                order = await self.broker.place(
                    symbol, side, amount, client_id, price, valid_until_ms
                )
            except ccxt.ExchangeError as exc:
                self._settle(client_id, "rejected")
                self._event(client_id, "order_rejected", error=type(exc).__name__, detail=str(exc))
                log.warning("order_rejected", client_id=client_id, error=type(exc).__name__)
                raise OrderRefusedError(client_id, f"{type(exc).__name__}: {exc}") from exc
            except ccxt.NetworkError as exc:
                self._unreachable()
                if _refused_at_the_door(exc):
                    self._settle(client_id, "not_sent")
                    self._event(client_id, "order_refused_at_door", error=type(exc).__name__)
                    if self._monotonic() >= door_gives_up:
                        break
                else:
                    in_doubt += 1
                    self._settle(client_id, "unknown")
                    self._event(
                        client_id, "order_send_failed", error=type(exc).__name__, detail=str(exc)
                    )
                    found = await self._settle_unknown(client_id, symbol, valid_until_ms, sent_at)
                    if found is not None:
                        return Fill(client_id, found, attempt + 1 - first_attempt, found.filled)
                await self._sleep(self._backoff(pauses))
                pauses += 1
                continue
            except Exception as exc:
                # Not classified by ccxt as refused or as network trouble: the venue may hold
                # the order. Settle its fate first, then stop the engine.
                self._settle(client_id, "unknown")
                detail = f"{type(exc).__name__}: {exc}"
                self._event(client_id, "order_send_fault", error=type(exc).__name__, detail=detail)
                log.error("order_send_fault", client_id=client_id, error=detail)
                found = await self._settle_unknown(client_id, symbol, valid_until_ms, sent_at)
                raise ExecutionFaultError(client_id, detail, found) from exc
            self._reached()
            self._adopt(client_id, order)
            return Fill(client_id, order, attempt + 1 - first_attempt, order.filled)
        raise ExecutionFailedError(
            f"intent {intent_seq} leg {leg}: {attempt + 1 - first_attempt} attempts failed"
        )

    async def _deadline(self) -> int | None:
        if self.order_ttl_s is None:
            return None
        return await self.broker.request_deadline_ms(self.order_ttl_s)

    # -- orders of unknown fate -----------------------------------------------------------------

    async def _settle_unknown(
        self, client_id: str, symbol: str, valid_until_ms: int | None, since: float
    ) -> VenueOrder | None:
        """Look the id up until the venue shows it, proves it dead, or (no time-to-live) has
        not shown it for ``unknown_window_s`` since ``since`` (monotonic). Returns the order
        if it is on the venue; raises ``ExecutionFailedError`` (the order stays ``unknown``,
        blocking its venue) if the venue cannot be asked."""
        window_ends = since + self.unknown_window_s
        while True:
            try:
                lookup = await self._lookup(client_id, symbol)
            except ccxt.NetworkError as exc:
                raise ExecutionFailedError(
                    f"{client_id}: fate unknown, venue unreachable for lookups ({exc!r})"
                ) from exc
            if lookup.orders:
                order = lookup.orders[0]
                self._adopt(client_id, order)
                return order
            if self._proven_absent(valid_until_ms, lookup):
                self._settle(client_id, "not_sent")
                self._event(
                    client_id,
                    "order_not_on_venue",
                    proof="time-to-live passed",
                    valid_until_ms=valid_until_ms,
                    venue_time_ms=lookup.venue_time_ms,
                )
                return None
            provable = valid_until_ms is not None and lookup.venue_time_ms is not None
            if not provable and self._monotonic() >= window_ends:
                self._settle(client_id, ABANDONED)
                self._event(client_id, "order_abandoned", window_s=self.unknown_window_s)
                log.warning("order_abandoned", client_id=client_id, window_s=self.unknown_window_s)
                return None
            await self._sleep(self.lookup_poll_s)

    @staticmethod
    def _proven_absent(valid_until_ms: int | None, lookup: Lookup) -> bool:
        # Requests are handled in arrival order: a lookup answered after the time-to-live
        # that does not see the order means it never arrived in time, and the venue refuses
        # it if it arrives now.
        return (
            valid_until_ms is not None
            and lookup.venue_time_ms is not None
            and lookup.venue_time_ms > valid_until_ms
            and not lookup.orders
        )

    async def _settle_in_doubt(self) -> None:
        """Nothing new goes out while an earlier request of this venue may still land."""
        for record in self.journal.unresolved_orders():
            if record.venue != self.broker.venue or record.status not in IN_DOUBT_STATUSES:
                continue
            await self._settle_unknown(
                record.client_id, record.symbol, record.valid_until_ms, self._monotonic()
            )

    async def watch_abandoned(self) -> list[OrderRecord]:
        """Look every abandoned order up once: adopt a late arrival (filled or resting), or
        close it as ``lost`` (or ``not_sent`` with a time-to-live proof) once the watch
        horizon has passed. Returns the orders whose fate changed."""
        changed = []
        now_ms = self.clock()
        for record in self.journal.unresolved_orders():
            if record.venue != self.broker.venue or record.status != ABANDONED:
                continue
            try:
                lookup = await self.broker.find(record.client_id, record.symbol)
            except ccxt.NetworkError:
                continue  # asked again next time
            if lookup.orders:
                order = lookup.orders[0]
                self._adopt(record.client_id, order)
                self._event(record.client_id, "late_order_adopted", filled=order.filled)
                log.error(
                    "late_order_adopted",
                    client_id=record.client_id,
                    status=order.status,
                    filled=order.filled,
                )
            elif self._proven_absent(record.valid_until_ms, lookup):
                self._settle(record.client_id, "not_sent")
            elif now_ms - record.created_ms > self.watch_horizon_s * 1000:
                self._settle(record.client_id, "lost")
                self._event(record.client_id, "order_lost", horizon_s=self.watch_horizon_s)
            else:
                continue
            updated = self.journal.order(record.client_id)
            assert updated is not None
            changed.append(updated)
        return changed

    async def reconcile(self) -> list[OrderRecord]:
        """Settle every journaled order of this venue whose fate is in doubt (e.g. after a
        crash between 'journaled' and 'acked') before anything new is sent; look abandoned
        ones up once. Returns every order looked at, as now journaled."""
        mine = [r for r in self.journal.unresolved_orders() if r.venue == self.broker.venue]
        await self.watch_abandoned()
        for record in mine:
            if record.status != ABANDONED:
                # The request may have left just before the crash: a full window from now.
                await self._settle_unknown(
                    record.client_id, record.symbol, record.valid_until_ms, self._monotonic()
                )
        resolved = []
        for record in mine:
            updated = self.journal.order(record.client_id)
            assert updated is not None
            resolved.append(updated)
            log.info("order_reconciled", client_id=record.client_id, status=updated.status)
        return resolved

    # -- limit orders ---------------------------------------------------------------------------

    async def _await_fill(self, client_id: str, symbol: str, timeout_s: float) -> VenueOrder:
        """Poll the order until it is no longer open or the timeout passes."""
        deadline = self._monotonic() + timeout_s
        order: VenueOrder | None = None
        while True:
            found = (await self._lookup(client_id, symbol)).orders
            if found:
                order = found[0]
                if order.status != "open" or self._monotonic() >= deadline:
                    break
            elif self._monotonic() >= deadline:
                break
            await self._sleep(min(self.limit_poll_s, max(0.0, deadline - self._monotonic())))
        if order is None:
            raise ExecutionFailedError(f"{client_id}: acknowledged but no longer found")
        if order.status != "open":
            self._adopt(client_id, order)
        return order

    async def _cancel(self, client_id: str, order: VenueOrder) -> VenueOrder:
        """Cancel and return the order's final state (a fill may have won the race). A
        cancel lost on the network, or still pending on the venue, is asked again."""
        deadline = self._monotonic() + self.lookup_timeout_s
        final = order
        attempt = 0
        while True:
            try:
                final = await self.broker.cancel(order.venue_order_id, order.symbol)
            except ccxt.InvalidOrder:
                # Not found, or no longer open (Deribit 11044 not_open_order): it filled or
                # was cancelled meanwhile; the lookup below says which.
                pass
            except (ccxt.NetworkError, ccxt.CancelPending) as exc:
                log.warning("cancel_retry", client_id=client_id, error=type(exc).__name__)
            found = (await self._lookup(client_id, order.symbol)).orders
            if found:
                final = found[0]
            elif final.status == "open":
                raise ExecutionFailedError(f"{client_id}: vanished while cancelling")
            if final.status != "open":
                break
            if self._monotonic() >= deadline:
                raise ExecutionFailedError(f"{client_id}: still open after cancelling")
            await self._sleep(self._backoff(attempt))
            attempt += 1
        self._adopt(client_id, final)
        return final

    # -- internals ------------------------------------------------------------------------------

    async def _lookup(self, client_id: str, symbol: str) -> Lookup:
        """Ask the venue, retrying network trouble for ``lookup_timeout_s``."""
        lookup = await retry(
            lambda: self.broker.find(client_id, symbol),
            retry_on=ccxt.NetworkError,
            give_up_s=self.lookup_timeout_s,
            pacing=self._pacing,
            rng=self._rng,
            sleep=self._sleep,
            monotonic=self._monotonic,
            on_failure=lambda _attempt, _error: self._unreachable(),
        )
        self._reached()
        return lookup

    def _adopt(self, client_id: str, order: VenueOrder) -> None:
        self.journal.update_order(
            client_id,
            now_ms=self.clock(),
            status=order.status,
            venue_order_id=order.venue_order_id,
            filled_qty=order.filled,
            average_price=order.average_price,
            fee=order.fee,
            fee_currency=order.fee_currency,
        )
        kind = "order_filled" if order.status == "filled" else f"order_{order.status}"
        self._event(
            client_id,
            kind,
            venue_order_id=order.venue_order_id,
            filled=order.filled,
            average_price=order.average_price,
            fee=order.fee,
            fee_currency=order.fee_currency,
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
        return self._pacing.delay_s(attempt, self._rng)
