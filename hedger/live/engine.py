"""The live cycle: wait for new quotes -> exposure -> decide -> guard -> execute.

One asyncio task runs the cycle. Feeds only overwrite the latest quote per instrument and
set one shared event; a cycle reads every venue's columns once, however many ticks landed
since the last one (conflation: work scales with CPU, never with message rate). Everything
between the wake-up and the first order is synchronous core code, so no tick can land
half-way through a computation. An order is awaited inside the cycle: while it is in
flight nothing else is decided, which is the first of the guarantees against a double hedge
(the second is the journal; see ``hedger.execution.executor``).

The cycle task is the only writer of the book, universe, estimators and config: other tasks
post what they read (``hedger.live.inputs``) and the cycle applies it at the start of a
cycle and between the slices of a hedge.

Before the first hedge the engine reconciles: journaled orders of unknown fate are looked
up on their venue, this daemon's orders still open on a venue (found by client-id prefix)
are cancelled, and positions are loaded. Positions are read again after every hedge and
every ``market.reconcile_every``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import structlog
from numpy.typing import NDArray

from hedger.config import Config, Venue
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
from hedger.core.exposure import Book, Exposure, Position
from hedger.core.instruments import Kind
from hedger.core.margin import MarginAction, MarginCheck, check_margins
from hedger.core.option_candidates import OptionChain
from hedger.core.option_legs import OptionDecision
from hedger.core.plausibility import PlausibilityState
from hedger.core.policy import Action, Decision, HedgeIntent, HedgeMarket
from hedger.execution.executor import Executor
from hedger.execution.journal import Journal, is_own_client_id
from hedger.execution.margin_read import hedge_legs
from hedger.live.activity import EngineStats, HedgeRecord, refusal_kind
from hedger.live.book_plan import BookPlan, all_positions, plan_book
from hedger.live.dead_man import DeadManSwitch, make_dead_man
from hedger.live.flatten import run_flatten
from hedger.live.hedging import DecisionSender, FactorOrder
from hedger.live.inputs import Flatten, Inbox, PositionsRead, PositionsReadFailed, Reload
from hedger.live.reconcile import cancel_own_open_orders, settle_journaled_orders
from hedger.live.trading_guard import TradingGuard
from hedger.live.venue_link import VenueLink
from hedger.live.warmup import warm_start_betas
from hedger.market.option_chain import build_chain
from hedger.market.universe import Universe, hedge_market
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
        self.inputs = Inbox(self.changed)
        self.guard = TradingGuard(journal, cfg.limits.to_core(), self.clock_ms)
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
        self.sender = DecisionSender(
            journal, self.executors, self.links, self.guard, self.stats, self.clock_ms
        )
        self.venue_positions: tuple[Position, ...] = ()
        self._venues_read = False
        """Whether ``venue_positions`` came from a read that asked the venues."""
        self.positions: list[Position] = []
        self._reads_started = 0
        self._read_applied = 0
        """Sequence numbers of position reads: started, and the newest one applied."""
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
        self.started_ms: int | None = None
        self._factor_idx: NDArray[np.intp] = np.zeros(0, dtype=np.intp)
        self._hedge_rows: dict[str, int] = {}
        self._chains: dict[str, tuple[str, ...]] = {}
        """Per venue: the options streamed for option hedges (see ``live/book_plan.py``)."""
        self.option_decisions: tuple[OptionDecision, ...] = ()
        self.option_checked: guards.OptionGuardResult | None = None
        self.margin_check: MarginCheck | None = None
        """The hedge legs' liquidation distances after the last position read."""
        self.dead_men: dict[str, DeadManSwitch] = {}
        self.tasks = Supervisor(self._task_failed)
        self._cycle_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._fills_seen = asyncio.Event()
        self._late_fill_seen = asyncio.Event()
        self._last_gate: str | None = None
        self._flattens: deque[Flatten] = deque()

    # -- trading state ------------------------------------------------------------------------

    @property
    def guard_state(self) -> guards.GuardState:
        return self.guard.state

    @property
    def recent_hedges(self) -> deque[HedgeRecord]:
        return self.sender.recent

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
        self.guard.halt(reason, by)

    def pause(self, reason: str = "by operator", by: str = "operator") -> None:
        self.guard.pause(reason, by)

    def resume(self, by: str = "operator") -> None:
        self.guard.resume(by)

    @property
    def trading_state(self) -> str:
        """running, paused, halted or dry_run (dry run only matters while running)."""
        return self.guard.label(self.cfg.limits.dry_run)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, reconcile, load positions, subscribe and warm the betas; then cycle."""
        self.started_ms = self.clock_ms()
        for link in self.links.values():
            link.supervise = self.tasks.watch
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
        await self._arm_dead_men()
        spawn = self.tasks.spawn
        self._cycle_task = spawn(self._cycle_loop(), "engine-cycle")
        spawn(self._pulse(), "engine-pulse")
        spawn(self._reconcile_loop(), "engine-reconcile")
        spawn(self._refresh_on_fills(), "engine-fills")
        spawn(self._watch_abandoned_loop(), "engine-abandoned")
        spawn(self._exposure_log_loop(), "engine-exposure-log")
        if self.cfg.portfolio.include_venue_positions:
            for n, link in self.links.items():
                if link.speaks_deribit:
                    spawn(link.watch_own_trades(self._on_own_trades), f"fills-{n}")
        for n, switch in self.dead_men.items():
            spawn(switch.run(asyncio.Event()), f"dead-man-{n}")
        log.info(
            "engine_started",
            venues=list(self.links),
            factors=list(self.cfg.factor_assets),
            instruments=len(self.universe.symbols),
            dry_run=self.cfg.limits.dry_run,
        )

    async def _arm_dead_men(self) -> None:
        """Each venue's dead-man's switch where configured, armed once before trading: a
        venue that refuses it (Bybit without DCP) refuses the start."""
        for name, link in self.links.items():
            switch = make_dead_man(
                link.client, name, link.cfg, functools.partial(self._hedge_symbols, name)
            )
            if switch is not None:
                await switch.refresh()
                self.dead_men[name] = switch
                log.info("dead_man_armed", venue=name, timeout_s=link.cfg.dead_man.timeout)

    def _hedge_symbols(self, venue: str) -> list[str]:
        """The hedge instruments traded on ``venue`` under the running config."""
        return [f.hedge.symbol for f in self.cfg.factors if f.hedge.venue == venue]

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
        for post in (*self.inputs.drain(), *self._flattens):
            if isinstance(post, Reload | Flatten) and not post.done.done():
                post.done.set_exception(RuntimeError("the daemon stopped before applying it"))
        if cancel_open_orders:
            with contextlib.suppress(Exception):
                await self.cancel_own_open_orders("shutdown")
        for name, switch in self.dead_men.items():
            try:
                await switch.disarm()
            except Exception as exc:  # the timer fires on its own: orders get cancelled anyway
                log.warning("dead_man_disarm_failed", venue=name, error=repr(exc))
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

    # -- inputs: position reads and reloads, applied by the cycle -------------------------------

    def _next_read(self) -> int:
        """A read's number, taken before its request leaves."""
        self._reads_started += 1
        return self._reads_started

    async def _ask_venues(self, cfg: Config) -> tuple[Position, ...]:
        held: list[Position] = []
        if cfg.portfolio.include_venue_positions:
            for link in self.links.values():
                held += await link.positions()
        return tuple(held)

    async def read_positions(self, cfg: Config | None = None) -> PositionsRead:
        """What the venues hold now (for ``cfg``, by default the running config)."""
        cfg = self.cfg if cfg is None else cfg
        seq = self._next_read()
        held = await self._ask_venues(cfg)
        return PositionsRead(seq, held, cfg.portfolio.include_venue_positions)

    async def refresh_positions(self) -> None:
        """Read positions and apply them at once (start-up, and the cycle after a hedge).

        Several tasks read positions (after a hedge, on a fill, on a timer, on a reload):
        a read that an older one overtook is dropped, so a slower, older answer never
        replaces a newer one."""
        self.inputs.post(await self.read_positions())
        self.apply_inputs(raise_errors=True)

    async def poll_positions(self) -> None:
        """Read positions and hand them to the cycle (the tasks that are not the cycle)."""
        cfg, seq = self.cfg, self._next_read()
        try:
            held = await self._ask_venues(cfg)
        except Exception as exc:
            log.warning("reconcile_failed", error=repr(exc))
            self.inputs.post(PositionsReadFailed(seq, repr(exc)))
            return
        self.inputs.post(PositionsRead(seq, held, cfg.portfolio.include_venue_positions))

    def apply_inputs(self, raise_errors: bool = False) -> None:
        """Apply what other tasks posted, in order (the cycle task, or before it runs)."""
        for post in self.inputs.drain():
            if isinstance(post, Reload):
                self._apply_reload(post)
            elif isinstance(post, Flatten):
                self._flattens.append(post)  # sent by the cycle when no hedge is in flight
            elif post.seq < self._read_applied:
                self.stats.superseded_position_reads += 1
                log.info("positions_read_superseded", seq=post.seq, applied=self._read_applied)
            elif isinstance(post, PositionsReadFailed):
                self.positions_reconciled = False
            else:
                try:
                    self._apply_read(post)
                except Exception as exc:
                    self.positions_reconciled = False
                    if raise_errors:
                        raise
                    log.warning("reconcile_failed", error=repr(exc))

    def _apply_read(self, read: PositionsRead) -> None:
        positions = all_positions(self.cfg, read.venue_positions)
        self._commit(self._plan(self.cfg, positions))
        self.venue_positions, self._venues_read = read.venue_positions, read.asked_venues
        self._read_applied = read.seq
        self.positions_reconciled = True
        self._check_margins()

    def _check_margins(self) -> None:
        """The hedge legs' distance to liquidation, from the positions just read: a breach is
        logged and journaled on entry; under ``limits.on_margin_breach: reduce`` the leg is
        cut to the share the policy names and the daemon pauses for an operator."""
        legs = []
        for name, link in self.links.items():
            mine = [f.hedge.symbol for f in self.cfg.factors if f.hedge.venue == name]
            if mine and link.position_rows:
                legs += hedge_legs(
                    link.position_rows, link.markets, link.cfg.exchange, name, mine, link.balance
                )
        before = (
            {(r.venue, r.instrument) for r in self.margin_check.breaches}
            if self.margin_check
            else set()
        )
        self.margin_check = check_margins(legs, self.cfg.limits.margin_policy())
        for reading in self.margin_check.breaches:
            if (reading.venue, reading.instrument) in before:
                continue
            payload = {
                "venue": reading.venue,
                "instrument": reading.instrument,
                "liquidation_distance": reading.liquidation_distance,
                "shortfall": reading.shortfall,
                "reduce_to_fraction": reading.reduce_to_fraction,
            }
            log.error("hedge_margin_breach", **payload)
            self.journal.record_event(
                now_ms=self.clock_ms(), kind="hedge_margin_breach", payload=payload
            )
            if self.margin_check.action is MarginAction.REDUCE:
                factor = next(
                    f.asset
                    for f in self.cfg.factors
                    if f.hedge.venue == reading.venue and f.hedge.symbol == reading.instrument
                )
                done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
                done.add_done_callback(_quiet)
                self._flattens.append(
                    Flatten(
                        (factor,),
                        False,
                        "margin_guard",
                        done,
                        keep_fraction=reading.reduce_to_fraction,
                    )
                )

    def _apply_reload(self, reload: Reload) -> None:
        """All or nothing: a config that cannot be planned leaves the engine untouched and
        its caller gets the error."""
        try:
            read = reload.read
            if read is not None and read.seq < self._read_applied and self._venues_read:
                read = None  # a newer read of the same venues landed first
            held = self.venue_positions if read is None else read.venue_positions
            reset = any(p.startswith("beta.") for p in reload.changed_paths)
            plan = self._plan(reload.cfg, all_positions(reload.cfg, held), reset_betas=reset)
            params = reload.cfg.cycle_params(self.hedge_markets)
        except Exception as exc:
            if not reload.done.done():
                reload.done.set_exception(exc)
            return
        # Nothing below can fail: the swap.
        self.cfg, self.params = reload.cfg, params
        if reload.warmed is not None and reload.warmed[0] == plan.book.assets:
            plan = replace(plan, beta=reload.warmed[1])
        self._commit(plan)
        if read is not None:
            self.venue_positions, self._venues_read = read.venue_positions, read.asked_venues
            self._read_applied = max(self._read_applied, read.seq)
        dry_run = reload.cfg.limits.dry_run
        if dry_run != self.guard.state.dry_run:
            self.guard.set(guards.set_dry_run(self.guard.state, dry_run), "reload")
        if not reload.done.done():
            reload.done.set_result(None)

    def _plan(self, cfg: Config, positions: list[Position], reset_betas: bool = False) -> BookPlan:
        return plan_book(
            cfg,
            positions,
            self.links,
            previous=self.universe,
            beta_assets=() if reset_betas else self.beta_assets,
            now_ms=self.clock_ms(),
        )

    def _commit(self, plan: BookPlan) -> None:
        """Swap in what ``_plan`` built (no step of it can fail half-way)."""
        previous = self.universe
        universe = plan.universe
        self.positions, self.book, self.universe = plan.positions, plan.book, universe
        self._factor_idx, self._delta_one = plan.factor_index, plan.delta_one
        self._hedge_rows = plan.hedge_rows
        self._chains = plan.chains
        if previous is not None and universe.symbols != previous.symbols:
            # A position in an instrument nobody streams yet: its rows stay empty (so the
            # staleness gate refuses to hedge) until the feed has resubscribed.
            added = sorted(set(universe.symbols) - set(previous.symbols))
            log.warning("universe_grew", added=added)
            for name, link in self.links.items():
                grown = universe.subscriptions[name]
                if grown == previous.subscriptions[name]:
                    continue
                if link.market is None:
                    # A venue nothing was streamed from until now (a position just opened
                    # there): its feed starts here.
                    max_ahead_ms = int(self.cfg.market.max_ahead * 1000)
                    link.start_feed(grown, self.changed, max_ahead_ms)
                    continue
                link.grow_state(grown)
                self.tasks.spawn(link.reopen_feed(), f"resubscribe-{name}", forever=False)
            rows = {symbol: row for row, symbol in enumerate(previous.symbols)}
            source = [rows.get(symbol, -1) for symbol in universe.symbols]
            self.plausibility = self.plausibility.remap(source)
            self.index_plausibility = self.index_plausibility.remap(source)
        if plan.beta is not None:
            if self.beta_assets:
                log.warning("betas_reset", assets=list(plan.book.assets))
            self.beta_assets = plan.book.assets
            self.beta_book, self.prior_only_assets = plan.beta

    async def warm_betas(self) -> None:
        """Warm-start the estimators from each asset's OHLCV history (configurable)."""
        assert self.universe is not None and self.beta_book is not None
        await self._warm(self.beta_book, self.beta_assets, self.universe, self.prior_only_assets)

    async def _warm(
        self, book: BetaBook, assets: tuple[str, ...], universe: Universe, prior_only: list[str]
    ) -> None:
        await warm_start_betas(
            book,
            assets,
            universe.price_source,
            self.links,
            self.cfg.beta.warmup,
            self.clock_ms(),
            prior_only,
        )

    async def apply_config(self, cfg: Config, changed_paths: Sequence[str]) -> None:
        """Apply a validated config whose changes are all live-safe (see
        ``hedger.config.reload``), all or nothing: the positions, book, universe, estimators
        and core parameters it implies are built first, and any failure (an asset no venue
        prices, a venue that cannot be read) raises with the engine untouched.

        New estimators (beta settings changed, or the book's assets did) are warmed from
        history before they are swapped in. The cycle applies the config (it is the only
        writer): this returns once it has, and the next decision uses it.
        """
        read = None
        if cfg.portfolio.include_venue_positions and not self._venues_read:
            read = await self.read_positions(cfg)  # the new config reads venues: read them
        held = self.venue_positions if read is None else read.venue_positions
        reset = any(p.startswith("beta.") for p in changed_paths)
        plan = self._plan(cfg, all_positions(cfg, held), reset_betas=reset)
        cfg.cycle_params(self.hedge_markets)
        warmed = None
        if plan.beta is not None:
            beta_book, prior_only = plan.beta
            await self._warm(beta_book, plan.book.assets, plan.universe, prior_only)
            warmed = (plan.book.assets, plan.beta)
        done = asyncio.get_running_loop().create_future()
        self.inputs.post(Reload(cfg, tuple(changed_paths), read, warmed, done))
        cycle = self._cycle_task
        if cycle is None or cycle.done() or asyncio.current_task() is cycle:
            self.apply_inputs()
        await done

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
        self._set_stale(outputs.stale_inputs)
        self.implausible_inputs = outputs.implausible_inputs
        if outputs.implausible_inputs:
            self.stats.implausible_cycles += 1
        self.betas, self.exposure = outputs.betas, outputs.exposure
        self.decisions = outputs.decisions
        self._log_option_skips(outputs.option_decisions)
        self.option_decisions, self.option_checked = (
            outputs.option_decisions,
            outputs.option_checked,
        )
        self.guard.set(state.guard, "guards")
        if outputs.checked is not None:
            self._report_refusals(outputs.checked)
        if outputs.option_checked is not None:
            for option_refusal in outputs.option_checked.refused:
                self.stats.guard_refusals[refusal_kind(option_refusal)] += 1
        return outputs.checked

    def _log_option_skips(self, decisions: Sequence[OptionDecision]) -> None:
        """An option hedge that cannot be done (an infeasible band, a refused solve) is said
        once, when it starts or its reason changes, not on every cycle."""
        before = {d.factor: d for d in self.option_decisions}
        for d in decisions:
            old = before.get(d.factor)
            if d.action is Action.SKIP and d.solver and (old is None or old.solver != d.solver):
                log.warning(
                    "option_hedge_skipped",
                    factor=d.factor,
                    mode=d.mode.value,
                    solver=d.solver,
                    reason=d.reason,
                )

    def _cycle_state(self) -> CycleState:
        assert self.beta_book is not None
        return CycleState(
            self.beta_book,
            self.guard.state,
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
            option_chain=self._option_chain(now_s) if self.params.options.active else None,
        )

    def _option_chain(self, now_s: float) -> OptionChain | None:
        """The streamed options of the (first) venue that hedges with options, with what the
        hedge holds of each: the venue's option positions (the operator's own options are
        declared holdings, never venue positions the hedge may trade away)."""
        for venue, ids in self._chains.items():
            link = self.links[venue]
            if link.market is None or not ids:
                continue
            held: dict[str, float] = {}
            for position in self.venue_positions:
                inst = position.instrument
                if inst.venue == venue and inst.kind is Kind.OPTION and inst.symbol in link.markets:
                    market = link.markets[inst.symbol]
                    size = float(market.get("contractSize") or 1.0)
                    held[str(market["id"])] = held.get(str(market["id"]), 0.0) + position.qty / size
            by_id = {i: link.market_by_id(i) for i in ids}
            return build_chain(ids, by_id, link.market.state, now_s, held)
        return None

    def _report_refusals(self, checked: guards.GuardResult) -> None:
        for refusal in checked.refused:
            self.stats.guard_refusals[refusal_kind(refusal)] += 1
        gate = checked.refused[0].reason if checked.refused and not checked.approved else None
        if gate != self._last_gate and gate is not None:
            log.warning("hedge_refused", reason=gate, intents=len(checked.refused))
            self.journal.record_refusal(
                now_ms=self.clock_ms(), reason=gate, intents=len(checked.refused)
            )
        self._last_gate = gate

    async def _cycle_loop(self) -> None:
        while True:
            await self.changed.wait()
            self.changed.clear()
            started = time.perf_counter()
            now_ms, now_s = self.clock_ms(), self.monotonic()
            self._sync_clocks(now_ms, now_s)
            if self._flattens:
                await self._run_flattens()
                continue
            try:
                self.apply_inputs()
                checked = self.compute(now_ms, now_s)
            except Exception as exc:
                # The core failed on this input: nothing it decides can be trusted until an
                # operator has looked, but the loop goes on (staleness, metrics, status).
                log.exception("cycle_failed", error=repr(exc))
                if self.guard.state.trading is not guards.TradingState.HALTED:
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
            options = self.option_checked
            wanted = (checked is not None and bool(checked.approved)) or (
                options is not None and bool(options.approved)
            )
            if wanted and not self._stopping.is_set():
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

    async def _exposure_log_loop(self) -> None:
        """A periodic ``exposure`` line, so a quiet daemon still says where it stands."""
        while True:
            every_s = self.cfg.logging.exposure_every  # reloadable
            await asyncio.sleep(every_s if every_s > 0 else 5.0)
            if every_s > 0 and self.decisions:
                log.info("exposure", **self.exposure_fields())

    def exposure_fields(self) -> dict[str, Any]:
        """Each factor's beta-delta against its target and band, in the factor's units."""
        fields: dict[str, Any] = {"trading": self.trading_state}
        for d in self.decisions:
            unit = d.factor.lower()
            if np.isnan(d.deviation):
                band = "unknown"
            else:
                band = "inside" if abs(d.deviation) <= d.band_half_width else "outside"
            fields |= {
                f"beta_delta_{unit}": d.beta_delta,
                f"target_{unit}": d.target,
                f"deviation_{unit}": d.deviation,
                f"band_half_width_{unit}": d.band_half_width,
                f"band_{unit}": band,
            }
        if self.exposure is not None:
            fields["nav_usd"] = self.exposure.nav_usd
        if self.stale_inputs:
            fields["stale_inputs"] = list(self.stale_inputs)
        return fields

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

    # -- fills and abandoned orders -------------------------------------------------------------

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
                    await self.poll_positions()
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
            await self.poll_positions()

    async def _reconcile_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.market.reconcile_every)
            await self.poll_positions()

    # -- hedging ------------------------------------------------------------------------------

    async def _hedge(self, checked: guards.GuardResult | None, now_ms: int) -> None:
        self.sender.limits_for_errors = self.params.limits
        if await self._hedge_options(now_ms):
            # The perp was sized as if the option legs filled; what they did fill is known
            # only now: the next cycle decides the perp on the positions that resulted.
            await self._refresh_after_hedge()
            return
        by_factor: dict[str, list[HedgeIntent]] = {}
        for intent in checked.approved if checked is not None else ():
            by_factor.setdefault(intent.factor, []).append(intent)
        for factor_name, legs in by_factor.items():
            factor = next(f for f in self.cfg.factors if f.asset == factor_name)
            decision = self.decision_of(factor_name)
            assert decision is not None
            self.last_hedge_ms[factor_name] = now_ms
            order = FactorOrder(
                decision=decision,
                venue=factor.hedge.venue,
                legs=legs,
                market=self.hedge_markets[factor_name],
                decided_ms=now_ms,
                dry_run=checked is not None and checked.dry_run,
                nav_usd=self.exposure.nav_usd if self.exposure else None,
                drivers=self._drivers(factor_name),
                factor_price_usd=self._factor_value(factor_name, "factor_price"),
                beta_delta_usd=self._factor_value(factor_name, "beta_delta_usd"),
            )
            await self.sender.send(
                order, self.cfg.hedge.order, self.params.limits, lambda: self.slice_gate(now_ms)
            )
        await self._refresh_after_hedge()

    async def _refresh_after_hedge(self) -> None:
        """Positions read again after orders went out (a failed read leaves the book
        unreconciled, which refuses the next hedge until a read succeeds)."""
        try:
            await self.refresh_positions()
        except Exception as exc:
            self.positions_reconciled = False
            log.warning("reconcile_failed", error=repr(exc))

    # -- operator's flatten --------------------------------------------------------------------

    async def flatten(
        self, factors: Sequence[str] = (), dry_run: bool = False, by: str = "operator"
    ) -> dict[str, Any]:
        """Close the hedge positions of ``factors`` (every factor if empty) through the guards
        and executor, as journaled intents; the daemon pauses first (so the cycle does not
        hedge again) and stays paused. Sent by the cycle task, after any hedge in flight."""
        unknown = sorted(set(factors) - set(self.cfg.factor_assets))
        if unknown:
            raise ValueError(f"unknown factor(s) {', '.join(unknown)}")
        done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.inputs.post(Flatten(tuple(factors), dry_run, by, done))
        return await done

    async def _run_flattens(self) -> None:
        self.apply_inputs()
        while self._flattens:
            request = self._flattens.popleft()
            self._idle.clear()
            try:
                report = await run_flatten(self, request)
            except Exception as exc:
                if not request.done.done():
                    request.done.set_exception(exc)
            else:
                if not request.done.done():
                    request.done.set_result(report)
            finally:
                self._idle.set()

    async def _hedge_options(self, now_ms: int) -> bool:
        """Option legs first; True when any were sent (not a dry run). A leg is worked for up
        to ``hedge.option_order.timeout``, so the decision stays valid that long (and at least
        ``hedge.max_decision_age``)."""
        checked = self.option_checked
        if checked is None or not checked.approved:
            return False
        max_age_s = max(self.cfg.hedge.max_decision_age, self.params.options.order.timeout)
        for decision in self.option_decisions:
            legs = tuple(leg for leg in checked.approved if leg.factor == decision.factor)
            if not legs:
                continue
            factor = next(f for f in self.cfg.factors if f.asset == decision.factor)
            await self.sender.send_options(
                replace(decision, legs=legs),
                factor.hedge.venue,
                now_ms,
                self.params.options.order,
                lambda: self.slice_gate(now_ms, max_age_s=max_age_s),
                checked.dry_run,
            )
        return not checked.dry_run

    def _factor_value(self, factor: str, column: str) -> float | None:
        if self.exposure is None:
            return None
        return float(getattr(self.exposure, column)[self.exposure.factors.index(factor)])

    def _drivers(self, factor: str) -> tuple[dict[str, float | str], ...]:
        """Per asset of the book: what it contributes to ``factor``'s beta-delta now."""
        result = self.exposure
        if result is None:
            return ()
        k = result.factors.index(factor)
        return tuple(
            {
                "asset": asset,
                "price_usd": float(result.asset_price[a]),
                "delta_usd": float(result.asset_delta_usd[a]),
                "loading": float(result.loadings[a, k]),
                "beta_delta_usd": float(result.asset_delta_usd[a] * result.loadings[a, k]),
            }
            for a, asset in enumerate(result.assets)
            if result.asset_delta_usd[a] != 0.0
        )

    def slice_gate(
        self, decided_ms: int, operator: bool = False, max_age_s: float | None = None
    ) -> str | None:
        """Why the next slice of a decision taken at ``decided_ms`` must not go out, or None.

        Asked before every slice and between the limit and market parts of a leg: a pause,
        a halt, a dry run, a shutdown, stale inputs or an old decision all stop a hedge in
        flight at the next boundary (the slice in flight finishes). Posted inputs (a reload,
        a position read) are applied first, so a reload to dry run stops the next slice."""
        self.apply_inputs()
        state = self.guard.state
        if self._stopping.is_set():
            return "shutdown"
        paused_by_operator = operator and state.trading is guards.TradingState.PAUSED
        if state.trading is not guards.TradingState.RUNNING and not paused_by_operator:
            return f"{state.trading.value}: {state.reason or 'no reason recorded'}"
        if state.dry_run or self.cfg.limits.dry_run:
            return "dry_run"
        age_s = (self.clock_ms() - decided_ms) / 1000.0
        max_age_s = self.cfg.hedge.max_decision_age if max_age_s is None else max_age_s
        # A flatten's amounts are the positions themselves, re-read after each round.
        if age_s > max_age_s and not operator:
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
        self._set_stale(stale_inputs(market, self.cfg.market.stale_after))
        return self.stale_inputs

    def _set_stale(self, stale: tuple[str, ...]) -> None:
        """Entering and leaving staleness is logged once each, not on every cycle."""
        if stale and not self.stale_inputs:
            log.warning(
                "inputs_stale", inputs=list(stale), stale_after_s=self.cfg.market.stale_after
            )
        elif self.stale_inputs and not stale:
            log.info("inputs_fresh", were_stale=list(self.stale_inputs))
        self.stale_inputs = stale

    # -- status -------------------------------------------------------------------------------

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


def _quiet(done: asyncio.Future[Any]) -> None:
    """Nobody awaits an automatic reduction: its outcome is in the log and the journal."""
    if not done.cancelled():
        done.exception()
