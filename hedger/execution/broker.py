"""Kept for existing imports: the brokers live in ``hedger.execution.brokers``."""

from hedger.execution.brokers import (
    Broker,
    DeribitBroker,
    Lookup,
    UnifiedBroker,
    UnsupportedVenueError,
    VenueOrder,
    make_broker,
)

__all__ = [
    "Broker",
    "DeribitBroker",
    "Lookup",
    "UnifiedBroker",
    "UnsupportedVenueError",
    "VenueOrder",
    "make_broker",
]
