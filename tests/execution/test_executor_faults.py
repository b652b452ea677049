"""Every ccxt error class at every executor step, against a venue without sockets.

The invariant under test: at most one fill per leg, whatever fails and whenever a request
lands; an order whose fate is unknown blocks its venue until the venue shows it or proves it
can no longer land; the journal's fills equal the venue's.
"""

from __future__ import annotations

from pathlib import Path

import ccxt.async_support as ccxt
import pytest

from hedger.execution.executor import (
    ExecutionFailedError,
    ExecutionFaultError,
    Executor,
    OrderRefusedError,
)
from hedger.execution.journal import Journal
from tests.execution.conftest import record_intent
from tests.execution.fake_broker import FakeBroker, FakeVenue, Step

TIMEOUT_S = 3.0
NETWORK = [
    ccxt.RequestTimeout("timed out"),
    ccxt.ExchangeNotAvailable("502"),
    ccxt.NetworkError("connection reset"),
]
DOOR = [ccxt.DDoSProtection("10028"), ccxt.RateLimitExceeded("429")]
REFUSED = [
    ccxt.InvalidOrder("10021"),
    ccxt.InsufficientFunds("10009"),
    ccxt.AuthenticationError("13009"),
    ccxt.PermissionDenied("13021"),
    ccxt.BadRequest("11029"),
    ccxt.ExchangeError("10001"),
]
UNCLASSIFIED = [
    ccxt.BadResponse("not json"),
    ccxt.NullResponse("empty"),
    ccxt.CancelPending("pending"),
    KeyError("order_id"),
]


def _name(exc: BaseException) -> str:
    return type(exc).__name__


def _setup(
    tmp_path: Path, ttl: bool = True
) -> tuple[FakeVenue, FakeBroker, Journal, Executor, int]:
    venue = FakeVenue()
    broker = FakeBroker(venue, ttl=ttl)
    journal = Journal(tmp_path / "j.sqlite")
    executor = Executor(
        journal,
        broker,
        daemon_name="t",
        clock=lambda: venue.now_ms,
        order_ttl_s=TIMEOUT_S,
        unknown_window_s=3 * TIMEOUT_S,
        lookup_timeout_s=20.0,
        sleep=venue.sleep,
        monotonic=lambda: venue.now_s,
    )
    seq = record_intent(journal, now_ms=venue.now_ms)
    return venue, broker, journal, executor, seq


def _journal_fills(journal: Journal, seq: int) -> dict[str, float]:
    return {r.client_id: r.filled_qty for r in journal.orders_of_intent(seq) if r.filled_qty}


def _assert_ledgers_agree(venue: FakeVenue, journal: Journal, seq: int, leg_size: float) -> None:
    assert sum(venue.fills.values()) <= leg_size
    venue_fills = {label: filled for label, filled in venue.fills.items() if filled}
    assert _journal_fills(journal, seq) == venue_fills


@pytest.mark.parametrize("lands", [False, True], ids=["lost", "landed"])
@pytest.mark.parametrize("error", NETWORK, ids=_name)
async def test_network_error_on_place_never_fills_twice(
    tmp_path: Path, error: BaseException, lands: bool
) -> None:
    venue, broker, journal, executor, seq = _setup(tmp_path)
    broker.script["place"].append(Step(error, lands=lands))
    fill = await executor.execute(seq, 0, "BTC/USD:BTC", "buy", 100)
    assert fill.filled_total == 100
    _assert_ledgers_agree(venue, journal, seq, 100)
    statuses = [r.status for r in journal.orders_of_intent(seq)]
    # Landed: found and adopted, nothing resent. Lost: proven absent once the venue's
    # clock passed the request's time-to-live, then (and only then) the next attempt.
    assert statuses == (["filled"] if lands else ["not_sent", "filled"])


@pytest.mark.parametrize("delay_x", [0.5, 0.9, 1.1, 2.0, 5.0])
async def test_a_late_request_never_fills_a_leg_twice(tmp_path: Path, delay_x: float) -> None:
    """The measured defect: requests held by a network hop beyond the client timeout landed
    after the executor had given them up after a fixed 1 s grace, and one leg filled three
    times. With a time-to-live the late request is refused by the venue."""
    venue, broker, journal, executor, seq = _setup(tmp_path)
    held = Step(ccxt.RequestTimeout("held"), lands=True, delay_s=delay_x * TIMEOUT_S)
    broker.script["place"] += [held, held]
    fill = await executor.execute(seq, 0, "BTC/USD:BTC", "buy", 100)
    await venue.sleep(10 * TIMEOUT_S)  # every held request has landed or been refused
    assert fill.filled_total == 100
    _assert_ledgers_agree(venue, journal, seq, 100)
    assert venue.refused_late == (2 if delay_x > 1 else 0)


async def test_without_a_time_to_live_the_leg_waits_the_window_and_adopts_a_late_fill(
    tmp_path: Path,
) -> None:
    """No venue-side guard: the leg is resent only after the venue showed the first request
    absent for the whole window, and a request landing even later is adopted, so the
    journal's fills equal the venue's (the extra fill is visible, never hidden)."""
    venue, broker, journal, executor, seq = _setup(tmp_path, ttl=False)
    broker.script["place"].append(
        Step(ccxt.RequestTimeout("held"), lands=True, delay_s=5 * TIMEOUT_S)
    )
    start = venue.now_s
    fill = await executor.execute(seq, 0, "BTC/USD:BTC", "buy", 100)
    assert fill.filled_total == 100
    first = journal.order(f"t-{seq}-0-0")
    assert first is not None and first.status == "abandoned"
    second = journal.order(f"t-{seq}-0-1")
    assert second is not None and second.created_ms >= (start + 3 * TIMEOUT_S) * 1000
    await venue.sleep(10 * TIMEOUT_S)
    (adopted,) = await executor.watch_abandoned()
    assert adopted.status == "filled"
    _assert_ledgers_agree(venue, journal, seq, 200)
    kinds = [kind for _, kind, _ in journal.events(f"t-{seq}-0-0")]
    assert "late_order_adopted" in kinds


async def test_a_short_absence_never_unblocks_a_leg_without_a_time_to_live(
    tmp_path: Path,
) -> None:
    """The old fixed 1 s grace: a request landing 2 s late (inside the window) is found."""
    venue, broker, journal, executor, seq = _setup(tmp_path, ttl=False)
    broker.script["place"].append(
        Step(ccxt.RequestTimeout("held"), lands=True, delay_s=2 * TIMEOUT_S)
    )
    fill = await executor.execute(seq, 0, "BTC/USD:BTC", "buy", 100)
    assert fill.attempts == 1 and fill.filled_total == 100
    _assert_ledgers_agree(venue, journal, seq, 100)


@pytest.mark.parametrize("error", DOOR, ids=_name)
async def test_refused_at_the_door_is_not_sent_and_retried(
    tmp_path: Path, error: BaseException
) -> None:
    venue, broker, journal, executor, seq = _setup(tmp_path)
    broker.script["place"].append(Step(error))
    fill = await executor.execute(seq, 0, "BTC/USD:BTC", "buy", 100)
    assert [r.status for r in journal.orders_of_intent(seq)] == ["not_sent", "filled"]
    assert broker.calls["find"] == 0  # the venue said no: nothing to look up
    _assert_ledgers_agree(venue, journal, seq, 100)
    assert fill.filled_total == 100


@pytest.mark.parametrize("error", REFUSED, ids=_name)
async def test_refused_by_the_venue_is_rejected_and_never_retried(
    tmp_path: Path, error: BaseException
) -> None:
    venue, broker, journal, executor, seq = _setup(tmp_path)
    broker.script["place"].append(Step(error))
    with pytest.raises(OrderRefusedError):
        await executor.execute(seq, 0, "BTC/USD:BTC", "buy", 100)
    assert [r.status for r in journal.orders_of_intent(seq)] == ["rejected"]
    assert broker.calls["place"] == 1
    assert sum(venue.fills.values()) == 0


@pytest.mark.parametrize("lands", [False, True], ids=["lost", "landed"])
@pytest.mark.parametrize("error", UNCLASSIFIED, ids=_name)
async def test_unclassified_error_on_place_settles_the_order_then_faults(
    tmp_path: Path, error: BaseException, lands: bool
) -> None:
    """An answer nobody understood may hide a placed order: it is looked up (adopted if
    there), never resent, and the engine is told to halt."""
    venue, broker, journal, executor, seq = _setup(tmp_path)
    broker.script["place"].append(Step(error, lands=lands))
    with pytest.raises(ExecutionFaultError) as raised:
        await executor.execute(seq, 0, "BTC/USD:BTC", "buy", 100)
    assert broker.calls["place"] == 1
    (record,) = journal.orders_of_intent(seq)
    assert record.status == ("filled" if lands else "not_sent")
    assert (raised.value.order is not None) == lands
    _assert_ledgers_agree(venue, journal, seq, 100)


@pytest.mark.parametrize("error", NETWORK + DOOR, ids=_name)
async def test_lookup_network_errors_are_retried_not_guessed(
    tmp_path: Path, error: BaseException
) -> None:
    venue, broker, journal, executor, seq = _setup(tmp_path)
    broker.script["place"].append(Step(ccxt.RequestTimeout("held"), lands=True))
    broker.script["find"] += [Step(error), Step(error)]
    fill = await executor.execute(seq, 0, "BTC/USD:BTC", "buy", 100)
    assert fill.attempts == 1 and fill.filled_total == 100
    _assert_ledgers_agree(venue, journal, seq, 100)


async def test_an_unreachable_venue_leaves_the_order_unknown_and_blocks_its_venue(
    tmp_path: Path,
) -> None:
    _venue, broker, journal, executor, seq = _setup(tmp_path)
    broker.script["place"].append(Step(ccxt.RequestTimeout("held"), lands=False))
    broker.script["find"] += [Step(ccxt.ExchangeNotAvailable("down"))] * 200
    with pytest.raises(ExecutionFailedError, match="fate unknown"):
        await executor.execute(seq, 0, "BTC/USD:BTC", "buy", 100)
    (record,) = journal.orders_of_intent(seq)
    assert record.status == "unknown"
    # The next hedge may not go out while that request may still land...
    broker.script["find"] = [Step(ccxt.ExchangeNotAvailable("down"))] * 200
    with pytest.raises(ExecutionFailedError):
        await executor.execute(seq, 1, "BTC/USD:BTC", "buy", 100)
    assert broker.calls["place"] == 1
    # ...and goes once the venue has proven it absent.
    broker.script["find"] = []
    fill = await executor.execute(seq, 1, "BTC/USD:BTC", "buy", 100)
    assert fill.filled_total == 100
    assert journal.order(f"t-{seq}-0-0").status == "not_sent"  # type: ignore[union-attr]


@pytest.mark.parametrize("error", [*UNCLASSIFIED[:2], KeyError("x")], ids=_name)
async def test_unclassified_lookup_error_propagates_and_keeps_the_order_unknown(
    tmp_path: Path, error: BaseException
) -> None:
    _venue, broker, journal, executor, seq = _setup(tmp_path)
    broker.script["place"].append(Step(ccxt.RequestTimeout("held"), lands=False))
    broker.script["find"].append(Step(error))
    with pytest.raises(type(error)):
        await executor.execute(seq, 0, "BTC/USD:BTC", "buy", 100)
    (record,) = journal.orders_of_intent(seq)
    assert record.status == "unknown"
    assert broker.calls["place"] == 1


@pytest.mark.parametrize(
    "error",
    [*NETWORK, ccxt.CancelPending("pending"), ccxt.OrderNotFound("10004")],
    ids=_name,
)
async def test_cancel_failures_are_resolved_before_the_market_rest(
    tmp_path: Path, error: BaseException
) -> None:
    venue, broker, journal, executor, seq = _setup(tmp_path)
    venue.rest_open = True
    broker.script["cancel"].append(Step(error, lands=not isinstance(error, ccxt.OrderNotFound)))
    venue.rest_open = True
    fill = await executor.execute(
        seq, 0, "BTC/USD:BTC", "buy", 100, limit_price=49_000.0, limit_timeout_s=1.0
    )
    records = journal.orders_of_intent(seq)
    assert records[0].status == "cancelled"
    # The market rest was journaled only after the limit was known cancelled.
    assert records[0].updated_ms <= records[-1].created_ms
    assert fill.filled_total == 100
    _assert_ledgers_agree(venue, journal, seq, 100)


async def test_stop_check_between_limit_and_market_parts(tmp_path: Path) -> None:
    venue, _broker, journal, executor, seq = _setup(tmp_path)
    venue.rest_open = True
    fill = await executor.execute(
        seq,
        0,
        "BTC/USD:BTC",
        "buy",
        100,
        limit_price=49_000.0,
        limit_timeout_s=1.0,
        may_continue=lambda: "paused: by operator",
    )
    assert fill.stopped == "paused: by operator"
    assert [r.status for r in journal.orders_of_intent(seq)] == ["cancelled"]
    assert sum(venue.fills.values()) == 0


async def test_restart_waits_for_a_pending_order_to_be_proven_absent(tmp_path: Path) -> None:
    """Crash between 'journaled' and 'acked', request still in a network hop: start-up
    reconciliation must not call it not_sent until its time-to-live has passed."""
    venue, broker, journal, executor, seq = _setup(tmp_path)
    deadline = await broker.request_deadline_ms(TIMEOUT_S)
    journal.record_order(
        now_ms=venue.now_ms,
        client_id=f"t-{seq}-0-0",
        intent_seq=seq,
        leg=0,
        attempt=0,
        venue="fake",
        symbol="BTC/USD:BTC",
        side="buy",
        qty=100.0,
        valid_until_ms=deadline,
    )
    venue.in_flight.append(
        (venue.now_s + 0.8 * TIMEOUT_S, f"t-{seq}-0-0", "buy", 100, None, deadline)
    )
    (record,) = await executor.reconcile()
    assert record.status == "filled"
    _assert_ledgers_agree(venue, journal, seq, 100)
