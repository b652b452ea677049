"""The guard state's one owner: trading state (running, paused, halted), dry run, the
consecutive-error count and the rolling notional sent.

Every change goes through ``set``, which journals a change of trading state or error count,
so a restart resumes exactly where the last process stood (a halt, a pause and a spent
budget all outlive it).
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from hedger.core import guards
from hedger.core.params import Limits
from hedger.core.units import DAY_MS
from hedger.execution.journal import Journal

log = structlog.get_logger("hedger.live.trading_guard")


class TradingGuard:
    def __init__(self, journal: Journal, limits: Limits, clock_ms: Callable[[], int]) -> None:
        self.journal = journal
        self.clock_ms = clock_ms
        self.state = self._restored(limits)

    def _restored(self, limits: Limits) -> guards.GuardState:
        """The journaled trading state, with the last day's sent notional."""
        now_ms = self.clock_ms()
        last = self.journal.last_trading_state()
        state = guards.restore(
            limits,
            now_ms,
            trading=last.state if last else None,
            reason=last.reason if last else None,
            since_ms=last.ts_ms if last else None,
            consecutive_errors=last.consecutive_errors if last else 0,
            sent=self.journal.sent_notional_since(now_ms - DAY_MS),
            option_premiums=self.journal.option_premiums_since(now_ms - DAY_MS),
        )
        if state.trading is not guards.TradingState.RUNNING:
            log.warning("trading_state_restored", trading=state.trading.value, reason=state.reason)
        return state

    def set(self, new: guards.GuardState, by: str) -> None:
        """The one place the guard state changes; a change of trading state or error count is
        journaled (and logged)."""
        old = self.state
        self.state = new
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

    def halt(self, reason: str, by: str = "engine") -> None:
        """Stop sending until an operator resumes; streaming and exporting go on."""
        self.set(guards.halt(self.state, self.clock_ms(), reason), by)

    def pause(self, reason: str, by: str) -> None:
        self.set(guards.pause(self.state, self.clock_ms(), reason), by)

    def resume(self, by: str) -> None:
        self.set(guards.resume(self.state, self.clock_ms()), by)

    def record_sent(self, notional_usd: float) -> None:
        """Counted (and journaled) before the request leaves: a request of unknown fate may
        still fill, and a restart must not forget it in the rolling limits."""
        now_ms = self.clock_ms()
        self.journal.record_sent_notional(now_ms=now_ms, notional_usd=notional_usd)
        self.set(guards.record_order(self.state, now_ms, notional_usd), "engine")

    def record_option_premium(self, premium_usd: float) -> None:
        """An option buy about to be sent: journaled first, like any notional sent."""
        now_ms = self.clock_ms()
        self.journal.record_option_premium(now_ms=now_ms, premium_usd=premium_usd)
        self.set(guards.record_option_premium(self.state, now_ms, premium_usd), "engine")

    def record_success(self) -> None:
        self.set(guards.record_success(self.state), "engine")

    def record_error(self, limits: Limits, reason: str) -> None:
        """A failed order: counted toward the kill switch, which halts at its limit."""
        self.set(guards.record_error(self.state, self.clock_ms(), limits, reason), "kill_switch")

    def label(self, dry_run_configured: bool) -> str:
        """running, paused, halted or dry_run (dry run only matters while running)."""
        trading = self.state.trading
        if trading is guards.TradingState.RUNNING and (self.state.dry_run or dry_run_configured):
            return "dry_run"
        return trading.value
