"""The matching engine: accounts' orders against the market's synthetic books.

Taker orders walk the book level by level at each level's price (market orders through all
levels, limit orders up to their price); what they take is gone from that level until the
market's next book refresh (``Market.book_version``). Unfilled remainders of market, IOC and
FOK orders are cancelled; a GTC limit rests. ``advance(now_ms)``, called after every
``Market.step``, settles expired instruments, accrues perp funding and fills resting orders
that the new book crosses — at the order's own price, as maker, up to the crossing depth.

Accounts trade against the simulated market only, never with each other, and their orders do
not show in the synthetic book. Everything is deterministic: ids are counters ("ORD-n",
"T-n"), resting orders fill in id order, and time comes in as ``now_ms``. Orders and trades
live in an ``OrderStore``: indexed for lookups, and bounded by a ``Retention`` (closed
history beyond it is forgotten, as a real venue forgets it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from hedger.sim import risk, tickers
from hedger.sim.accounts import Account, trade_fee
from hedger.sim.book import tick_price
from hedger.sim.errors import (
    BookClosedError,
    InvalidAmountError,
    InvalidArgumentsError,
    InvalidInstrumentError,
    NotEnoughFundsError,
    NotOpenOrderError,
    OrderNotFoundError,
    PostOnlyRejectError,
)
from hedger.sim.instruments import SimInstrument
from hedger.sim.market import Market
from hedger.sim.orders import (
    TIME_IN_FORCE,
    Order,
    OrderState,
    OrderStore,
    Retention,
    Trade,
    amount_lots,
    check_arguments,
    price_ticks,
)
from hedger.sim.risk import AccountSummary
from hedger.sim.settlement import accrue_funding, settle_expired

GTC, IOC, FOK = TIME_IN_FORCE


@dataclass(slots=True, frozen=True)
class Execution:
    """The result of ``place``: the order (live object) and the trades it made at once."""

    order: Order
    trades: tuple[Trade, ...]


@dataclass(slots=True, frozen=True)
class Events:
    """What ``advance`` changed, for the server's ``user.*`` pushes."""

    trades: tuple[Trade, ...]
    orders: tuple[Order, ...]  # filled, partly filled or cancelled at expiry
    accounts: frozenset[str]  # whose balances moved (fills, funding, settlement)


class MatchingEngine:
    def __init__(self, market: Market, retention: Retention | None = None) -> None:
        self.market = market
        self.margin = market.scenario.margin
        self.option_fee_cap = market.scenario.fees.option_fee_cap
        self.accounts: dict[str, Account] = {}
        self.store = OrderStore(retention)
        self._order_seq = 0
        self._trade_seq = 0
        self._taken_bid = np.zeros_like(market.quotes.bid_lots)
        self._taken_ask = np.zeros_like(market.quotes.ask_lots)
        self._book_version = market.book_version
        self._funded_ms = market.now_ms

    @property
    def orders(self) -> Mapping[str, Order]:
        """The orders kept (see ``Retention``), by id, oldest first."""
        return self.store.orders

    # -- accounts -------------------------------------------------------------------------

    def open_account(self, name: str, balances: Mapping[str, float]) -> Account:
        if name in self.accounts:
            raise ValueError(f"account {name!r} exists already")
        self.accounts[name] = Account(name, dict(balances))
        return self.accounts[name]

    def account_summary(self, account: str, currency: str) -> AccountSummary:
        acct = self._account(account)
        return risk.summary(self.market, self.margin, acct, self.store.open_of(account), currency)

    def positions(
        self, account: str, *, currency: str | None = None, kind: str | None = None
    ) -> list[dict[str, object]]:
        acct, u = self._account(account), self.market.universe
        return [
            risk.position_row(self.market, self.margin, i, pos)
            for i, pos in acct.positions.items()
            if _matches(u.instruments[i], currency) and kind in (None, u.instruments[i].kind)
        ]

    # -- orders ---------------------------------------------------------------------------

    def place(
        self,
        account: str,
        instrument_name: str,
        direction: str,
        amount: float,
        *,
        now_ms: int,
        order_type: str = "limit",
        price: float | None = None,
        time_in_force: str = GTC,
        post_only: bool = False,
        reject_post_only: bool = True,
        reduce_only: bool = False,
        label: str = "",
    ) -> Execution:
        """``private/buy`` / ``private/sell``. Raises a ``SimError`` (nothing recorded) when
        the venue would reject the request."""
        acct = self._account(account)
        i = self._instrument(instrument_name)
        inst, m = self.market.universe.instruments[i], self.market
        check_arguments(direction, order_type, time_in_force, post_only, label)
        if not m.active[i]:
            raise BookClosedError(f"{instrument_name} expired", instrument_name=instrument_name)
        lots = amount_lots(amount, inst)
        is_buy = direction == "buy"
        ticks = None if order_type == "market" else price_ticks(price, inst)
        if reduce_only:
            lots = min(lots, self._reducible_lots(acct, i, is_buy, inst))
        self._sync_book()
        if post_only:
            assert ticks is not None
            ticks = self._post_only_ticks(i, is_buy, ticks, reject_post_only, inst)
        takes = self._walk(i, is_buy, lots, ticks)
        taken = sum(n for _, n in takes)
        fok_fails = time_in_force == FOK and taken < lots
        rests = order_type == "limit" and time_in_force == GTC
        if not fok_fails:
            self._check_funds(acct, i, is_buy, lots if rests else taken, ticks, takes)
        self._order_seq += 1
        order = Order(
            order_id=f"ORD-{self._order_seq}",
            account=account,
            instrument=i,
            instrument_name=instrument_name,
            direction=direction,
            order_type=order_type,
            price=None if ticks is None else tick_price(ticks, inst.tick_size),
            price_ticks=ticks,
            amount_lots=lots,
            lot=inst.min_trade_amount,
            time_in_force=time_in_force,
            post_only=post_only,
            reduce_only=reduce_only,
            label=label,
            inverse_average=inst.inverse and not inst.is_option,
            creation_timestamp=now_ms,
            last_update_timestamp=now_ms,
        )
        trades: list[Trade] = []
        if not fok_fails:
            trades = [self._fill(order, k, n, maker=False, now_ms=now_ms) for k, n in takes]
        if order.remaining_lots and not rests:
            order.close(
                OrderState.CANCELLED, now_ms, "fill_or_kill" if fok_fails else "immediate_or_cancel"
            )
        self.store.add(order)
        self.store.prune(now_ms)
        return Execution(order, tuple(trades))

    def cancel(self, account: str, order_id: str, now_ms: int) -> Order:
        order = self.get_order_state(account, order_id)
        if order.state is not OrderState.OPEN:
            raise NotOpenOrderError(f"{order_id} is {order.state}", order_id=order_id)
        order.close(OrderState.CANCELLED, now_ms, "user_request")
        self.store.closed(order)
        self.store.prune(now_ms)
        return order

    def cancel_all(
        self,
        account: str,
        now_ms: int,
        *,
        instrument_name: str | None = None,
        currency: str | None = None,
    ) -> list[Order]:
        chosen = self.open_orders(account, instrument_name=instrument_name, currency=currency)
        return [self.cancel(account, o.order_id, now_ms) for o in chosen]

    def get_order_state(self, account: str, order_id: str) -> Order:
        order = self.store.get(order_id)
        if order is None or order.account != account:
            raise OrderNotFoundError(f"no order {order_id!r} for this account", order_id=order_id)
        return order

    def orders_by_label(self, account: str, label: str) -> list[Order]:
        return self.store.by_label(account, label)

    def open_orders(
        self, account: str, *, instrument_name: str | None = None, currency: str | None = None
    ) -> list[Order]:
        if instrument_name is None:
            orders = self.store.open_of(account)
        else:
            i = self.market.universe.by_name.get(instrument_name)
            orders = [] if i is None else self.store.open_of(account, i)
        u = self.market.universe
        return [o for o in orders if _matches(u.instruments[o.instrument], currency)]

    def user_trades(
        self,
        account: str,
        *,
        instrument_name: str | None = None,
        currency: str | None = None,
        since_ms: int | None = None,
    ) -> list[Trade]:
        u = self.market.universe
        return [
            t
            for t in self.store.trades_of(account)
            if instrument_name in (None, t.instrument_name)
            and _matches(u.instruments[t.instrument], currency)
            and (since_ms is None or t.timestamp >= since_ms)
        ]

    def order_trades(self, account: str, order_id: str) -> list[Trade]:
        """The trades of one of the account's orders, oldest first."""
        return self.store.trades_of_order(self.get_order_state(account, order_id).order_id)

    def order_book(self, i: int, depth: int | None = None) -> dict[str, object]:
        """The book as takers see it now: synthetic depth minus what fills took this step."""
        self._sync_book()
        q = self.market.quotes
        bids, asks = q.bid_lots[i] - self._taken_bid[i], q.ask_lots[i] - self._taken_ask[i]
        return tickers.order_book(self.market, i, depth, bids, asks)

    # -- time -----------------------------------------------------------------------------

    def advance(self, now_ms: int) -> Events:
        """After ``Market.step``: settle expiries, accrue funding, fill crossed resting orders."""
        touched: set[str] = set()
        expiring = {
            o.order_id: o for o in self.store.open_orders() if not self.market.active[o.instrument]
        }
        changed = settle_expired(self.market, self.accounts.values(), expiring, now_ms, touched)
        for order in changed:
            self.store.closed(order)
        accrue_funding(self.market, self.accounts.values(), self._funded_ms, now_ms, touched)
        self._funded_ms = max(self._funded_ms, now_ms)
        trades = self.match_resting(now_ms)
        seen = {o.order_id for o in changed}
        for t in trades:
            touched.add(t.account)
            if t.order_id not in seen:
                seen.add(t.order_id)
                changed.append(self.orders[t.order_id])
        self.store.prune(now_ms)  # after the lookups above: a filled order may be the oldest
        return Events(tuple(trades), tuple(changed), frozenset(touched))

    def match_resting(self, now_ms: int) -> list[Trade]:
        """Fill resting orders the current book crosses, oldest first, at their own price."""
        self._sync_book()
        trades: list[Trade] = []
        for order in self.store.open_orders():
            if not self.market.active[order.instrument]:
                continue
            takes = self._walk(
                order.instrument, order.is_buy, order.remaining_lots, order.price_ticks
            )
            trades += [self._fill(order, k, n, maker=True, now_ms=now_ms) for k, n in takes]
            if order.state is OrderState.FILLED:
                self.store.closed(order)
        return trades

    # -- internals ------------------------------------------------------------------------

    def _account(self, name: str) -> Account:
        try:
            return self.accounts[name]
        except KeyError:
            raise InvalidArgumentsError(f"unknown account {name!r}") from None

    def _instrument(self, name: str) -> int:
        i = self.market.universe.by_name.get(name)
        if i is None:
            raise InvalidInstrumentError(f"no instrument {name!r}", instrument_name=name)
        return i

    def _sync_book(self) -> None:
        if self._book_version != self.market.book_version:
            self._taken_bid[...] = 0
            self._taken_ask[...] = 0
            self._book_version = self.market.book_version

    def _walk(self, i: int, is_buy: bool, lots: int, limit: int | None) -> list[tuple[int, int]]:
        """Levels and lots a taker of ``lots`` would get, best level first, within ``limit``."""
        q = self.market.quotes
        px = q.ask_ticks[i] if is_buy else q.bid_ticks[i]
        avail = q.ask_lots[i] - self._taken_ask[i] if is_buy else q.bid_lots[i] - self._taken_bid[i]
        out: list[tuple[int, int]] = []
        for k in range(q.levels):
            if lots <= 0:
                break
            if limit is not None and (px[k] > limit if is_buy else px[k] < limit):
                break
            n = min(lots, int(avail[k]))
            if n > 0:
                out.append((k, n))
                lots -= n
        return out

    def _fill(self, order: Order, level: int, lots: int, *, maker: bool, now_ms: int) -> Trade:
        m, i = self.market, order.instrument
        inst = m.universe.instruments[i]
        q = m.quotes
        taken = self._taken_ask if order.is_buy else self._taken_bid
        taken[i, level] += lots
        level_px = float(q.ask_price[i, level] if order.is_buy else q.bid_price[i, level])
        price = order.price if maker and order.price is not None else level_px
        amount = round(lots * inst.min_trade_amount, 10)
        index = float(m.index_price[i])
        fee, fee_ccy = trade_fee(inst, amount, price, index, maker, self.option_fee_cap)
        signed = amount if order.is_buy else -amount
        self.accounts[order.account].apply_trade(i, inst, signed, price, fee, fee_ccy)
        order.record_fill(lots, price, fee, now_ms)
        m.record_trade(i, price, amount)
        self._trade_seq += 1
        row = int(m.option_row[i])
        trade = Trade(
            trade_id=f"T-{self._trade_seq}",
            trade_seq=self._trade_seq,
            order_id=order.order_id,
            account=order.account,
            instrument=i,
            instrument_name=inst.instrument_name,
            direction=order.direction,
            amount=amount,
            price=price,
            timestamp=now_ms,
            liquidity="M" if maker else "T",
            fee=fee,
            fee_currency=fee_ccy,
            order_type=order.order_type,
            label=order.label,
            state=str(order.state),
            index_price=index,
            mark_price=float(m.mark_price[i]),
            iv=float(m.mark_iv[row]) * 100.0 if row >= 0 else None,
            post_only=order.post_only,
            reduce_only=order.reduce_only,
        )
        self.store.add_trade(trade)
        return trade

    def _reducible_lots(self, acct: Account, i: int, is_buy: bool, inst: SimInstrument) -> int:
        if inst.is_spot:
            raise InvalidArgumentsError("reduce_only is not available for spot")
        lots = math.floor(
            risk.reducible(acct.positions.get(i), is_buy) / inst.min_trade_amount + 1e-9
        )
        if lots == 0:
            raise InvalidAmountError("reduce_only order would not reduce the position")
        return lots

    def _post_only_ticks(
        self, i: int, is_buy: bool, ticks: int, reject: bool, inst: SimInstrument
    ) -> int:
        """A post-only price, or PostOnlyRejectError if it would take liquidity (Deribit moves it
        just inside the book instead when ``reject_post_only`` is false)."""
        best = self._walk(i, is_buy, 1, None)  # a buy would take the best ask with size left
        if not best:
            return ticks
        q, k = self.market.quotes, best[0][0]
        opposite = int(q.ask_ticks[i, k] if is_buy else q.bid_ticks[i, k])
        crosses = ticks >= opposite if is_buy else ticks <= opposite
        if not crosses:
            return ticks
        if reject:
            raise PostOnlyRejectError(
                f"{inst.instrument_name}: {ticks * inst.tick_size:g} would take liquidity",
                instrument_name=inst.instrument_name,
            )
        moved = opposite - 1 if is_buy else opposite + 1
        if moved <= 0:
            raise PostOnlyRejectError(f"{inst.instrument_name}: no price below the best ask")
        return moved

    def _check_funds(
        self,
        acct: Account,
        i: int,
        is_buy: bool,
        lots: int,
        ticks: int | None,
        takes: list[tuple[int, int]],
    ) -> None:
        m = self.market
        inst = m.universe.instruments[i]
        q = m.quotes
        if ticks is not None:
            worst = tick_price(ticks, inst.tick_size)
        elif takes:
            k = takes[-1][0]
            worst = float(q.ask_price[i, k] if is_buy else q.bid_price[i, k])
        else:
            worst = float(m.mark_price[i])
        amount = lots * inst.min_trade_amount
        ccy, need = risk.reserve(m, self.margin, acct, i, is_buy, amount, worst)
        if need <= 0.0:
            return
        taken = sum(n for _, n in takes) * inst.min_trade_amount
        fee, fee_ccy = trade_fee(
            inst, taken, worst, float(m.index_price[i]), False, self.option_fee_cap
        )
        need += fee if fee_ccy == ccy else 0.0
        available = risk.summary(
            m, self.margin, acct, self.store.open_of(acct.name), ccy
        ).available_funds
        if need > available + 1e-12:
            raise NotEnoughFundsError(
                f"{inst.instrument_name}: needs {need:.8g} {ccy}, {available:.8g} available",
                currency=ccy,
                required=need,
                available=available,
            )


def _matches(inst: SimInstrument, currency: str | None) -> bool:
    return currency is None or currency in (inst.base_currency, inst.settlement_currency)
