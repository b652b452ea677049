"""Prometheus metrics, read from the engine's latest state at scrape time.

A custom collector rather than gauges set on every cycle: a cycle pays nothing for metrics,
and a scrape sees one consistent state (the event loop is not running a cycle while the
collector reads). Names are a contract (README "Metrics"): prefix ``hedger_``, base units,
``_total`` for counters, labels of low cardinality only (factor, asset, venue, reason).
Counters whose label values are known (``hedger.obs.labels``) export every value from
start-up at 0, so ``rate()`` and alert rules see the first event after a restart.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator

import numpy as np
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from hedger.core import guards
from hedger.live.control import Control, config_version
from hedger.live.engine import Engine
from hedger.obs.histogram import Histogram
from hedger.obs.http import readiness
from hedger.obs.labels import HEDGE_RESULTS, REFUSAL_KINDS, RELOAD_RESULTS, hedge_result

TRADING_STATE_CODE = {"running": 0, "paused": 1, "halted": 2, "dry_run": 3}


def _histogram(name: str, doc: str, hist: Histogram) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc)
    family.add_metric([], hist.cumulative(), hist.total)
    return family


class EngineCollector(Collector):
    """``control`` (the daemon's reload handler) adds ``hedger_config_in_sync``."""

    def __init__(self, engine: Engine, control: Control | None = None) -> None:
        self.engine = engine
        self.control = control

    def collect(self) -> Iterator[Metric]:
        engine, stats = self.engine, self.engine.stats
        yield GaugeMetricFamily("hedger_up", "1 while the daemon runs", value=1)
        yield GaugeMetricFamily(
            "hedger_trading_state",
            "0 running, 1 paused, 2 halted, 3 dry-run",
            value=TRADING_STATE_CODE[engine.trading_state],
        )
        yield GaugeMetricFamily(
            "hedger_ready",
            "1 when /readyz answers ready (reconciled, exposure computed, fresh, not halted)",
            value=0 if readiness(engine) else 1,
        )
        if self.control is not None:
            yield self._config_in_sync(self.control)
        yield from self._exposure()
        yield from self._orders()
        yield from self._market()
        refusals = CounterMetricFamily(
            "hedger_guard_refusals", "hedge intents refused by the guards", labels=["reason"]
        )
        by_reason = Counter(dict.fromkeys(REFUSAL_KINDS, 0))
        by_reason.update(stats.guard_refusals)
        for reason, count in sorted(by_reason.items()):
            refusals.add_metric([reason], count)
        yield refusals
        reloads = CounterMetricFamily(
            "hedger_config_reloads", "config reloads by result", labels=["result"]
        )
        for result in RELOAD_RESULTS:
            reloads.add_metric([result], stats.config_reloads[result])
        yield reloads
        yield _histogram(
            "hedger_cycle_seconds", "time of one engine cycle (compute only)", stats.cycle_seconds
        )
        yield from self._cycles()
        yield from self._options()
        yield from self._venue_safety()

    def _venue_safety(self) -> Iterator[Metric]:
        engine = self.engine
        distance = GaugeMetricFamily(
            "hedger_hedge_liquidation_distance",
            "hedge leg: adverse move to its liquidation price, fraction of mark (+Inf: none)",
            labels=["venue", "instrument"],
        )
        ratio = GaugeMetricFamily(
            "hedger_hedge_margin_ratio",
            "maintenance margin / collateral of the venue account holding hedge legs",
            labels=["venue"],
        )
        check = engine.margin_check
        if check is not None:
            for reading in check.readings:
                if not math.isnan(reading.liquidation_distance):
                    distance.add_metric(
                        [reading.venue, reading.instrument], reading.liquidation_distance
                    )
            for venue, value in check.venue_margin_ratios().items():
                if not math.isnan(value):
                    ratio.add_metric([venue], value)
        armed = GaugeMetricFamily(
            "hedger_dead_man_armed",
            "1 while the venue's dead-man's switch is armed",
            labels=["venue"],
        )
        for venue, switch in engine.dead_men.items():
            armed.add_metric([venue], 1.0 if switch.armed else 0.0)
        yield from (distance, ratio, armed)

    def _options(self) -> Iterator[Metric]:
        engine = self.engine
        gamma = GaugeMetricFamily(
            "hedger_option_hedge_gamma_usd_per_pct",
            "per factor hedged with options: gamma, USD of beta-delta per 1% move",
            labels=["factor", "mode"],
        )
        vega = GaugeMetricFamily(
            "hedger_option_hedge_vega_usd",
            "per factor hedged with options: vega of its asset's options, USD per vol point",
            labels=["factor", "mode"],
        )
        for d in engine.option_decisions:
            if d.before is not None:
                gamma.add_metric([d.factor, d.mode.value], d.before.gamma_usd_per_pct)
                vega.add_metric([d.factor, d.mode.value], d.before.vega_usd)
        yield gamma
        yield vega
        yield GaugeMetricFamily(
            "hedger_option_premium_spent_usd",
            "option premium bought over the rolling day (option_limits.max_premium_per_day_usd)",
            value=guards.premium_spent_usd(engine.guard_state, engine.clock_ms()),
        )

    def _cycles(self) -> Iterator[Metric]:
        stats = self.engine.stats
        yield CounterMetricFamily("hedger_cycles", "engine cycles computed", value=stats.cycles)
        yield CounterMetricFamily(
            "hedger_cycles_decided",
            "cycles with a decision for every factor (the denominator of time in band)",
            value=stats.decided_cycles,
        )
        yield CounterMetricFamily(
            "hedger_cycles_in_band",
            "decided cycles that held every factor inside its band",
            value=stats.inside_band_cycles,
        )
        yield CounterMetricFamily(
            "hedger_position_reads_superseded",
            "position reads dropped because a newer read was applied first",
            value=stats.superseded_position_reads,
        )
        failures = CounterMetricFamily(
            "hedger_task_failures", "background tasks that died (each halts)", labels=["task"]
        )
        for task, count in sorted(stats.task_failures.items()):
            failures.add_metric([task], count)
        yield failures

    @staticmethod
    def _config_in_sync(control: Control) -> Metric:
        # Read at scrape time, not at reload time: an edit that no reload has seen yet (no
        # file watch, no SIGHUP) also leaves the daemon running something else than the file.
        in_sync = config_version(control.config_path) == control.version
        return GaugeMetricFamily(
            "hedger_config_in_sync",
            "1 when the running config is the config file on disk (0: a refused or "
            "pending reload; a restart would start another config)",
            value=1 if in_sync else 0,
        )

    def _exposure(self) -> Iterator[Metric]:
        result = self.engine.exposure
        if result is None:
            return
        factors = result.factors
        beta = GaugeMetricFamily(
            "hedger_portfolio_beta", "beta-delta USD / NAV per factor", labels=["factor"]
        )
        beta_delta = GaugeMetricFamily(
            "hedger_portfolio_beta_delta",
            "beta-weighted delta per factor, in the factor's units or USD",
            labels=["factor", "unit"],
        )
        gamma = GaugeMetricFamily(
            "hedger_portfolio_gamma",
            "change of the USD beta-delta for a 1% factor move",
            labels=["factor"],
        )
        target = GaugeMetricFamily(
            "hedger_target_beta_delta", "target beta-delta (factor units)", labels=["factor"]
        )
        band = GaugeMetricFamily(
            "hedger_band_half_width", "band half-width (factor units)", labels=["factor"]
        )
        ratio = GaugeMetricFamily(
            "hedger_band_deviation_ratio",
            "|beta-delta - target| / band half-width (> 1: outside the band)",
            labels=["factor"],
        )
        portfolio_beta, units = result.portfolio_beta, result.beta_delta
        gamma_pct = result.gamma_usd_per_pct
        for k, factor in enumerate(factors):
            beta.add_metric([factor], float(portfolio_beta[k]))
            beta_delta.add_metric([factor, "benchmark"], float(units[k]))
            beta_delta.add_metric([factor, "usd"], float(result.beta_delta_usd[k]))
            gamma.add_metric([factor], float(gamma_pct[k]))
            decision = self.engine.decision_of(factor)
            if decision is not None and not math.isnan(decision.band_half_width):
                target.add_metric([factor], decision.target)
                band.add_metric([factor], decision.band_half_width)
                if decision.band_half_width > 0:
                    ratio.add_metric([factor], abs(decision.deviation) / decision.band_half_width)
        yield from (beta, beta_delta, gamma, target, band, ratio)
        yield GaugeMetricFamily(
            "hedger_portfolio_vega_usd", "USD per vol point", value=result.vega_usd
        )
        yield GaugeMetricFamily(
            "hedger_portfolio_theta_usd", "USD per calendar day", value=result.theta_usd
        )
        yield GaugeMetricFamily(
            "hedger_portfolio_nav_usd", "net liquidation value", value=result.nav_usd
        )
        asset_beta = GaugeMetricFamily(
            "hedger_asset_beta", "loading of each asset on each factor", labels=["asset", "factor"]
        )
        contribution = GaugeMetricFamily(
            "hedger_asset_beta_delta_usd",
            "each asset's contribution to the factor's beta-delta",
            labels=["asset", "factor"],
        )
        per_asset = result.asset_factor_delta_usd
        for i, asset in enumerate(result.assets):
            for k, factor in enumerate(factors):
                asset_beta.add_metric([asset, factor], float(result.loadings[i, k]))
                contribution.add_metric([asset, factor], float(per_asset[i, k]))
        yield asset_beta
        yield contribution

    def _orders(self) -> Iterator[Metric]:
        stats = self.engine.stats
        orders = CounterMetricFamily(
            "hedger_hedge_orders",
            "hedge orders by venue, instrument and result",
            labels=["venue", "instrument", "result"],
        )
        known = [
            (factor.hedge.venue, factor.hedge.symbol, result)
            for factor in self.engine.cfg.factors
            for result in HEDGE_RESULTS
        ]
        by_key = Counter(dict.fromkeys(known, 0))
        for (venue, instrument, result), count in stats.hedge_orders.items():
            by_key[(venue, instrument, hedge_result(result))] += count
        for labels, count in sorted(by_key.items()):
            orders.add_metric(list(labels), count)
        yield orders
        notional = CounterMetricFamily(
            "hedger_hedge_notional_usd", "USD notional of filled hedges", labels=["venue"]
        )
        for venue in self.engine.links:
            notional.add_metric([venue], stats.hedge_notional_usd.get(venue, 0.0))
        yield notional
        yield _histogram(
            "hedger_order_latency_seconds",
            "from sending a hedge order to knowing its outcome",
            stats.order_latency_seconds,
        )

    def _market(self) -> Iterator[Metric]:
        engine = self.engine
        updates = CounterMetricFamily(
            "hedger_market_updates", "ticker updates accepted", labels=["venue"]
        )
        age = GaugeMetricFamily(
            "hedger_market_data_age_seconds",
            "age of the oldest market input the exposure depends on",
            labels=["venue"],
        )
        reconnects = CounterMetricFamily(
            "hedger_feed_reconnects", "feed reconnections", labels=["venue"]
        )
        bad = CounterMetricFamily(
            "hedger_bad_messages", "market messages dropped, by reason", labels=["venue", "reason"]
        )
        now_s = engine.monotonic()
        for name, link in engine.links.items():
            reconnects.add_metric([name], link.reconnects)
            if link.market is None:
                continue
            state = link.market.state
            updates.add_metric([name], state.accepted)
            for reason, count in state.rejected.items():
                bad.add_metric([name, reason.value], count)
            oldest = engine.oldest_input_age_s(name, now_s)
            if oldest is not None:
                age.add_metric([name], oldest if np.isfinite(oldest) else float("inf"))
        yield from (updates, age, reconnects, bad)


def build_registry(engine: Engine, control: Control | None = None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    registry.register(EngineCollector(engine, control))
    return registry
