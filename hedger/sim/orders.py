"""Orders and trades, with Deribit's field names on the wire (``to_deribit``), and the checks
a request passes before it becomes an order."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from hedger.sim.book import price_to_ticks
from hedger.sim.errors import InvalidAmountError, InvalidArgumentsError, InvalidPriceError
from hedger.sim.instruments import SimInstrument

MAX_LABEL = 64


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
