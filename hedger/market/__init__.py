"""Market data: the latest quote per instrument (``MarketState``) and the feeds that fill it."""

from hedger.market.state import BadTick, LiveMarket, MarketState

__all__ = ["BadTick", "LiveMarket", "MarketState"]
