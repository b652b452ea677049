"""ccxt positions (and balances) as the margin core's hedge legs (``hedger.core.margin``).

What each venue's ccxt parser gives, as unified fields:

- ``liquidationPrice``: Deribit's ``estimated_liquidation_price``, Binance's ``liquidationPrice``
  (ccxt turns its "0", no liquidation, into None), OKX's ``liqPx``, Bybit's ``liqPrice``,
  Hyperliquid's ``liquidationPx``. None or <= 0 reads as "none": the leg cannot be liquidated.
  Deribit adds the field to futures only under the ``segregated_sm`` margin model; without
  it the account summary's ``estimated_liquidation_ratio`` (of the settlement currency)
  times the mark is the estimate Deribit documents, and with neither the price is unknown.
- ``markPrice``: the venue's mark.
- ``marginRatio``: maintenance margin / collateral as ccxt computes it (Binance, OKX); None
  on Deribit and Hyperliquid. Deribit's account summary (``fetch_balance``'s ``info``) gives
  the account's own: ``maintenance_margin / margin_balance`` of the settlement currency.
- ``maintenanceMargin``, ``collateral``: used for the ratio when ccxt gives none.

The maintenance rate (maintenance margin over notional, in the margin currency) feeds the
``reduce`` estimate; Deribit's amounts are the venue's units (``AMOUNT_IS_UNITS``), others'
are contracts of ``contractSize``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from hedger.core.margin import HedgeLegMargin
from hedger.execution.positions import AMOUNT_IS_UNITS

_NAN = float("nan")


def _float(value: Any) -> float:
    """ccxt's number (or a venue's numeric string), None/garbage as NaN."""
    if value is None or isinstance(value, bool):
        return _NAN
    try:
        return float(value)
    except (TypeError, ValueError):
        return _NAN


def _liquidation_price(value: Any) -> float | None:
    price = _float(value)
    return price if math.isfinite(price) and price > 0.0 else None


def _summaries(balance: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    """Deribit's account summaries (``fetch_balance``'s ``info``) by currency."""
    info = (balance or {}).get("info")
    if not isinstance(info, Mapping):
        return {}
    summaries = info.get("summaries")
    rows = summaries if isinstance(summaries, list) else [info]
    return {
        str(row.get("currency", "")).upper(): row
        for row in rows
        if isinstance(row, Mapping) and "maintenance_margin" in row
    }


def _deribit_liquidation(row: Mapping[str, Any], summary: Mapping[str, Any] | None) -> float | None:
    info = row.get("info")
    if isinstance(info, Mapping) and "estimated_liquidation_price" in info:
        return _liquidation_price(row.get("liquidationPrice"))
    ratio = _float((summary or {}).get("estimated_liquidation_ratio"))
    if math.isfinite(ratio):
        return _liquidation_price(ratio * _float(row.get("markPrice")))
    return _NAN


def account_margin_ratios(balance: Mapping[str, Any] | None) -> dict[str, float]:
    """Per settlement currency, maintenance margin / margin balance from Deribit's account
    summaries (``private/get_account_summaries``, ccxt's ``fetch_balance`` info); empty
    for a balance that carries none."""
    out: dict[str, float] = {}
    for currency, row in _summaries(balance).items():
        maintenance = _float(row.get("maintenance_margin"))
        margin_balance = _float(row.get("margin_balance", row.get("equity")))
        if math.isfinite(maintenance) and math.isfinite(margin_balance) and margin_balance > 0:
            out[currency] = maintenance / margin_balance
    return out


def _maintenance_rate(row: Mapping[str, Any], market: Mapping[str, Any], exchange: str) -> float:
    """Maintenance margin / notional in the margin currency (quote if linear, coin if inverse)."""
    maintenance, mark = _float(row.get("maintenanceMargin")), _float(row.get("markPrice"))
    contracts = abs(_float(row.get("contracts")))
    size = 1.0 if exchange in AMOUNT_IS_UNITS else _float(market.get("contractSize") or 1.0)
    units = contracts * size
    if not (math.isfinite(maintenance) and mark > 0 and units > 0):
        return _NAN
    notional = units / mark if market.get("inverse") else units * mark
    return maintenance / notional


def hedge_legs(
    rows: Iterable[Mapping[str, Any]],
    markets: Mapping[str, Mapping[str, Any]],
    exchange: str,
    venue: str,
    hedge_instruments: Collection[str] | None = None,
    balance: Mapping[str, Any] | None = None,
) -> list[HedgeLegMargin]:
    """The hedge legs among ccxt ``fetch_positions`` ``rows``: the positions in
    ``hedge_instruments`` (venue ids or unified symbols, as the config names them), or
    every open non-option derivative when None. Flat rows are skipped; legs are named by
    the venue's instrument id. ``balance`` (``fetch_balance``) supplies Deribit's account
    margin ratio."""
    wanted = None if hedge_instruments is None else set(hedge_instruments)
    account_ratios = account_margin_ratios(balance)
    summaries = _summaries(balance)
    legs = []
    for row in rows:
        contracts = _float(row.get("contracts"))
        market = markets.get(str(row.get("symbol")))
        if market is None or not (math.isfinite(contracts) and contracts != 0.0):
            continue
        instrument_id = str(market.get("id"))
        if wanted is None:
            if market.get("option") or market.get("spot"):
                continue
        elif instrument_id not in wanted and str(market.get("symbol")) not in wanted:
            continue
        side = row.get("side")
        sign = 1.0 if side == "long" else -1.0 if side == "short" else math.copysign(1, contracts)
        settle = str(market.get("settle") or "").upper()
        ratio = _float(row.get("marginRatio"))
        if math.isnan(ratio):
            ratio = account_ratios.get(settle, _NAN)
        if exchange == "deribit":
            liquidation = _deribit_liquidation(row, summaries.get(settle))
        else:
            liquidation = _liquidation_price(row.get("liquidationPrice"))
        legs.append(
            HedgeLegMargin(
                venue=venue,
                instrument=instrument_id,
                qty=sign * abs(contracts),
                mark_price=_float(row.get("markPrice")),
                liquidation_price=liquidation,
                inverse=bool(market.get("inverse")),
                maintenance_rate=_maintenance_rate(row, market, exchange),
                margin_ratio=ratio,
                maintenance_margin=_float(row.get("maintenanceMargin")),
                collateral=_float(row.get("collateral")),
            )
        )
    return legs
