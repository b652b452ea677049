"""Brokers: the venue as the executor sees it, one implementation per venue family.

``make_broker`` picks it by the family of the venue's ccxt client (the ccxt class it derives
from): Deribit's own (labels, lookups by label, ``valid_until``); Binance, Bybit, OKX and
Hyperliquid through ccxt's unified calls with their own client-id field and lookup; ccxt's
unified API alone for every other venue. Each broker carries its venue's client-id rule
(``broker.client_ids``, see ``client_ids.py``), which the executor mints ids with.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hedger.execution.brokers.binance import BinanceBroker
from hedger.execution.brokers.bybit import BybitBroker
from hedger.execution.brokers.client_ids import ClientIdRule, rule_for
from hedger.execution.brokers.deribit import DeribitBroker
from hedger.execution.brokers.deribit_ws import DeribitWsBroker
from hedger.execution.brokers.hyperliquid import HyperliquidBroker
from hedger.execution.brokers.okx import OkxBroker
from hedger.execution.brokers.port import Broker, Lookup, VenueOrder
from hedger.execution.brokers.unified import UnifiedBroker, UnsupportedVenueError, order_status

__all__ = [
    "BinanceBroker",
    "Broker",
    "BybitBroker",
    "ClientIdRule",
    "DeribitBroker",
    "DeribitWsBroker",
    "HyperliquidBroker",
    "Lookup",
    "OkxBroker",
    "UnifiedBroker",
    "UnsupportedVenueError",
    "VenueOrder",
    "make_broker",
    "order_status",
    "venue_family",
]

_UNIFIED_FAMILIES: dict[str, type[UnifiedBroker]] = {
    "binance": BinanceBroker,
    "bybit": BybitBroker,
    "okx": OkxBroker,
    "hyperliquid": HyperliquidBroker,
}
FAMILIES = ("deribit", *_UNIFIED_FAMILIES)


def venue_family(client: Any, exchange_id: str = "") -> str:
    """The venue family of a ccxt client: the first of ``FAMILIES`` among the names of its
    class and their bases (``binanceusdm`` and ``binancecoinm`` derive from ``binance``),
    else ``exchange_id``'s own name."""
    names = {cls.__name__ for cls in type(client).__mro__}
    return next((family for family in FAMILIES if family in names), exchange_id)


def make_broker(
    client: Any, venue_name: str, exchange_id: str, label_max_len: int | None = None
) -> Broker:
    """The broker for a venue whose ccxt client is ``client`` and ccxt id ``exchange_id``;
    ``label_max_len`` (the venue's config) can only shorten its client ids.

    Raises ``UnsupportedVenueError`` for a venue whose ccxt client cannot find orders again.
    """
    family = venue_family(client, exchange_id)
    rule = rule_for(family, 64 if label_max_len is None else label_max_len)
    if rule.shape == "readable" and label_max_len is not None and label_max_len < rule.max_len:
        rule = replace(rule, max_len=label_max_len)  # the compact shapes have fixed lengths
    if family == "deribit":
        return DeribitBroker(client, venue_name, client_ids=rule)
    return _UNIFIED_FAMILIES.get(family, UnifiedBroker)(client, venue_name, rule)
