"""Brokers: the venue as the executor sees it, one implementation per venue family.

``make_broker`` picks it by the venue's ccxt id: Deribit's own (labels, lookups by label,
``valid_until``), or ccxt's unified API for every other venue.
"""

from __future__ import annotations

from typing import Any

from hedger.execution.brokers.deribit import DeribitBroker
from hedger.execution.brokers.port import Broker, Lookup, VenueOrder
from hedger.execution.brokers.unified import UnifiedBroker, UnsupportedVenueError, order_status

__all__ = [
    "Broker",
    "DeribitBroker",
    "Lookup",
    "UnifiedBroker",
    "UnsupportedVenueError",
    "VenueOrder",
    "make_broker",
    "order_status",
]


def make_broker(client: Any, venue_name: str, exchange_id: str) -> Broker:
    """The broker for a venue whose ccxt client is ``client`` and ccxt id ``exchange_id``.

    Raises ``UnsupportedVenueError`` for a venue whose ccxt client cannot find orders again.
    """
    if exchange_id == "deribit":
        return DeribitBroker(client, venue_name)
    return UnifiedBroker(client, venue_name)
