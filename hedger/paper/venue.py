"""The paper venue's state and its Deribit JSON-RPC methods, independent of the transport.

``PaperExchange.call(method, params, account)`` serves one request the same way over HTTP
and websocket. Time comes from the caller (the server's clock), so tests can drive it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from hedger.core.margin import estimated_liquidation_price
from hedger.core.units import MINUTE_MS
from hedger.paper.auth import ApiKey
from hedger.paper.faults import Faults
from hedger.paper.history import History
from hedger.sim.accounts import settlement_currency
from hedger.sim.errors import SimError
from hedger.sim.market import Market
from hedger.sim.matching import Events, Execution, MatchingEngine
from hedger.sim.orders import Retention
from hedger.sim.scenario import scenario as named_scenario

DEFAULT_BALANCES = {"BTC": 10.0, "ETH": 200.0, "USDC": 1_000_000.0}
TIME_IN_FORCE = ("good_til_cancelled", "immediate_or_cancel", "fill_or_kill")


class RpcError(Exception):
    """A JSON-RPC error with Deribit's code, so ccxt raises the class the real venue causes."""

    def __init__(self, code: int, message: str, reason: str = "", http_status: int = 400) -> None:
        super().__init__(f"{code} {message}: {reason}")
        self.code = code
        self.message = message
        self.reason = reason
        self.http_status = http_status

    def to_deribit(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "data": {"reason": self.reason}}


def _from_sim(exc: SimError) -> RpcError:
    return RpcError(exc.code, exc.message, exc.reason)


@dataclass(slots=True)
class Published:
    """What one step changed, for the websocket publisher."""

    instruments: list[int]
    events: Events


def _float(params: Mapping[str, Any], name: str, required: bool = True) -> float | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise RpcError(-32602, "Invalid params", f"{name} is required")
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise RpcError(-32602, "Invalid params", f"{name}={raw!r} is not a number") from None


def _bool(params: Mapping[str, Any], name: str) -> bool:
    raw = params.get(name, False)
    return raw is True or str(raw).lower() == "true"


def _str(params: Mapping[str, Any], name: str) -> str:
    raw = params.get(name)
    if raw is None or raw == "":
        raise RpcError(-32602, "Invalid params", f"{name} is required")
    return str(raw)


class PaperExchange:
    def __init__(
        self,
        accounts: Mapping[str, ApiKey],
        *,
        scenario: str = "stress-switching",
        seed: int = 7,
        start_ms: int,
        balances: Mapping[str, Mapping[str, float]] | None = None,
        history_minutes: int = 0,
        history_step_minutes: int = 5,
        faults: Faults | None = None,
        retention: Retention | None = None,
    ) -> None:
        self.accounts = dict(accounts)
        self.faults = faults or Faults()
        spec = named_scenario(scenario)
        history_start = start_ms - history_minutes * MINUTE_MS
        self.market = Market(spec, seed=seed, start_ms=history_start)
        self.engine = MatchingEngine(self.market, retention)
        self.history = History()
        for account in self.accounts.values():
            self.engine.open_account(
                account.name, (balances or {}).get(account.name, DEFAULT_BALANCES)
            )
        self._delta_one = [
            i for i, inst in enumerate(self.market.universe.instruments) if not inst.is_option
        ]
        self._record_history()
        for t in range(history_start, start_ms, history_step_minutes * MINUTE_MS):
            self.market.step(t)
            self._record_history()
        self.market.step(start_ms)
        self._record_history()
        self._pending: list[Execution] = []
        self._methods: dict[str, Callable[[Mapping[str, Any], ApiKey | None], Any]] = {
            "public/get_time": lambda p, a: self.market.now_ms,
            "public/test": lambda p, a: {"version": "hedger-paper"},
            "public/get_currencies": self._currencies,
            "public/get_instruments": self._instruments,
            "public/ticker": self._ticker,
            "public/get_book_summary_by_currency": self._book_summaries,
            "public/get_order_book": self._order_book,
            "public/get_tradingview_chart_data": self._chart,
            "public/get_index_price": self._index_price,
            "private/get_account_summaries": self._summaries,
            "private/get_account_summary": self._summary,
            "private/get_positions": self._positions,
            "private/get_position": self._position,
            "private/buy": lambda p, a: self._place(p, a, "buy"),
            "private/sell": lambda p, a: self._place(p, a, "sell"),
            "private/cancel": self._cancel,
            "private/cancel_all": self._cancel_all,
            "private/cancel_all_by_instrument": self._cancel_all,
            "private/cancel_all_by_currency": self._cancel_all,
            "private/get_order_state": self._order_state,
            "private/get_order_state_by_label": self._orders_by_label,
            "private/get_open_orders_by_instrument": self._open_orders,
            "private/get_open_orders_by_currency": self._open_orders,
            "private/get_open_orders": self._open_orders,
            "private/get_user_trades_by_instrument": self._trades,
            "private/get_user_trades_by_instrument_and_time": self._trades,
            "private/get_user_trades_by_currency": self._trades,
            "private/get_user_trades_by_currency_and_time": self._trades,
            "private/get_user_trades_by_order": self._trades_by_order,
        }

    # -- dispatch -------------------------------------------------------------------------

    def knows(self, method: str) -> bool:
        return method in self._methods

    def call(self, method: str, params: Mapping[str, Any], account: ApiKey | None) -> Any:
        handler = self._methods.get(method)
        if handler is None:
            raise RpcError(-32601, "Method not found", method, http_status=404)
        if method.startswith("private/") and account is None:
            raise RpcError(13009, "unauthorized", "private method without authentication", 401)
        try:
            return handler(params, account)
        except SimError as exc:
            raise _from_sim(exc) from None

    # -- time -----------------------------------------------------------------------------

    def step(self, now_ms: int) -> Published:
        """Advance the market to ``now_ms``; what changed, for the publisher."""
        changed = self.market.step(now_ms)
        events = self.engine.advance(now_ms)
        self._record_history()
        return Published([int(i) for i in changed], events)

    def take_placed(self) -> list[Execution]:
        """Orders placed or cancelled by calls since the last take, for user pushes."""
        placed, self._pending = self._pending, []
        return placed

    def _record_history(self) -> None:
        now, marks = self.market.now_ms, self.market.mark_price
        names = self.market.universe.instruments
        for i in self._delta_one:
            self.history.record(names[i].instrument_name, now, float(marks[i]))
        for index_name, price in self.market.index_prices().items():
            self.history.record(index_name, now, price)

    # -- public ---------------------------------------------------------------------------

    def _index(self, name: str) -> int:
        try:
            return self.market.index_of(name)
        except KeyError:
            raise RpcError(10020, "invalid_instrument", f"no instrument {name!r}") from None

    def _currencies(
        self, params: Mapping[str, Any], account: ApiKey | None
    ) -> list[dict[str, object]]:
        return [
            {"currency": c, "currency_long": c, "withdrawal_fee": 0.0, "min_confirmations": 1}
            for c in self.market.currencies
        ]

    def _instruments(
        self, params: Mapping[str, Any], account: ApiKey | None
    ) -> list[dict[str, object]]:
        currency, kind = params.get("currency"), params.get("kind")
        expired = _bool(params, "expired")
        rows = []
        for i, inst in enumerate(self.market.universe.instruments):
            if currency not in (None, "any", inst.base_currency) or kind not in (None, inst.kind):
                continue
            if bool(self.market.active[i]) == expired:
                continue
            rows.append(self.market.instrument_row(i))
        return rows

    def _ticker(self, params: Mapping[str, Any], account: ApiKey | None) -> dict[str, object]:
        return self.market.ticker(self._index(_str(params, "instrument_name")))

    def _book_summaries(
        self, params: Mapping[str, Any], account: ApiKey | None
    ) -> list[dict[str, object]]:
        currency, kind = _str(params, "currency"), params.get("kind")
        u = self.market.universe
        return [
            self.market.book_summary(i)
            for i, inst in enumerate(u.instruments)
            if inst.base_currency == currency
            and kind in (None, inst.kind)
            and self.market.active[i]
        ]

    def _order_book(self, params: Mapping[str, Any], account: ApiKey | None) -> dict[str, object]:
        depth = _float(params, "depth", required=False)
        i = self._index(_str(params, "instrument_name"))
        return self.engine.order_book(i, None if depth is None else int(depth))

    def _chart(self, params: Mapping[str, Any], account: ApiKey | None) -> dict[str, object]:
        name = _str(params, "instrument_name")
        self._index(name)
        start, end = _float(params, "start_timestamp"), _float(params, "end_timestamp")
        assert start is not None and end is not None
        try:
            return self.history.chart(name, _str(params, "resolution"), int(start), int(end))
        except ValueError as exc:
            raise RpcError(-32602, "Invalid params", str(exc)) from None

    def _index_price(self, params: Mapping[str, Any], account: ApiKey | None) -> dict[str, object]:
        name = _str(params, "index_name")
        prices = self.market.index_prices()
        if name not in prices:
            raise RpcError(10020, "invalid_instrument", f"no index {name!r}")
        return {"index_price": prices[name], "estimated_delivery_price": prices[name]}

    # -- private: account -----------------------------------------------------------------

    @staticmethod
    def _who(account: ApiKey | None) -> str:
        assert account is not None  # call() refuses private methods without one
        return account.name

    def _summaries(self, params: Mapping[str, Any], account: ApiKey | None) -> dict[str, object]:
        who = self._who(account)
        balances = self.engine.accounts[who].balances
        return {
            "summaries": [
                self.engine.account_summary(who, c).to_deribit() for c in sorted(balances)
            ]
        }

    def _summary(self, params: Mapping[str, Any], account: ApiKey | None) -> dict[str, object]:
        return self.engine.account_summary(
            self._who(account), _str(params, "currency")
        ).to_deribit()

    def _positions(
        self, params: Mapping[str, Any], account: ApiKey | None
    ) -> list[dict[str, object]]:
        currency, who = params.get("currency"), self._who(account)
        rows = self.engine.positions(
            who,
            currency=None if currency in (None, "any") else str(currency),
            kind=params.get("kind"),
        )
        return [self._with_liquidation(row, who) for row in rows]

    def _position(self, params: Mapping[str, Any], account: ApiKey | None) -> dict[str, object]:
        name = _str(params, "instrument_name")
        self._index(name)
        who = self._who(account)
        for row in self.engine.positions(who):
            if row["instrument_name"] == name:
                return self._with_liquidation(row, who)
        raise RpcError(13020, "not_found", f"no position in {name}")

    def _with_liquidation(self, row: dict[str, object], who: str) -> dict[str, object]:
        """A future's ``estimated_liquidation_price`` (Deribit's ``segregated_sm`` field):
        the one-position estimate against the account's equity in the settlement currency
        less the other positions' maintenance margin; None when no price liquidates it."""
        inst = self.market.universe.instruments[self._index(str(row["instrument_name"]))]
        if inst.kind != "future":
            return row
        summary = self.engine.account_summary(who, settlement_currency(inst))
        others = summary.maintenance_margin - cast(float, row["maintenance_margin"])
        row["estimated_liquidation_price"] = estimated_liquidation_price(
            cast(float, row["size"]),
            cast(float, row["mark_price"]),
            summary.equity - others,
            self.engine.margin.future_maintenance,
            inst.inverse,
        )
        return row

    # -- private: orders ------------------------------------------------------------------

    def _place(
        self, params: Mapping[str, Any], account: ApiKey | None, direction: str
    ) -> dict[str, object]:
        who = self._who(account)
        if self.faults.plan.reject_orders:
            self.faults.injected["rejects"] += 1
            raise RpcError(
                self.faults.plan.reject_code, "rejected_by_fault_injection", "orders refused"
            )
        order_type = str(params.get("type", "limit"))
        if order_type not in ("limit", "market"):
            raise RpcError(11029, "invalid_arguments", f"order type {order_type!r} not supported")
        tif = str(params.get("time_in_force", "good_til_cancelled"))
        if tif not in TIME_IN_FORCE:
            raise RpcError(11029, "invalid_arguments", f"time_in_force {tif!r} not supported")
        # ccxt forwards a unified clientOrderId verbatim; Deribit's own name for it is label.
        label = str(params.get("label") or params.get("clientOrderId") or "")
        execution = self.engine.place(
            who,
            _str(params, "instrument_name"),
            direction,
            _float(params, "amount") or 0.0,
            now_ms=self.market.now_ms,
            order_type=order_type,
            price=_float(params, "price", required=order_type == "limit"),
            time_in_force=tif,
            post_only=_bool(params, "post_only"),
            reject_post_only=_bool(params, "reject_post_only") or not _bool(params, "post_only"),
            reduce_only=_bool(params, "reduce_only"),
            label=label,
        )
        self._pending.append(execution)
        return {
            "order": execution.order.to_deribit(),
            "trades": [t.to_deribit() for t in execution.trades],
        }

    def _cancel(self, params: Mapping[str, Any], account: ApiKey | None) -> dict[str, object]:
        order = self.engine.cancel(self._who(account), _str(params, "order_id"), self.market.now_ms)
        self._pending.append(Execution(order, ()))
        return order.to_deribit()

    def _cancel_all(self, params: Mapping[str, Any], account: ApiKey | None) -> int:
        cancelled = self.engine.cancel_all(
            self._who(account),
            self.market.now_ms,
            instrument_name=params.get("instrument_name"),
            currency=params.get("currency"),
        )
        self._pending.extend(Execution(o, ()) for o in cancelled)
        return len(cancelled)

    def _order_state(self, params: Mapping[str, Any], account: ApiKey | None) -> dict[str, object]:
        return self.engine.get_order_state(
            self._who(account), _str(params, "order_id")
        ).to_deribit()

    def _orders_by_label(
        self, params: Mapping[str, Any], account: ApiKey | None
    ) -> list[dict[str, object]]:
        orders = self.engine.orders_by_label(self._who(account), _str(params, "label"))
        return [o.to_deribit() for o in orders]

    def _open_orders(
        self, params: Mapping[str, Any], account: ApiKey | None
    ) -> list[dict[str, object]]:
        currency = params.get("currency")
        orders = self.engine.open_orders(
            self._who(account),
            instrument_name=params.get("instrument_name"),
            currency=None if currency in (None, "any") else str(currency),
        )
        return [o.to_deribit() for o in orders]

    def _trades(self, params: Mapping[str, Any], account: ApiKey | None) -> dict[str, object]:
        since = _float(params, "start_timestamp", required=False)
        end = _float(params, "end_timestamp", required=False)
        count = int(_float(params, "count", required=False) or 100)
        trades = self.engine.user_trades(
            self._who(account),
            instrument_name=params.get("instrument_name"),
            currency=params.get("currency"),
            since_ms=None if since is None else int(since),
        )
        if end is not None:
            trades = [t for t in trades if t.timestamp <= end]
        shown = trades[-count:] if count > 0 else []
        return {"trades": [t.to_deribit() for t in shown], "has_more": len(trades) > len(shown)}

    def _trades_by_order(
        self, params: Mapping[str, Any], account: ApiKey | None
    ) -> list[dict[str, object]]:
        trades = self.engine.order_trades(self._who(account), _str(params, "order_id"))
        return [t.to_deribit() for t in trades]

    # -- views for the publisher ----------------------------------------------------------

    def ticker_of(self, i: int) -> dict[str, object]:
        return self.market.ticker(i)

    def instrument_name(self, i: int) -> str:
        return self.market.universe.instruments[i].instrument_name

    def summary_of(self, account_name: str, currency: str) -> dict[str, object]:
        return self.engine.account_summary(account_name, currency).to_deribit()
