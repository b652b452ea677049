"""Warm-starting the beta estimators from each asset's OHLCV history, before the first cycle.

History is a nicety: an asset whose candles cannot be read keeps its prior loadings, and
says so in the log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import structlog

from hedger.config import Warmup
from hedger.config.beta_setup import align_closes
from hedger.core.beta import BetaBook
from hedger.core.factors import CASH_ASSETS
from hedger.live.venue_link import VenueLink

log = structlog.get_logger("hedger.live.warmup")


async def warm_start_betas(
    beta_book: BetaBook,
    assets: Sequence[str],
    price_source: Mapping[str, str],
    links: Mapping[str, VenueLink],
    warm: Warmup,
    now_ms: int,
    prior_only: Sequence[str] = (),
) -> None:
    """Fold ``warm.lookback`` of closes (``venue:id`` per asset in ``price_source``) into
    ``beta_book``."""
    if warm.lookback <= 0:
        return
    since = now_ms - int(warm.lookback * 1000)
    series = {}
    for asset, source in price_source.items():
        venue, instrument_id = source.split(":", 1)
        try:
            got = await links[venue].closes([instrument_id], warm.timeframe, since)
        except Exception as exc:  # history is a nicety: priors cover a missing one
            log.warning("beta_warmup_failed", asset=asset, error=repr(exc))
            continue
        series[asset] = got[instrument_id]
    closes = align_closes(tuple(assets), series, constant=tuple(CASH_ASSETS))
    if len(closes) > 1:
        beta_book.warm_start(closes)
    snapshot = beta_book.snapshot()
    log.info(
        "betas_warm_started",
        bars=len(closes),
        timeframe=warm.timeframe,
        warm=[a for a, w in zip(assets, snapshot.is_warm, strict=True) if w],
        prior_only=list(prior_only),
    )
