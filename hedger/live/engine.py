"""The live cycle: wait for new quotes -> exposure -> decide -> guard -> execute.

One asyncio task runs the cycle. Feeds only overwrite the latest quote per instrument and
set one shared event; a cycle reads every venue's columns once, however many ticks landed
since the last one (conflation: work scales with CPU, never with message rate). Everything
between the wake-up and the first order is synchronous core code, so no tick can land
half-way through a computation. An order is awaited inside the cycle: while it is in
flight nothing else is decided, which is the first of the guarantees against a double hedge
(the second is the journal; see ``hedger.execution.executor``).

Before the first hedge the engine reconciles: journaled orders of unknown fate are looked
up on their venue, this daemon's orders still open on a venue (found by client-id prefix)
are cancelled, and positions are loaded. Positions are read again after every hedge and
every ``market.reconcile_every``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import structlog
from numpy.typing import NDArray

from hedger.config import Config, Venue
from hedger.config.beta_setup import make_beta_book
from hedger.config.portfolio import declared_positions
from hedger.core import guards
from hedger.core.beta import BetaBook, Betas
from hedger.core.cycle import (
    CycleInputs,
    CycleState,
    MarketInputs,
    implausible_inputs,
    stale_inputs,
    step,
)
from hedger.core.exposure import Book, Exposure, Position, build_book
from hedger.core.factors import factor_indices
from hedger.core.plausibility import PlausibilityState
from hedger.core.policy import Action, Decision, HedgeIntent, HedgeMarket
from hedger.core.units import DAY_MS
from hedger.execution.executor import (
    ExecutionFailedError,
    ExecutionFaultError,
    Executor,
    OrderRefusedError,
)
from hedger.execution.journal import Journal, is_own_client_id
from hedger.live.reconcile import cancel_own_open_orders, settle_journaled_orders
from hedger.live.venue_link import VenueLink
from hedger.live.warmup import warm_start_betas
from hedger.market.universe import Universe, build_universe, hedge_market
from hedger.obs.histogram import CYCLE_BUCKETS, LATENCY_BUCKETS, Histogram
from hedger.obs.labels import REFUSAL_KINDS, hedge_result
from hedger.tasks import Supervisor

log = structlog.get_logger("hedger.live.engine")

Clock = Callable[[], int]
ABANDONED_POLL_S = 5.0
"""How often abandoned orders are looked up when no trade of theirs was streamed."""


def order_ttl_s(venue: Venue) -> float | None:
    """The request time-to-live sent to the venue: the client's own timeout by default, so
    a request the client gave up on can no longer land once its answer would be late."""
    return venue.order_ttl if venue.order_ttl is not None else venue.timeout_seconds


def unknown_window_s(venue: Venue) -> float:
    """How long an order of unknown fate must be shown absent before its leg is resent on a
    venue that cannot prove absence: tied to the request timeout, never a fixed grace."""
    if venue.unknown_order_window is not None:
        return venue.unknown_order_window
    return 3.0 * venue.timeout_seconds


@dataclass(slots=True, frozen=True)
class HedgeRecord:
    """One hedge as operators see it on /status and in the logs."""

    at_ms: int
    factor: str
    venue: str
    symbol: str
    side: str
    qty: float
    notional_usd: float
    result: str
    """filled, partial, rejected, failed, stopped or dry_run (``obs.labels.HEDGE_RESULTS``)."""
    reason: str
    intent_seq: int


@dataclass(slots=True)
class EngineStats:
    cycles: int = 0
    cycle_seconds: Histogram = field(default_factory=lambda: Histogram(CYCLE_BUCKETS))
    order_latency_seconds: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS))
    hedge_orders: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    hedge_notional_usd: dict[str, float] = field(default_factory=dict)
    guard_refusals: Counter[str] = field(default_factory=Counter)
    config_reloads: Counter[str] = field(default_factory=Counter)
    own_trades_seen: int = 0
    task_failures: Counter[str] = field(default_factory=Counter)
    implausible_cycles: int = 0
    """cycles that saw an input fail a plausibility check."""
    decided_cycles: int = 0
    """cycles with a decision for every factor; ``inside_band_cycles`` of them held."""
    inside_band_cycles: int = 0


def refusal_kind(refusal: guards.Refusal) -> str:
    """A low-cardinality label for a refusal: the gate or the breached limit, always one of
    ``hedger.obs.labels.REFUSAL_KINDS``."""
    kind = refusal.kind or refusal.limit or ""
    return kind if kind in REFUSAL_KINDS else "bad_order_numbers"


@dataclass(slots=True, frozen=True)
class _Built:
    """What the positions and the config imply, built before anything is swapped."""

    positions: list[Position]
    book: Book
    universe: Universe
    factor_index: NDArray[np.intp]
    delta_one: NDArray[np.bool_]
    hedge_rows: dict[str, int]
    beta: tuple[BetaBook, list[str]] | None
    """new estimators when the book's assets changed (or the beta settings did)."""


class Engine:
    def __init__(
        self,
        cfg: Config,
        links: Mapping[str, VenueLink],
        journal: Journal,
        *,
        clock_ms: Clock | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.links = dict(links)
        self.journal = journal
        self.clock_ms: Clock = clock_ms or (lambda: int(time.time() * 1000))
        self.monotonic = monotonic
        self.stats = EngineStats()
        self.changed = asyncio.Event()
        self.guard_state = self._restored_guard_state()
        self.executors = {
            name: Executor(
                journal,
                link.broker,
                daemon_name=cfg.name,
                clock=self.clock_ms,
                label_max_len=link.cfg.label_max_len,
                order_ttl_s=order_ttl_s(link.cfg),
                unknown_window_s=unknown_window_s(link.cfg),
            )
            for name, link in self.links.items()
        }
        self.positions: list[Position] = []
        self._reads_started = 0
        self._read_committed = 0
        """Sequence numbers of position reads: started, and the newest one swapped in."""
        self.positions_reconciled = False
        self.book: Book | None = None
        self.universe: Universe | None = None
        self.beta_book: BetaBook | None = None
        self.beta_assets: tuple[str, ...] = ()
        self.prior_only_assets: list[str] = []
        self.hedge_markets: dict[str, HedgeMarket] = {}
        self.last_hedge_ms: dict[str, int] = {}
        self.exposure: Exposure | None = None
        self.betas: Betas | None = None
        self.decisions: tuple[Decision, ...] = ()
        self.stale_inputs: tuple[str, ...] = ()
        self.implausible_inputs: tuple[str, ...] = ()
        self.last_cycle_s: float | None = None
        """Monotonic time the last cycle completed."""
        self.plausibility = PlausibilityState.empty(0)
        self.index_plausibility = PlausibilityState.empty(0)
        self.params = cfg.cycle_params({})
        """The core step's parameters (hedge markets once the venues are connected)."""
        self._delta_one: NDArray[np.bool_] = np.zeros(0, dtype=np.bool_)
        self.recent_hedges: deque[HedgeRecord] = deque(maxlen=50)
        self.started_ms: int | None = None
        self._factor_idx: NDArray[np.intp] = np.zeros(0, dtype=np.intp)
        self._hedge_rows: dict[str, int] = {}
        self.tasks = Supervisor(self._task_failed)
        self._stopping = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._fills_seen = asyncio.Event()
        self._late_fill_seen = asyncio.Event()
        self._last_gate: str | None = None

    # -- trading state ------------------------------------------------------------------------

    def _restored_guard_state(self) -> guards.GuardState:
        """Resume in the journaled trading state with the last day's sent notional: a halt,
        a pause and a spent budget all outlive the process."""
        now_ms = self.clock_ms()
        last = self.journal.last_trading_state()
        state = guards.restore(
            self.cfg.limits.to_core(),
            now_ms,
            trading=last.state if last else None,
            reason=last.reason if last else None,
            since_ms=last.ts_ms if last else None,
            consecutive_errors=last.consecutive_errors if last else 0,
            sent=self.journal.sent_notional_since(now_ms - DAY_MS),
        )
        if state.trading is not guards.TradingState.RUNNING:
            log.warning("trading_state_restored", trading=state.trading.value, reason=state.reason)
        return state

    def _set_guard(self, new: guards.GuardState, by: str) -> None:
        """The one place the guard state changes: a change of trading state or error count
        is journaled (and logged), so a restart resumes exactly here."""
        old = self.guard_state
        self.guard_state = new
        if (old.trading, old.reason, old.consecutive_errors) == (
            new.trading,
            new.reason,
            new.consecutive_errors,
        ):
            return
        self.journal.record_trading_state(
            now_ms=self.clock_ms(),
            state=new.trading.value,
            reason=new.reason,
            by=by,
            consecutive_errors=new.consecutive_errors,
        )
        if old.trading is not new.trading:
            level = log.error if new.trading is guards.TradingState.HALTED else log.warning
            level(
                "trading_state_changed",
                trading=new.trading.value,
                previous=old.trading.value,
                reason=new.reason,
                by=by,
            )

    def _task_failed(self, name: str, error: BaseException) -> None:
        """A background task died: never a silent stop. Log the traceback, journal it and
        halt (streaming and exporting go on where their tasks still run)."""
        detail = f"{type(error).__name__}: {error}"
        log.error("task_failed", task=name, error=detail, exc_info=error)
        self.stats.task_failures[name] += 1
        self.journal.record_event(
            now_ms=self.clock_ms(), kind="task_failed", payload={"task": name, "error": detail}
        )
        self.halt(f"task {name} failed: {detail}")

    def halt(self, reason: str, by: str = "engine") -> None:
        """Stop sending (HALTED) until an operator resumes; streaming and exporting go on."""
        self._set_guard(guards.halt(self.guard_state, self.clock_ms(), reason), by)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, reconcile, load positions, subscribe and warm the betas; then cycle."""
        self.started_ms = self.clock_ms()
        for link in self.links.values():
            await link.connect()
        self.load_hedge_markets()
        await self.reconcile_orders()
        await self.refresh_positions()
        assert self.universe is not None
        for name, link in self.links.items():
            ids = self.universe.subscriptions[name]
            if ids:
                link.start_feed(ids, self.changed, int(self.cfg.market.max_ahead * 1000))
        self._sync_clocks()
        await self.warm_betas()
        spawn = self.tasks.spawn
        spawn(self._cycle_loop(), "engine-cycle")
        spawn(self._pulse(), "engine-pulse")
        spawn(self._reconcile_loop(), "engine-reconcile")
        spawn(self._refresh_on_fills(), "engine-fills")
        spawn(self._watch_abandoned_loop(), "engine-abandoned")
        if self.cfg.portfolio.include_venue_positions:
            for n, link in self.links.items():
                if link.speaks_deribit:
                    spawn(link.watch_own_trades(self._on_own_trades), f"fills-{n}")
        log.info(
            "engine_started",
            venues=list(self.links),
            factors=list(self.cfg.factor_assets),
            instruments=len(self.universe.symbols),
            dry_run=self.cfg.limits.dry_run,
        )

    def load_hedge_markets(self) -> None:
        """Each factor's hedge instrument from its (connected) venue's market metadata."""
        self.hedge_markets = {
            f.asset: hedge_market(
                self.links[f.hedge.venue].market_by_id(f.hedge.symbol),
                self.links[f.hedge.venue].amount_is_units,
                self.links[f.hedge.venue].decimal_places,
            )
            for f in self.cfg.factors
        }
        self.params = self.cfg.cycle_params(self.hedge_markets)

    async def stop(self, cancel_open_orders: bool = True, drain_s: float = 15.0) -> None:
        """Stop cycling; a hedge in flight is let finish (bounded) so that no order is left
        journaled but unresolved by a clean shutdown."""
        self._stopping.set()
        try:
            await asyncio.wait_for(self._idle.wait(), drain_s)
        except TimeoutError:
            log.error("stop_with_hedge_in_flight", waited_s=drain_s)
        await self.tasks.stop()
        self._idle.set()
        if cancel_open_orders:
            with contextlib.suppress(Exception):
                await self.cancel_own_open_orders("shutdown")
        for link in self.links.values():
            await link.close()
        log.info("engine_stopped")

    # -- reconciliation -----------------------------------------------------------------------

    async def reconcile_orders(self) -> None:
        """Settle every journaled order of unknown fate, then cancel leftovers on venues."""
        await settle_journaled_orders(self.executors)
        await self.cancel_own_open_orders("start-up")

    async def cancel_own_open_orders(self, why: str) -> int:
        """Cancel this daemon's open orders: their decision is stale."""
        return await cancel_own_open_orders(
            self.links, self.journal, self.cfg.name, self.clock_ms, why
        )

    async def refresh_positions(self) -> None:
        """Positions from every venue plus the declared holdings; rebuild what depends on them.

        Several tasks read positions (after a hedge, on a fill, on a timer, on a reload):
        each read takes a sequence number before it asks, and a read that an older one
        overtook is dropped, so a slower, older answer never replaces a newer one."""
        self._reads_started += 1
        seq = self._reads_started
        positions = await self._read_positions(self.cfg)
        if seq < self._read_committed:
            log.info("positions_read_superseded", seq=seq, committed=self._read_committed)
            return
        self._commit(self._plan(self.cfg, positions))
        self._read_committed = seq
        self.positions_reconciled = True

    async def _read_positions(self, cfg: Config) -> list[Position]:
        positions = declared_positions(cfg)
        if cfg.portfolio.include_venue_positions:
            for link in self.links.values():
                positions += await link.positions()
        return positions

    def _plan(self, cfg: Config, positions: list[Position], reset_betas: bool = False) -> _Built:
        """Everything that depends on the positions and the config, built without touching
        the engine: a book nobody can price raises here, before anything was swapped."""
        factors = cfg.factor_assets
        beta_assets = () if reset_betas else self.beta_assets
        book = build_book(positions, (*factors, *beta_assets))
        previous = self.universe
        universe = build_universe(
            book,
            positions,
            {name: link.markets for name, link in self.links.items()},
            cfg.factors,
            cfg.portfolio.reference.implied_vols,
            existing=previous.subscriptions if previous else None,
        )
        beta = None
        if book.assets != beta_assets:
            beta = make_beta_book(cfg.beta, book.assets, factors, self.clock_ms())
        hedge_rows = {}
        for f in cfg.factors:
            link = self.links[f.hedge.venue]
            symbol = link.market_by_id(f.hedge.symbol)["symbol"]
            for row, position in enumerate(positions):
                inst = position.instrument
                if inst.venue == f.hedge.venue and inst.symbol == symbol:
                    hedge_rows[f.hedge.symbol] = row
        return _Built(
            positions=positions,
            book=book,
            universe=universe,
            factor_index=factor_indices(book.assets, factors),
            delta_one=self._delta_one_rows(universe),
            hedge_rows=hedge_rows,
            beta=beta,
        )

    def _commit(self, built: _Built) -> None:
        """Swap in what ``_plan`` built (no step of it can fail half-way)."""
        previous = self.universe
        universe = built.universe
        self.positions, self.book, self.universe = built.positions, built.book, universe
        self._factor_idx, self._delta_one = built.factor_index, built.delta_one
        self._hedge_rows = built.hedge_rows
        if previous is not None and universe.symbols != previous.symbols:
            # A position in an instrument nobody streams yet: its rows stay empty (so the
            # staleness gate refuses to hedge) until the feed has resubscribed.
            added = sorted(set(universe.symbols) - set(previous.symbols))
            log.warning("universe_grew", added=added)
            for name, link in self.links.items():
                grown = universe.subscriptions[name]
                if link.market is not None and grown != previous.subscriptions[name]:
                    link.grow_state(grown)
                    self.tasks.spawn(link.reopen_feed(), f"resubscribe-{name}", forever=False)
            rows = {symbol: row for row, symbol in enumerate(previous.symbols)}
            source = [rows.get(symbol, -1) for symbol in universe.symbols]
            self.plausibility = self.plausibility.remap(source)
            self.index_plausibility = self.index_plausibility.remap(source)
        if built.beta is not None:
            if self.beta_assets:
                log.warning("betas_reset", assets=list(built.book.assets))
            self.beta_assets = built.book.assets
            self.beta_book, self.prior_only_assets = built.beta

    def _delta_one_rows(self, universe: Universe) -> NDArray[np.bool_]:
        """Per market row: not an option (the mark-vs-index and jump checks apply)."""
        flags = []
        for venue in universe.venues:
            link = self.links[venue]
            for instrument_id in universe.subscriptions[venue]:
                flags.append(not link.market_by_id(instrument_id).get("option"))
        return np.array(flags, dtype=np.bool_)

    async def warm_betas(self) -> None:
        """Warm-start the estimators from each asset's OHLCV history (configurable)."""
        assert self.universe is not None and self.beta_book is not None
        await warm_start_betas(
            self.beta_book,
            self.beta_assets,
            self.universe.price_source,
            self.links,
            self.cfg.beta.warmup,
            self.clock_ms(),
            self.prior_only_assets,
        )

    # -- the cycle ----------------------------------------------------------------------------

    def _columns(self) -> tuple[NDArray[np.float64], ...]:
        """mark, index, underlying, IV, receive time, bid, ask and update count over every
        venue, in universe order."""
        assert self.universe is not None
        states = [
            self.links[v].market.state  # type: ignore[union-attr]
            for v in self.universe.venues
            if self.universe.subscriptions[v]
        ]
        names = (
            *("mark", "index", "underlying_price", "mark_iv", "received_s"),
            *("bid", "ask", "updates"),
        )
        if len(states) == 1:
            return tuple(getattr(states[0], n) for n in names)
        return tuple(np.concatenate([getattr(s, n) for s in states]) for n in names)

    def compute(self, now_ms: int, now_s: float) -> guards.GuardResult | None:
        """One cycle of the core (``core.cycle.step``, the backtest's too) on this instant's
        columns; returns what the guards decided (None: the policy wanted nothing)."""
        state, outputs = step(self._cycle_state(), self._cycle_inputs(now_ms, now_s), self.params)
        self.plausibility, self.index_plausibility = state.plausibility, state.index_plausibility
        self.last_hedge_ms = state.last_hedge_ms
        self.stale_inputs = outputs.stale_inputs
        self.implausible_inputs = outputs.implausible_inputs
        if outputs.implausible_inputs:
            self.stats.implausible_cycles += 1
        self.betas, self.exposure = outputs.betas, outputs.exposure
        self.decisions = outputs.decisions
        self._set_guard(state.guard, "guards")
        if outputs.checked is not None:
            self._report_refusals(outputs.checked)
        return outputs.checked

    def _cycle_state(self) -> CycleState:
        assert self.beta_book is not None
        return CycleState(
            self.beta_book,
            self.guard_state,
            self.last_hedge_ms,
            self.plausibility,
            self.index_plausibility,
        )

    def _market_inputs(
        self, now_s: float, columns: tuple[NDArray[np.float64], ...] | None = None
    ) -> MarketInputs:
        assert self.universe is not None
        columns = self._columns() if columns is None else columns
        mark, index, _, _, received, bid, ask, updates = columns
        age = now_s - received
        age[np.isnan(age)] = np.inf
        return MarketInputs(
            symbols=self.universe.symbols,
            inputs=self.universe.quote_map.inputs,
            age_s=age,
            mark=mark,
            index=index,
            bid=bid,
            ask=ask,
            updates=updates.astype(np.int64),
            delta_one=self._delta_one,
        )

    def _cycle_inputs(self, now_ms: int, now_s: float) -> CycleInputs:
        """This instant's market columns, book and hedge positions, as the step reads them."""
        assert self.book is not None and self.universe is not None
        book, qmap = self.book, self.universe.quote_map
        columns = self._columns()
        mark, index, underlying, iv = columns[:4]
        market = self._market_inputs(now_s, columns)
        hedge_bid, hedge_ask, fee, amount = [], [], [], []
        for f in self.cfg.factors:
            link = self.links[f.hedge.venue]
            row = link.market.state.rows[f.hedge.symbol] if link.market else None
            hedge_bid.append(np.nan if row is None else link.market.state.bid[row])  # type: ignore[union-attr]
            hedge_ask.append(np.nan if row is None else link.market.state.ask[row])  # type: ignore[union-attr]
            fee.append(float(link.market_by_id(f.hedge.symbol).get("taker") or 0.0))
            book_row = self._hedge_rows.get(f.hedge.symbol)
            size = self.hedge_markets[f.asset].amount_size
            amount.append(0.0 if book_row is None else float(book.size[book_row]) / size)
        return CycleInputs(
            now_ms=now_ms,
            book=book,
            quotes=qmap.quotes(mark, index, underlying, iv, book.asset_of, book.option_rows),
            factor_index=self._factor_idx,
            market=market,
            hedge_amount=np.array(amount),
            hedge_bid=np.array(hedge_bid, dtype=np.float64),
            hedge_ask=np.array(hedge_ask, dtype=np.float64),
            taker_fee=np.array(fee),
            positions_reconciled=self.positions_reconciled,
        )

    def _report_refusals(self, checked: guards.GuardResult) -> None:
        for refusal in checked.refused:
            self.stats.guard_refusals[refusal_kind(refusal)] += 1
        gate = checked.refused[0].reason if checked.refused and not checked.approved else None
        if gate != self._last_gate and gate is not None:
            log.warning("hedge_refused", reason=gate, intents=len(checked.refused))
        self._last_gate = gate

    async def _cycle_loop(self) -> None:
        while True:
            await self.changed.wait()
            self.changed.clear()
            started = time.perf_counter()
            now_ms, now_s = self.clock_ms(), self.monotonic()
            self._sync_clocks(now_ms, now_s)
            try:
                checked = self.compute(now_ms, now_s)
            except Exception as exc:
                # The core failed on this input: nothing it decides can be trusted until an
                # operator has looked, but the loop goes on (staleness, metrics, status).
                log.exception("cycle_failed", error=repr(exc))
                if self.guard_state.trading is not guards.TradingState.HALTED:
                    self.journal.record_event(
                        now_ms=now_ms, kind="cycle_failed", payload={"error": repr(exc)}
                    )
                self.halt(f"cycle failed: {type(exc).__name__}: {exc}")
                await asyncio.sleep(0.5)
                continue
            self.stats.cycles += 1
            self.last_cycle_s = self.monotonic()
            self.stats.cycle_seconds.observe(time.perf_counter() - started)
            inside = self.inside_band()
            if inside is not None:
                self.stats.decided_cycles += 1
                self.stats.inside_band_cycles += inside
            if checked is not None and checked.approved and not self._stopping.is_set():
                self._idle.clear()
                try:
                    await self._hedge(checked, now_ms)
                except Exception as exc:
                    # Whatever escaped the executor's own handling: never a silent stop.
                    log.exception("hedge_crashed", error=repr(exc))
                    self.journal.record_event(
                        now_ms=self.clock_ms(),
                        kind="hedge_crashed",
                        payload={"error": f"{type(exc).__name__}: {exc}"},
                    )
                    self.halt(f"hedge crashed: {type(exc).__name__}: {exc}")
                finally:
                    self._idle.set()

    async def _pulse(self) -> None:
        """Wake the cycle when no tick does, so staleness is noticed and reported; while a
        hedge is in flight (the cycle awaits its order) keep staleness current here, so
        readiness never freezes on the last cycle's view."""
        interval = self.pulse_interval_s
        while True:
            await asyncio.sleep(interval)
            self._sync_clocks()
            if not self._idle.is_set():
                self._stale_inputs_now()
            self.changed.set()

    @property
    def hedging(self) -> bool:
        """A decision's orders are being sent (the cycle awaits them)."""
        return not self._idle.is_set()

    @property
    def pulse_interval_s(self) -> float:
        return max(0.05, min(1.0, self.cfg.market.stale_after / 4))

    def _sync_clocks(self, now_ms: int | None = None, now_s: float | None = None) -> None:
        """Tell each market state what our clock says now, so it can refuse ticks stamped
        in the future on the engine's (possibly simulated) clock, not the wall's."""
        now_ms = self.clock_ms() if now_ms is None else now_ms
        now_s = self.monotonic() if now_s is None else now_s
        for link in self.links.values():
            if link.market is not None:
                link.market.state.set_clock(now_ms, now_s)

    def _on_own_trades(self, labels: Sequence[str]) -> None:
        self.stats.own_trades_seen += len(labels)
        if any(self._is_in_doubt(label) for label in labels):
            self._late_fill_seen.set()
        self._fills_seen.set()

    def _is_in_doubt(self, client_id: str) -> bool:
        if not is_own_client_id(client_id, self.cfg.name):
            return False
        record = self.journal.order(client_id)
        return record is not None and not record.is_final

    async def watch_abandoned(self) -> int:
        """Look up every abandoned order now (a late fill is adopted, positions re-read)."""
        changed = 0
        for executor in self.executors.values():
            changed += len(await executor.watch_abandoned())
        return changed

    async def _watch_abandoned_loop(self) -> None:
        """Abandoned orders are looked up on a timer and at once when the account's trade
        stream shows one of their labels, so a late fill is in the journal before the next
        decision (positions themselves come from the venue)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._late_fill_seen.wait(), ABANDONED_POLL_S)
            self._late_fill_seen.clear()
            try:
                if await self.watch_abandoned():
                    await self.refresh_positions()
                    self.changed.set()
            except Exception as exc:
                log.warning("abandoned_watch_failed", error=repr(exc))

    async def _refresh_on_fills(self) -> None:
        """Re-read positions soon after the account trades, between reconciliations (a
        hedge re-reads them itself; this catches fills of resting orders and of anyone
        else trading the account). Bursts of trades cost one refresh."""
        while True:
            await self._fills_seen.wait()
            await asyncio.sleep(0.2)
            await self._idle.wait()
            self._fills_seen.clear()
            try:
                await self.refresh_positions()
            except Exception as exc:
                self.positions_reconciled = False
                log.warning("reconcile_failed", error=repr(exc))
            else:
                self.changed.set()

    async def _reconcile_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.market.reconcile_every)
            try:
                await self.refresh_positions()
            except Exception as exc:
                self.positions_reconciled = False
                log.warning("reconcile_failed", error=repr(exc))

    # -- hedging ------------------------------------------------------------------------------

    async def _hedge(self, checked: guards.GuardResult, now_ms: int) -> None:
        by_factor: dict[str, list[HedgeIntent]] = {}
        for intent in checked.approved:
            by_factor.setdefault(intent.factor, []).append(intent)
        for factor_name, legs in by_factor.items():
            await self._hedge_factor(factor_name, legs, now_ms, checked.dry_run)
        try:
            await self.refresh_positions()
        except Exception as exc:
            self.positions_reconciled = False
            log.warning("reconcile_failed", error=repr(exc))

    async def _hedge_factor(
        self, factor_name: str, legs: Sequence[HedgeIntent], now_ms: int, dry_run: bool
    ) -> None:
        factor = next(f for f in self.cfg.factors if f.asset == factor_name)
        venue = factor.hedge.venue
        first = legs[0]
        decision = next(d for d in self.decisions if d.factor == factor_name)
        total = sum(leg.amount for leg in legs)
        notional = sum(leg.notional_usd for leg in legs)
        payload = {
            "beta_delta": decision.beta_delta,
            "target": decision.target,
            "deviation": decision.deviation,
            "band_half_width": decision.band_half_width,
            "legs": [leg.amount for leg in legs],
            "dry_run": dry_run,
            "nav_usd": self.exposure.nav_usd if self.exposure else None,
        }
        seq = self.journal.record_intent(
            now_ms=now_ms,
            factor=factor_name,
            symbol=first.symbol,
            side=first.side,
            qty=total,
            notional_usd=notional,
            reason=first.reason,
            decision=payload,
        )
        self.last_hedge_ms[factor_name] = now_ms
        log.info(
            "hedge_decided",
            intent_seq=seq,
            factor=factor_name,
            venue=venue,
            symbol=first.symbol,
            side=first.side,
            qty=total,
            notional_usd=round(notional, 2),
            beta_delta=decision.beta_delta,
            target=decision.target,
            deviation=decision.deviation,
            band_half_width=decision.band_half_width,
            reason=first.reason,
            dry_run=dry_run,
        )
        if dry_run:
            self.stats.hedge_orders[(venue, first.symbol, "dry_run")] += len(legs)
            self._remember(now_ms, factor_name, venue, first, total, notional, "dry_run", seq)
            return
        executor = self.executors[venue]
        market = self.hedge_markets[factor_name]
        filled_usd = 0.0
        for done, leg in enumerate(legs):
            stop = self.slice_gate(now_ms)
            if stop is not None:
                self._stop_intent(seq, factor_name, venue, leg, legs[done:], stop, done, filled_usd)
                break
            # Counted (and journaled) before the request leaves: a request of unknown fate
            # may still fill, and a restart must not forget it in the rolling limits.
            self.journal.record_sent_notional(now_ms=self.clock_ms(), notional_usd=leg.notional_usd)
            self._set_guard(
                guards.record_order(self.guard_state, self.clock_ms(), leg.notional_usd), "engine"
            )
            sent = time.perf_counter()
            result = "filled"
            try:
                fill = await executor.execute(
                    seq,
                    leg.leg,
                    leg.symbol,
                    leg.side,
                    leg.amount,
                    limit_price=self._limit_price(venue, leg),
                    limit_timeout_s=self.cfg.hedge.order.limit_timeout,
                    amount_step=market.amount_step,
                    may_continue=lambda: self.slice_gate(now_ms),
                )
                if fill.stopped is not None:
                    result = "stopped"
                elif fill.filled_total < leg.amount:
                    result = "partial" if fill.filled_total > 0 else "failed"
                filled_usd += leg.notional_usd * min(1.0, fill.filled_total / leg.amount)
                self._set_guard(guards.record_success(self.guard_state), "engine")
            except OrderRefusedError as exc:
                result = "rejected"
                self._set_guard(
                    guards.record_error(
                        self.guard_state, self.clock_ms(), self.params.limits, exc.reason
                    ),
                    "kill_switch",
                )
            except ExecutionFailedError as exc:
                result = "failed"
                self._set_guard(
                    guards.record_error(
                        self.guard_state, self.clock_ms(), self.params.limits, str(exc)
                    ),
                    "kill_switch",
                )
            except ExecutionFaultError as exc:
                result = "failed"
                self.halt(f"unclassified order error: {exc}")
            self.stats.order_latency_seconds.observe(time.perf_counter() - sent)
            result = hedge_result(result)
            self.stats.hedge_orders[(venue, leg.symbol, result)] += 1
            if result in ("filled", "partial"):
                notional_total = self.stats.hedge_notional_usd
                notional_total[venue] = notional_total.get(venue, 0.0) + leg.notional_usd
            self._remember(
                now_ms, factor_name, venue, leg, leg.amount, leg.notional_usd, result, seq
            )
            if result == "stopped":
                self._stop_intent(
                    seq,
                    factor_name,
                    venue,
                    leg,
                    legs[done + 1 :],
                    fill.stopped or "",
                    done + 1,
                    filled_usd,
                )
                break
            if result not in ("filled", "partial"):
                log.error(
                    "hedge_failed",
                    intent_seq=seq,
                    leg=leg.leg,
                    result=result,
                    trading=self.guard_state.trading.value,
                    halted_reason=self.guard_state.reason,
                )
                break  # the rest of the decision waits for fresh positions and a new cycle

    def slice_gate(self, decided_ms: int) -> str | None:
        """Why the next slice of a decision taken at ``decided_ms`` must not go out, or None.

        Asked before every slice and between the limit and market parts of a leg: a pause,
        a halt, a dry run, a shutdown, stale inputs or an old decision all stop a hedge in
        flight at the next boundary (the slice in flight finishes)."""
        state = self.guard_state
        if self._stopping.is_set():
            return "shutdown"
        if state.trading is not guards.TradingState.RUNNING:
            return f"{state.trading.value}: {state.reason or 'no reason recorded'}"
        if state.dry_run or self.cfg.limits.dry_run:
            return "dry_run"
        age_s = (self.clock_ms() - decided_ms) / 1000.0
        max_age_s = self.cfg.hedge.max_decision_age
        if age_s > max_age_s:
            return f"decision is {age_s:.1f} s old (max_decision_age {max_age_s:g} s)"
        market = self._market_inputs(self.monotonic())
        stale = self._stale_inputs_now(market)
        if stale:
            return f"stale inputs: {', '.join(stale)}"
        assessed, implausible = implausible_inputs(
            self._cycle_state(), market, self.params.plausibility
        )
        self.plausibility = assessed.plausibility
        self.index_plausibility = assessed.index_plausibility
        self.implausible_inputs = implausible
        if implausible:
            return f"implausible data: {', '.join(implausible)}"
        return None

    def _stale_inputs_now(self, market: MarketInputs | None = None) -> tuple[str, ...]:
        if self.universe is None:
            return ()
        market = self._market_inputs(self.monotonic()) if market is None else market
        self.stale_inputs = stale_inputs(market, self.cfg.market.stale_after)
        return self.stale_inputs

    def _stop_intent(
        self,
        seq: int,
        factor_name: str,
        venue: str,
        leg: HedgeIntent,
        rest: Sequence[HedgeIntent],
        why: str,
        legs_done: int,
        filled_usd: float,
    ) -> None:
        """Journal and report a decision stopped part-way, with what it did fill."""
        self.journal.record_event(
            now_ms=self.clock_ms(),
            kind="intent_stopped",
            payload={
                "intent_seq": seq,
                "why": why,
                "legs_done": legs_done,
                "legs_not_sent": len(rest),
                "filled_notional_usd": filled_usd,
            },
        )
        log.warning(
            "intent_stopped",
            intent_seq=seq,
            factor=factor_name,
            why=why,
            legs_done=legs_done,
            legs_not_sent=len(rest),
            filled_notional_usd=round(filled_usd, 2),
        )
        if rest:
            self.stats.hedge_orders[(venue, leg.symbol, "stopped")] += len(rest)

    def _limit_price(self, venue: str, leg: HedgeIntent) -> float | None:
        """None for market orders; else the near touch improved by the configured offset
        (a buy bids above the best bid, a sell offers below the best ask), on the tick."""
        order = self.cfg.hedge.order
        link = self.links[venue]
        if order.type != "limit" or link.market is None:
            return None
        state = link.market.state
        row = state.rows[leg.symbol]
        offset = order.limit_offset_bps / 10_000.0
        if leg.side == "buy":
            price = float(state.bid[row]) * (1.0 + offset)
        else:
            price = float(state.ask[row]) * (1.0 - offset)
        if not (price > 0 and np.isfinite(price)):
            return None  # no touch to lean on: a market order, as configured for the rest
        symbol = link.market_by_id(leg.symbol)["symbol"]
        return link.broker.round_price(symbol, price)

    def _remember(
        self,
        now_ms: int,
        factor: str,
        venue: str,
        intent: HedgeIntent,
        qty: float,
        notional: float,
        result: str,
        seq: int,
    ) -> None:
        self.recent_hedges.append(
            HedgeRecord(
                now_ms,
                factor,
                venue,
                intent.symbol,
                intent.side,
                qty,
                notional,
                result,
                intent.reason,
                seq,
            )
        )

    # -- operator actions ---------------------------------------------------------------------

    async def apply_config(self, cfg: Config, changed_paths: Sequence[str]) -> None:
        """Swap in a validated config whose changes are all live-safe (see hedger.config.reload),
        all or nothing: the positions, book, universe, estimators and core parameters it
        implies are built first, and any failure (an asset no venue prices, a venue that
        cannot be read) raises with the engine untouched.

        The next cycle decides with it. Beta settings rebuild the estimators (and warm them
        from history again); declared holdings re-read the positions.
        """
        betas_changed = any(p.startswith("beta.") for p in changed_paths)
        positions = self.positions
        seq = self._read_committed
        if any(p.startswith("portfolio.") for p in changed_paths):
            # The new declared holdings need a read of their own; one that a newer read
            # overtook is read again rather than swapped in over it.
            for _ in range(3):
                self._reads_started += 1
                seq = self._reads_started
                positions = await self._read_positions(cfg)
                if seq > self._read_committed:
                    break
            else:
                raise RuntimeError("positions kept changing while the reload read them")
        built = self._plan(cfg, positions, reset_betas=betas_changed)
        params = cfg.cycle_params(self.hedge_markets)
        # Nothing below can fail: the swap.
        self.cfg, self.params = cfg, params
        self._commit(built)
        self._read_committed = seq
        if cfg.limits.dry_run != self.guard_state.dry_run:
            self._set_guard(guards.set_dry_run(self.guard_state, cfg.limits.dry_run), "reload")
        if betas_changed:
            await self.warm_betas()
        self.changed.set()

    def pause(self, reason: str = "by operator", by: str = "operator") -> None:
        self._set_guard(guards.pause(self.guard_state, self.clock_ms(), reason), by)

    def resume(self, by: str = "operator") -> None:
        self._set_guard(guards.resume(self.guard_state, self.clock_ms()), by)

    @property
    def trading_state(self) -> str:
        """running, paused, halted or dry_run (dry run only matters while running)."""
        state = self.guard_state.trading
        dry = self.guard_state.dry_run or self.cfg.limits.dry_run
        if state is guards.TradingState.RUNNING and dry:
            return "dry_run"
        return state.value

    def oldest_input_age_s(self, venue: str, now_s: float) -> float | None:
        """Seconds since the least recently updated input row of ``venue`` (inf: never)."""
        link = self.links[venue]
        if self.universe is None or link.market is None:
            return None
        start = self.universe.offsets[venue]
        inputs = self.universe.quote_map.inputs
        mine = inputs[(inputs >= start) & (inputs < start + len(link.market.state))] - start
        if not len(mine):
            return None
        return float(link.market.state.age_seconds(now_s, mine).max())

    def decision_of(self, factor: str) -> Decision | None:
        return next((d for d in self.decisions if d.factor == factor), None)

    def inside_band(self) -> bool | None:
        """Every factor held inside its band this cycle (None before the first decision)."""
        if not self.decisions or any(np.isnan(d.deviation) for d in self.decisions):
            return None
        return all(
            d.action is Action.HOLD or abs(d.deviation) <= d.band_half_width for d in self.decisions
        )
