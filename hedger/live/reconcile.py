"""Before the first hedge, and on the way out: the venues and the journal made to agree.

Journaled orders whose fate is in doubt are settled on their venue (found and adopted, or
proven absent), and this daemon's orders still resting on a venue are cancelled: the
decision that placed them is stale. Client ids are parsed to exactly this daemon's name,
never matched by prefix, so daemon ``lim`` never cancels ``lim-2f``'s orders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import structlog

from hedger.execution.executor import Executor
from hedger.execution.journal import Journal, is_own_client_id
from hedger.live.venue_link import VenueLink

log = structlog.get_logger("hedger.live.reconcile")


async def settle_journaled_orders(executors: Mapping[str, Executor]) -> None:
    for executor in executors.values():
        for record in await executor.reconcile():
            log.info("order_reconciled_at_start", client_id=record.client_id, status=record.status)


async def cancel_own_open_orders(
    links: Mapping[str, VenueLink],
    journal: Journal,
    daemon_name: str,
    clock_ms: Callable[[], int],
    why: str,
) -> int:
    """Cancel this daemon's resting orders on every venue; returns how many."""
    cancelled = 0
    for name, link in links.items():
        for order in await link.own_open_orders(
            lambda client_id: is_own_client_id(client_id, daemon_name)
        ):
            done = await link.broker.cancel(order.venue_order_id, order.symbol)
            cancelled += 1
            if journal.order(order.client_id) is not None:
                journal.update_order(
                    order.client_id, now_ms=clock_ms(), status=done.status, filled_qty=done.filled
                )
            journal.record_event(
                now_ms=clock_ms(),
                kind="order_cancelled",
                client_id=order.client_id,
                payload={"venue": name, "why": why, "filled": done.filled},
            )
            log.warning("order_cancelled", venue=name, client_id=order.client_id, why=why)
    return cancelled
