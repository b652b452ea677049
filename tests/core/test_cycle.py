"""The step with option hedges: option legs decided and guarded before the perp, the perp
sized on the beta-delta the approved legs leave, and ``perp`` mode exactly as before."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hedger.config import parse_config
from hedger.config.beta_setup import make_beta_book
from hedger.core import guards
from hedger.core.cycle import CycleInputs, CycleOutputs, CycleParams, CycleState, MarketInputs, step
from hedger.core.exposure import Position
from hedger.core.factors import factor_indices
from hedger.core.instruments import Instrument, Kind
from hedger.core.option_candidates import OptionChain
from hedger.core.option_hedge import OptionHedgeParams, option_key, solve_key
from hedger.core.params import HedgeMode
from hedger.core.policy import Action, HedgeMarket

from .chains import BTC_PRICE, NOW, book_exposure, chain, option_instrument, option_symbol, spot

PERP = HedgeMarket("BTC-PERPETUAL", inverse=True, amount_step=10.0, min_amount=10.0)

CONFIG = """
venues: {deribit: {exchange: deribit}}
factors:
  - asset: BTC
    hedge: {venue: deribit, symbol: BTC-PERPETUAL, mode: MODE}
    target: {kind: beta_delta, value: 0.0}
    band: {half_width: 0.2}
    options:
      multi_greek:
        gamma: {half_width: 2000, inner_half_width: 1000}
        vega: {half_width: 1500}
      protective_put: {coverage: 0.5, moneyness: 0.9, tenor_days: 30, roll_days: 5}
hedge: {cooldown: 0s, option_order: {spread_fraction: 0.5, timeout: 30s}}
limits:
  max_order_notional_usd: 1.0e+7
  max_hedge_position_usd: 1.0e+8
  max_notional_per_hour_usd: 1.0e+9
  max_notional_per_day_usd: 1.0e+9
option_limits: {max_premium_per_day_usd: PREMIUM, max_net_vega_usd: 1.0e+6}
"""


def _params(mode: str = "multi_greek", premium: float = 1e6) -> CycleParams:
    text = CONFIG.replace("MODE", mode).replace("PREMIUM", repr(premium))
    return parse_config(text).cycle_params({"BTC": PERP})


def _state(params: CycleParams, assets: tuple[str, ...]) -> CycleState:
    cfg = parse_config(CONFIG.replace("MODE", "perp").replace("PREMIUM", "1.0"))
    beta_book, _ = make_beta_book(cfg.beta, assets, ("BTC",), NOW)
    return CycleState(beta_book, guards.initial_state(params.limits, NOW))


def _inputs(positions: list[Position], c: OptionChain | None, now_ms: int = NOW) -> CycleInputs:
    book, quotes, result = book_exposure(positions, {"BTC": BTC_PRICE})
    perp_rows = [i for i, s in enumerate(book.symbols) if s == "BTC-PERPETUAL"]
    amount = float(book.size[perp_rows[0]]) if perp_rows else 0.0
    return CycleInputs(
        now_ms=now_ms,
        book=book,
        quotes=quotes,
        factor_index=factor_indices(book.assets, ("BTC",)),
        market=MarketInputs((), np.zeros(0, np.intp), np.zeros(0)),
        hedge_amount=np.array([amount]),
        hedge_bid=np.array([BTC_PRICE - 0.5]),
        hedge_ask=np.array([BTC_PRICE + 0.5]),
        taker_fee=np.array([0.0005]),
        loadings=result.loadings,
        option_chain=c,
    )


def _short_calls(c: OptionChain) -> list[Position]:
    row = c.row_of(option_symbol("BTC", 30, 50_000, True))
    return [Position(option_instrument(c, row), -10.0), Position(spot("BTC"), 2.0)]


def _run(params: CycleParams, inputs: CycleInputs) -> tuple[CycleState, CycleOutputs]:
    return step(_state(params, inputs.book.assets), inputs, params)


def test_multi_greek_legs_come_first_and_the_perp_trims_what_they_leave() -> None:
    c = chain()
    params = _params()
    inputs = _inputs(_short_calls(c), c)
    state, out = _run(params, inputs)
    (option,) = out.option_decisions
    assert option.mode is HedgeMode.MULTI_GREEK and option.action is Action.HEDGE
    assert out.option_checked is not None
    assert out.option_checked.approved == option.legs
    shift_usd = sum(leg.beta_delta_usd[0] for leg in option.legs)
    # The perp decides on the beta-delta after the legs, as if they filled.
    (decision,) = out.decisions
    before = float(out.exposure.beta_delta[0])
    assert decision.beta_delta == pytest.approx(before + shift_usd / BTC_PRICE)
    assert out.checked is not None
    (perp,) = out.checked.approved
    assert perp.amount == pytest.approx(abs(decision.beta_delta) * BTC_PRICE, abs=10.0)
    assert state.last_hedge_ms[option_key("BTC")] == NOW
    assert option.after is not None
    assert abs(option.after.gamma_usd_per_pct) <= 1_000.0 + 1e-6


def test_no_new_option_decision_while_the_legs_are_worked() -> None:
    c = chain()
    params = _params()
    state, _ = _run(params, _inputs(_short_calls(c), c))
    _, again = step(state, _inputs(_short_calls(c), c, NOW + 10_000), params)
    (option,) = again.option_decisions
    assert option.action is Action.SKIP
    assert option.reason == "option legs still worked (10s of 30s)"
    _, later = step(state, _inputs(_short_calls(c), c, NOW + 31_000), params)
    assert later.option_decisions[0].action is Action.HEDGE


def test_refused_option_legs_leave_the_whole_delta_to_the_perp() -> None:
    c = chain()
    params = _params(premium=1.0)  # no premium budget at all
    _, out = _run(params, _inputs(_short_calls(c), c))
    assert out.option_checked is not None
    assert out.option_checked.approved == ()
    assert {r.kind for r in out.option_checked.refused} == {"max_premium_per_day_usd"}
    assert out.decisions[0].beta_delta == pytest.approx(float(out.exposure.beta_delta[0]))
    assert out.checked is not None and out.checked.approved  # the perp still hedges


def test_protective_puts_then_the_perp_trims_the_residual() -> None:
    c = chain()
    params = _params("protective_put")
    _, out = _run(params, _inputs([Position(spot("BTC"), 10.0)], c))
    (option,) = out.option_decisions
    (leg,) = option.legs
    assert (leg.symbol, leg.side) == (option_symbol("BTC", 30, 45_000, False), "buy")
    # 10 BTC long, puts carry about -5: the perp sells the rest back to the target.
    (decision,) = out.decisions
    assert decision.beta_delta == pytest.approx(10.0 + leg.beta_delta_usd[0] / BTC_PRICE)
    assert 4.9 < decision.beta_delta < 5.2
    assert out.checked is not None
    (perp,) = out.checked.approved
    assert perp.side == "sell"
    assert perp.amount == pytest.approx(decision.beta_delta * BTC_PRICE, abs=10.0)


def test_perp_mode_is_unchanged_by_a_chain_or_option_settings() -> None:
    c = chain()
    perp_cfg = _params("perp")
    bare = replace(perp_cfg, options=OptionHedgeParams({}))
    hedge = Instrument("BTC-PERPETUAL", Kind.PERP, "BTC", inverse=True)
    positions = [*_short_calls(c), Position(hedge, -1_000.0, BTC_PRICE)]
    with_chain = _inputs(positions, c)
    without = replace(with_chain, option_chain=None)
    _, a = _run(bare, without)
    _, b = _run(perp_cfg, with_chain)
    assert a.option_decisions == b.option_decisions == ()
    assert a.option_checked is None and b.option_checked is None
    assert a.decisions == b.decisions
    assert a.checked is not None and b.checked is not None
    assert a.checked.approved == b.checked.approved


def test_a_factor_without_a_chain_is_skipped_with_why() -> None:
    c = chain()
    _, out = _run(_params(), _inputs(_short_calls(c), None))
    (option,) = out.option_decisions
    assert (option.action, option.reason) == (Action.SKIP, "no option chain")
    assert out.decisions[0].beta_delta == pytest.approx(float(out.exposure.beta_delta[0]))


def test_an_unsolvable_band_is_not_re_solved_before_retry_after() -> None:
    c = chain()
    text = CONFIG.replace("MODE", "multi_greek").replace("PREMIUM", "1.0e+6")
    text = text.replace(
        "vega: {half_width: 1500}",
        "vega: {half_width: 1500}\n        max_options: 1\n"
        "        max_contracts_per_option: 0.1\n        retry_after: 20s",
    )
    params = parse_config(text).cycle_params({"BTC": PERP})
    state, first = _run(params, _inputs(_short_calls(c), c))
    assert first.option_decisions[0].solver == "infeasible"
    assert first.option_checked is None
    assert state.last_hedge_ms[solve_key("BTC")] == NOW
    assert option_key("BTC") not in state.last_hedge_ms
    _, soon = step(state, _inputs(_short_calls(c), c, NOW + 10_000), params)
    assert soon.option_decisions[0].reason == "last solve sent nothing (10s ago, retry after 20s)"
    _, later = step(state, _inputs(_short_calls(c), c, NOW + 21_000), params)
    assert later.option_decisions[0].solver == "infeasible"
