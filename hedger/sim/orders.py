"""Orders and trades, with Deribit's field names on the wire (``to_deribit``), the checks
a request passes before it becomes an order, and the store that indexes and retains them."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from hedger.sim.book import price_to_ticks
from hedger.sim.errors import InvalidAmountError, InvalidArgumentsError, InvalidPriceError
from hedger.sim.instruments import SimInstrument

MAX_LABEL = 64

K = TypeVar("K")
V = TypeVar("V")


class OrderState(StrEnum):
    OPEN = "open"
    FILLED = "filled"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


TIME_IN_FORCE = ("good_til_cancelled", "immediate_or_cancel", "fill_or_kill")


@dataclass(slots=True)
class Order:
    """A live order: mutated by fills and cancels, identified by ``order_id`` ("ORD-n")."""

    order_id: str
    account: str
    instrument: int
    instrument_name: str
    direction: str  # "buy" | "sell"
    order_type: str  # "limit" | "market"
    price: float | None  # None for market orders
    price_ticks: int | None
    amount_lots: int
    lot: float
    time_in_force: str
    post_only: bool
    reduce_only: bool
    label: str
    inverse_average: bool  # inverse futures average harmonically (USD-weighted), like positions
    creation_timestamp: int
    state: OrderState = OrderState.OPEN
    filled_lots: int = 0
    last_update_timestamp: int = 0
    commission: float = 0.0
    cancel_reason: str | None = None
    fill_value_sum: float = 0.0  # sum of amount * price
    fill_inverse_sum: float = 0.0  # sum of amount / price

    @property
    def is_buy(self) -> bool:
        return self.direction == "buy"

    @property
    def amount(self) -> float:
        return round(self.amount_lots * self.lot, 10)

    @property
    def filled_amount(self) -> float:
        return round(self.filled_lots * self.lot, 10)

    @property
    def remaining_lots(self) -> int:
        return self.amount_lots - self.filled_lots

    @property
    def average_price(self) -> float:
        if not self.filled_lots:
            return 0.0
        if self.inverse_average:
            return self.filled_amount / self.fill_inverse_sum
        return self.fill_value_sum / self.filled_amount

    def record_fill(self, lots: int, price: float, fee: float, now_ms: int) -> None:
        amount = lots * self.lot
        self.filled_lots += lots
        self.fill_value_sum += amount * price
        self.fill_inverse_sum += amount / price
        self.commission += fee
        self.last_update_timestamp = now_ms
        if not self.remaining_lots:
            self.state = OrderState.FILLED

    def close(self, state: OrderState, now_ms: int, reason: str | None = None) -> None:
        self.state = state
        self.cancel_reason = reason
        self.last_update_timestamp = now_ms

    def to_deribit(self) -> dict[str, object]:
        out: dict[str, object] = {
            "order_id": self.order_id,
            "instrument_name": self.instrument_name,
            "direction": self.direction,
            "order_type": self.order_type,
            "order_state": str(self.state),
            "amount": self.amount,
            "filled_amount": self.filled_amount,
            "average_price": self.average_price,
            "price": "market_price" if self.price is None else self.price,
            "label": self.label,
            "time_in_force": self.time_in_force,
            "post_only": self.post_only,
            "reduce_only": self.reduce_only,
            "creation_timestamp": self.creation_timestamp,
            "last_update_timestamp": self.last_update_timestamp,
            "commission": self.commission,
            "api": True,
            "replaced": False,
            "is_liquidation": False,
        }
        if self.cancel_reason is not None:
            out["cancel_reason"] = self.cancel_reason
        return out


@dataclass(slots=True, frozen=True)
class Trade:
    trade_id: str  # "T-n"
    trade_seq: int
    order_id: str
    account: str
    instrument: int
    instrument_name: str
    direction: str
    amount: float
    price: float
    timestamp: int
    liquidity: str  # "M" maker | "T" taker
    fee: float
    fee_currency: str
    order_type: str
    label: str
    state: str  # the order's state right after this trade
    index_price: float
    mark_price: float
    iv: float | None = None  # percent, options only
    post_only: bool = False
    reduce_only: bool = False

    def to_deribit(self) -> dict[str, object]:
        out: dict[str, object] = {
            "trade_id": self.trade_id,
            "trade_seq": self.trade_seq,
            "order_id": self.order_id,
            "instrument_name": self.instrument_name,
            "direction": self.direction,
            "amount": self.amount,
            "price": self.price,
            "timestamp": self.timestamp,
            "liquidity": self.liquidity,
            "fee": self.fee,
            "fee_currency": self.fee_currency,
            "order_type": self.order_type,
            "label": self.label,
            "state": self.state,
            "index_price": self.index_price,
            "mark_price": self.mark_price,
            "tick_direction": 0,
            "post_only": self.post_only,
            "reduce_only": self.reduce_only,
        }
        if self.iv is not None:
            out["iv"] = self.iv
        return out


def check_arguments(direction: str, order_type: str, tif: str, post_only: bool, label: str) -> None:
    """Reject malformed requests (11029), before anything about the market is looked at."""
    if direction not in ("buy", "sell"):
        raise InvalidArgumentsError(f"direction must be buy or sell, got {direction!r}")
    if order_type not in ("limit", "market"):
        raise InvalidArgumentsError(f"order type must be limit or market, got {order_type!r}")
    if tif not in TIME_IN_FORCE:
        raise InvalidArgumentsError(f"time_in_force must be one of {TIME_IN_FORCE}, got {tif!r}")
    if post_only and (order_type != "limit" or tif != TIME_IN_FORCE[0]):
        raise InvalidArgumentsError("post_only needs a good_til_cancelled limit order")
    if len(label) > MAX_LABEL:
        raise InvalidArgumentsError(f"label longer than {MAX_LABEL} characters")


def amount_lots(amount: float, inst: SimInstrument) -> int:
    """The amount in lots of ``min_trade_amount``; 10021 unless a positive multiple."""
    lot = inst.min_trade_amount
    n = round(amount / lot) if math.isfinite(amount) else 0
    if not amount > 0 or n < 1 or abs(amount / lot - n) > 1e-6:
        raise InvalidAmountError(
            f"{inst.instrument_name}: amount {amount} must be a positive multiple of {lot}",
            amount=amount,
            min_trade_amount=lot,
        )
    return n


def price_ticks(price: float | None, inst: SimInstrument) -> int:
    """The price in ticks; 10023 unless a positive multiple of ``tick_size``."""
    n = None if price is None or not price > 0 else price_to_ticks(price, inst.tick_size)
    if n is None:
        raise InvalidPriceError(
            f"{inst.instrument_name}: price {price} must be a positive multiple of "
            f"{inst.tick_size}",
            price=price,
            tick_size=inst.tick_size,
        )
    return n


@dataclass(slots=True, frozen=True)
class Retention:
    """How much closed history the venue remembers. Open orders are always kept; closed
    orders (and their trades) go oldest-closed first once more than ``max_orders`` orders are
    kept, or once closed longer than ``max_age_ms`` ago. A dropped order is then "not found"
    (10004), by id and by label, and its trades are gone from the trade history."""

    max_orders: int = 100_000
    """a long paper session's worth: a hedger sending an order a minute keeps ~70 days."""
    max_age_ms: int | None = None

    def __post_init__(self) -> None:
        if self.max_orders < 1:
            raise ValueError(f"max_orders must be >= 1, got {self.max_orders}")
        if self.max_age_ms is not None and self.max_age_ms <= 0:
            raise ValueError(f"max_age_ms must be > 0 (or None), got {self.max_age_ms}")


@dataclass(slots=True, frozen=True)
class StoreCounts:
    orders: int
    open_orders: int
    labels: int  # (account, label) keys indexed
    trades: int


class OrderStore:
    """Orders and trades by id, indexed for the venue's lookups (by label, open orders by
    account and instrument, trades by account and order), within a ``Retention`` bound.

    The store does not watch orders change: the engine calls ``add`` for a new order and
    ``closed`` when one leaves the open state, then ``prune`` when a request is done."""

    def __init__(self, retention: Retention | None = None) -> None:
        self.retention = retention or Retention()
        self._orders: dict[str, Order] = {}  # id order: ids are counters, added when placed
        self._open: dict[str, Order] = {}  # id order too: resting orders fill oldest first
        self._open_by_account: dict[str, dict[str, Order]] = {}
        self._open_by_instrument: dict[tuple[str, int], dict[str, Order]] = {}
        # Most labels (client order ids) and most orders' trades are one of a kind: a bare
        # value instead of a one-item container saves memory and garbage-collector time.
        self._by_label: dict[tuple[str, str], Order | dict[str, Order]] = {}
        self._trades_by_order: dict[str, Trade | list[Trade]] = {}
        self._trades_by_account: dict[str, dict[str, Trade]] = {}
        self._closed: deque[Order] = deque()  # in the order they closed

    @property
    def orders(self) -> Mapping[str, Order]:
        """Every order kept, by id, oldest first."""
        return self._orders

    # -- writes ---------------------------------------------------------------------------

    def add(self, order: Order) -> None:
        """A new order, open (resting) or already closed (filled, IOC/FOK remainder)."""
        oid, key = order.order_id, (order.account, order.label)
        self._orders[oid] = order
        same_label = self._by_label.setdefault(key, order)
        if isinstance(same_label, dict):
            same_label[oid] = order
        elif same_label is not order:
            self._by_label[key] = {same_label.order_id: same_label, oid: order}
        if order.state is OrderState.OPEN:
            self._open[oid] = order
            _put(self._open_by_account, order.account, oid, order)
            _put(self._open_by_instrument, (order.account, order.instrument), oid, order)
        else:
            self._closed.append(order)

    def closed(self, order: Order) -> None:
        """``order`` has just left the open state (filled, cancelled, expired)."""
        oid = order.order_id
        del self._open[oid]
        _pop(self._open_by_account, order.account, oid)
        _pop(self._open_by_instrument, (order.account, order.instrument), oid)
        self._closed.append(order)

    def add_trade(self, trade: Trade) -> None:
        _put(self._trades_by_account, trade.account, trade.trade_id, trade)
        same_order = self._trades_by_order.setdefault(trade.order_id, trade)
        if isinstance(same_order, list):
            same_order.append(trade)
        elif same_order is not trade:
            self._trades_by_order[trade.order_id] = [same_order, trade]

    def prune(self, now_ms: int) -> None:
        """Drop the oldest closed orders, and their trades, beyond the retention bound (an
        order's ``last_update_timestamp`` is when it closed: nothing changes it after)."""
        keep, closed = self.retention, self._closed
        oldest_ms = None if keep.max_age_ms is None else now_ms - keep.max_age_ms
        while closed and (
            len(self._orders) > keep.max_orders
            or (oldest_ms is not None and closed[0].last_update_timestamp < oldest_ms)
        ):
            self._drop(closed.popleft())

    def _drop(self, order: Order) -> None:
        oid, key = order.order_id, (order.account, order.label)
        del self._orders[oid]
        same_label = self._by_label[key]
        if isinstance(same_label, dict) and len(same_label) > 1:
            del same_label[oid]
        else:
            del self._by_label[key]
        for trade in _many(self._trades_by_order.pop(oid, None)):
            _pop(self._trades_by_account, order.account, trade.trade_id)

    # -- reads ----------------------------------------------------------------------------

    def get(self, order_id: str) -> Order | None:
        return self._orders.get(order_id)

    def by_label(self, account: str, label: str) -> list[Order]:
        same_label = self._by_label.get((account, label))
        return list(same_label.values()) if isinstance(same_label, dict) else _many(same_label)

    def open_orders(self) -> list[Order]:
        """Every open order, oldest first (a copy: filling them closes some)."""
        return list(self._open.values())

    def open_of(self, account: str, instrument: int | None = None) -> list[Order]:
        if instrument is None:
            return list(self._open_by_account.get(account, {}).values())
        return list(self._open_by_instrument.get((account, instrument), {}).values())

    def trades_of(self, account: str) -> Iterator[Trade]:
        """The account's trades kept, oldest first."""
        return iter(self._trades_by_account.get(account, {}).values())

    def trades_of_order(self, order_id: str) -> list[Trade]:
        return _many(self._trades_by_order.get(order_id))

    def counts(self) -> StoreCounts:
        return StoreCounts(
            orders=len(self._orders),
            open_orders=len(self._open),
            labels=len(self._by_label),
            trades=sum(len(t) for t in self._trades_by_account.values()),
        )


def _many(held: V | list[V] | None) -> list[V]:
    if held is None:
        return []
    return list(held) if isinstance(held, list) else [held]


def _put(index: dict[K, dict[str, V]], key: K, item_id: str, item: V) -> None:
    index.setdefault(key, {})[item_id] = item


def _pop(index: dict[K, dict[str, V]], key: K, item_id: str) -> None:
    """Remove one item from a bucket; an emptied bucket goes too, so keys stay bounded."""
    bucket = index[key]
    del bucket[item_id]
    if not bucket:
        del index[key]
