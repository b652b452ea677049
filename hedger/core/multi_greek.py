"""The multi-Greek hedge: the perp and up to N options so that beta-delta, gamma and vega end
inside their bands at least cost, solved by HiGHS (``scipy.optimize.milp``).

The program, for one factor, with ``q_i = lot_i (b_i - s_i)`` contracts of candidate i bought
(``b_i``) or sold (``s_i``) in whole lots and a perp trade ``p = p+ - p-`` in factor units::

    minimise   sum_i lot_i (cost_i + w premium_i) (b_i + s_i) + perp_cost (p+ + p-) + eps sum z_i
    such that  lower_g <= start_g + A_g,perp p + sum_i A_g,i q_i <= upper_g   (delta, gamma, vega)
               b_i + s_i <= M_i z_i,   sum_i z_i <= N,   z_i binary
               0 <= b_i <= max_buy_i,  0 <= s_i <= max_sell_i   (semi-integer above a minimum)

``cost`` is half the spread plus the fee (what a contract costs against mark); ``w premium``
is the regularisation: options of one expiry are nearly collinear in gamma and vega, and
without it a narrow band is met by huge long-against-short stacks whose cost is small only
on paper. Each Greek row is divided by its band's width so HiGHS sees numbers near one.

An infeasible program is not answered with the nearest huge position: a second, elastic
program (each Greek row given slack, the total slack minimised) finds the constraint that
cannot be met and by how much, and which limits (``max_options``, a candidate's
``max_contracts``) stand in the way. A solve that reaches its time limit answers nothing:
the perp hedges delta alone and the decision says so.

With ``integer_lots`` off, HiGHS solves the linear relaxation; the amounts are then rounded
toward zero to the lot (and to the ``N`` largest), and every Greek re-checked: each one the
rounding pushes out of its band is reported with its miss. With it on, whole lots are the
program's own variables, so the solution needs no rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_array

from hedger.core.option_candidates import Candidates, OptionChain
from hedger.core.option_legs import (
    FactorContext,
    FactorGreeks,
    GreekMiss,
    OptionDecision,
    OptionLeg,
    greeks_after,
    legs_for,
)
from hedger.core.params import HedgeMode, MultiGreek, OptionOrder
from hedger.core.policy import Action, round_to_lot

FloatArray = NDArray[np.float64]

GREEKS = ("beta_delta", "gamma", "vega")
UNITS = ("factor units", "USD/1%", "USD/vol pt")
_Z_COST_USD = 1e-6
"""a sliver per option used, so that an option with nothing to trade is not counted."""
_FEASIBILITY = 1e-6
"""a Greek within this fraction of its band's width of an edge is inside (HiGHS's own
feasibility tolerance, scaled, is 1e-7)."""


@dataclass(slots=True, frozen=True)
class GreekProblem:
    """One factor's program in plain arrays; Greeks in the order of :data:`GREEKS`."""

    start: FloatArray
    """(3,) the book's Greeks now."""
    lower: FloatArray
    upper: FloatArray
    """(3,) where each must end (±inf: unconstrained)."""
    option_greeks: FloatArray
    """(3, n) per contract."""
    cost_usd: FloatArray
    """(n,) half spread + fee per contract."""
    premium_usd: FloatArray
    lot: FloatArray
    """(n,) the venue's amount step."""
    min_amount: FloatArray
    max_buy: FloatArray
    max_sell: FloatArray
    """(n,) amount units."""
    perp_cost_usd_per_unit: float
    symbols: tuple[str, ...] = ()
    perp_max_units: float = math.inf

    @property
    def n(self) -> int:
        return len(self.cost_usd)

    def greeks_of(self, amounts: FloatArray, perp_units: float) -> FloatArray:
        out: FloatArray = self.start + self.option_greeks @ amounts
        out[0] += perp_units
        return out


@dataclass(slots=True, frozen=True)
class GreekSolution:
    status: str
    """``optimal``, ``infeasible``, ``time_limit``, ``no_candidates`` or ``error``."""
    amounts: FloatArray
    """(n,) signed option amounts on the lot (zeros unless a solution was found)."""
    perp_units: float
    greeks: FloatArray
    """(3,) after the amounts and the perp trade."""
    cost_usd: float
    """half spread + fee of every option and the perp trade."""
    misses: tuple[GreekMiss, ...] = ()
    message: str = ""


def trading_cost_usd(problem: GreekProblem, amounts: FloatArray, perp_units: float) -> float:
    """What the trades cost against mark: half spreads and fees, options and perp."""
    options = float(np.abs(amounts) @ np.nan_to_num(problem.cost_usd))
    return options + abs(perp_units) * problem.perp_cost_usd_per_unit


def _row_scale(lower: FloatArray, upper: FloatArray, start: FloatArray) -> FloatArray:
    width = upper - lower
    magnitude = np.maximum(np.abs(np.where(np.isfinite(lower), lower, start)), 1.0)
    return np.where(np.isfinite(width) & (width > 0), width, magnitude)


def _perp_to_band(problem: GreekProblem, amounts: FloatArray) -> float:
    """The smallest perp trade putting beta-delta inside its band (the perp is not lotted
    here: the perp policy sizes the actual order)."""
    delta = problem.start[0] + float(problem.option_greeks[0] @ amounts)
    move = 0.0
    if delta < problem.lower[0]:
        move = problem.lower[0] - delta
    elif delta > problem.upper[0]:
        move = problem.upper[0] - delta
    return float(np.clip(move, -problem.perp_max_units, problem.perp_max_units))


def check_greeks(problem: GreekProblem, greeks: FloatArray) -> tuple[GreekMiss, ...]:
    """Every Greek outside its band (beyond the solver's tolerance), with its miss."""
    scale = _row_scale(problem.lower, problem.upper, problem.start)
    slack = _FEASIBILITY * scale
    misses = []
    for j, name in enumerate(GREEKS):
        value, lo, hi = float(greeks[j]), float(problem.lower[j]), float(problem.upper[j])
        if value < lo - slack[j] or value > hi + slack[j]:
            misses.append(GreekMiss(name, value, lo, hi))
    return tuple(misses)


class _Program:
    """The MILP's matrices; variables ``[p+, p-, b_1..b_n, s_1..s_n, z_1..z_n]``."""

    def __init__(self, problem: GreekProblem, params: MultiGreek) -> None:
        n = problem.n
        self.problem, self.n = problem, n
        lot = problem.lot
        self.max_buy_lots = np.floor(problem.max_buy / lot + 1e-9)
        self.max_sell_lots = np.floor(problem.max_sell / lot + 1e-9)
        self.min_lots = np.maximum(np.ceil(problem.min_amount / lot - 1e-9), 1.0)
        self.scale = _row_scale(problem.lower, problem.upper, problem.start)
        per_lot = problem.option_greeks * lot  # (3, n): Greeks of one lot
        greek_rows = np.zeros((3, 2 + 3 * n))
        greek_rows[0, 0], greek_rows[0, 1] = 1.0, -1.0
        greek_rows[:, 2 : 2 + n] = per_lot
        greek_rows[:, 2 + n : 2 + 2 * n] = -per_lot
        self.greek_rows = greek_rows / self.scale[:, None]
        self.greek_lo = (problem.lower - problem.start) / self.scale
        self.greek_hi = (problem.upper - problem.start) / self.scale
        big = self.max_buy_lots + self.max_sell_lots
        link = np.zeros((n + 1, 2 + 3 * n))
        idx = np.arange(n)
        link[idx, 2 + idx] = 1.0
        link[idx, 2 + n + idx] = 1.0
        link[idx, 2 + 2 * n + idx] = -big
        link[n, 2 + 2 * n :] = 1.0
        self.link = link
        self.link_hi = np.concatenate([np.zeros(n), [float(params.max_options)]])
        per_contract = np.nan_to_num(problem.cost_usd) + params.premium_weight * np.abs(
            np.nan_to_num(problem.premium_usd)
        )
        self.cost = np.concatenate(
            [
                [problem.perp_cost_usd_per_unit] * 2,
                per_contract * lot,
                per_contract * lot,
                np.full(n, _Z_COST_USD),
            ]
        )
        self.lb = np.zeros(2 + 3 * n)
        self.ub = np.concatenate(
            [[problem.perp_max_units] * 2, self.max_buy_lots, self.max_sell_lots, np.ones(n)]
        )
        # Semi-integer lots where the venue's minimum exceeds one lot: 0 or at least the
        # minimum; the MILP's lower bound of such a variable is that minimum.
        semi = self.min_lots > 1
        self.lb[2 : 2 + n] = np.where(semi, self.min_lots, 0.0)
        self.lb[2 + n : 2 + 2 * n] = np.where(semi, self.min_lots, 0.0)
        lot_kind = np.where(semi, 3, 1)
        self.integrality = np.concatenate([[0, 0], lot_kind, lot_kind, np.ones(n, np.int64)])
        # A semi-integer variable whose bound is below its minimum cannot trade at all.
        self.ub[2 : 2 + n] = np.where(
            semi & (self.max_buy_lots < self.min_lots), 0, self.ub[2 : 2 + n]
        )
        self.ub[2 + n : 2 + 2 * n] = np.where(
            semi & (self.max_sell_lots < self.min_lots), 0, self.ub[2 + n : 2 + 2 * n]
        )
        self.lb = np.minimum(self.lb, self.ub)

    def amounts(self, x: FloatArray) -> FloatArray:
        n, lot = self.n, self.problem.lot
        out: FloatArray = (x[2 : 2 + n] - x[2 + n : 2 + 2 * n]) * lot
        return out

    def solve(self, integer: bool, time_limit_s: float) -> tuple[int, FloatArray | None, str]:
        integrality = self.integrality if integer else np.zeros_like(self.integrality)
        lb = self.lb if integer else np.zeros_like(self.lb)
        result = milp(
            self.cost,
            integrality=integrality,
            bounds=Bounds(lb, self.ub),
            constraints=[
                LinearConstraint(csr_array(self.greek_rows), self.greek_lo, self.greek_hi),
                LinearConstraint(csr_array(self.link), -np.inf, self.link_hi),
            ],
            options={"time_limit": time_limit_s, "disp": False},
        )
        x = None if result.x is None else np.asarray(result.x, dtype=np.float64)
        return int(result.status), x, str(result.message)

    def elastic(self, time_limit_s: float) -> tuple[FloatArray, FloatArray] | None:
        """Each Greek row with slack both ways, the total slack minimised: per Greek, how
        far (signed, in its unit) the nearest reachable point lies outside its band, and
        the variables that reach it."""
        n_vars = 2 + 3 * self.n
        rows = np.hstack([self.greek_rows, np.eye(3), -np.eye(3)])
        link = np.hstack([self.link, np.zeros((self.n + 1, 6))])
        cost = np.concatenate([np.zeros(n_vars), np.ones(6)])
        result = milp(
            cost,
            integrality=np.concatenate([self.integrality, np.zeros(6, np.int64)]),
            bounds=Bounds(
                np.concatenate([self.lb, np.zeros(6)]),
                np.concatenate([self.ub, np.full(6, np.inf)]),
            ),
            constraints=[
                LinearConstraint(csr_array(rows), self.greek_lo, self.greek_hi),
                LinearConstraint(csr_array(link), -np.inf, self.link_hi),
            ],
            options={"time_limit": time_limit_s, "disp": False},
        )
        if result.x is None:
            return None
        x = np.asarray(result.x, dtype=np.float64)
        shortfall: FloatArray = (x[n_vars : n_vars + 3] - x[n_vars + 3 :]) * self.scale
        return shortfall, x[:n_vars]

    def limits_in_the_way(self, x: FloatArray, max_options: int, greek: int, up: bool) -> list[str]:
        """What stops ``greek`` moving further ``up`` (or down) at the elastic point."""
        n = self.n
        used = x[2 + 2 * n :] > 0.5
        notes = []
        if used.sum() >= max_options:
            notes.append(f"max_options {max_options} reached")
        buys, sells = x[2 : 2 + n], x[2 + n : 2 + 2 * n]
        at_max = ((buys >= self.max_buy_lots - 1e-9) & (self.max_buy_lots > 0)) | (
            (sells >= self.max_sell_lots - 1e-9) & (self.max_sell_lots > 0)
        )
        names = [
            self.problem.symbols[i] if self.problem.symbols else str(i)
            for i in np.flatnonzero(at_max)
        ]
        if names:
            notes.append(
                f"at max_contracts: {', '.join(names[:3])}" + (" ..." if len(names) > 3 else "")
            )
        per_lot = self.problem.option_greeks[greek]
        buying_helps = (per_lot > 0) if up else (per_lot < 0)
        if (
            not (buying_helps & (self.max_buy_lots > 0)).any()
            and not (self.max_sell_lots > 0).any()
        ):
            notes.append("only selling moves it that way: nothing to sell (allow_short off)")
        return notes


def solve_greeks(problem: GreekProblem, params: MultiGreek) -> GreekSolution:
    """Solve ``problem`` (see the module docstring); never raises on a bad solve."""
    zeros = np.zeros(problem.n)
    if problem.n == 0:
        greeks = problem.greeks_of(zeros, _perp_to_band(problem, zeros))
        misses = check_greeks(problem, greeks)
        message = "no option candidates" + (
            f": {'; '.join(str(m) for m in misses)}" if misses else ""
        )
        return GreekSolution(
            "no_candidates", zeros, greeks[0] - problem.start[0], greeks, 0.0, misses, message
        )
    program = _Program(problem, params)
    status, x, message = program.solve(params.integer_lots, params.time_limit_s)
    if status == 1:
        return GreekSolution(
            "time_limit",
            zeros,
            0.0,
            problem.start.copy(),
            0.0,
            message=f"multi_greek solve hit its {params.time_limit_s:g} s time limit",
        )
    if status == 2:
        return _infeasible(problem, program, params)
    if status != 0 or x is None:
        return GreekSolution("error", zeros, 0.0, problem.start.copy(), 0.0, message=message)
    amounts = program.amounts(x)
    if not params.integer_lots:
        amounts = _round_relaxed(problem, amounts, params.max_options)
    else:
        # Whole lots already, up to HiGHS's integrality tolerance (1e-6 of a lot).
        amounts = np.round(amounts / problem.lot) * problem.lot
    # 38 lots of 0.1 are sent as 3.8, not 3.8000000000000003.
    amounts = np.array(
        [
            round_to_lot(a, step)
            for a, step in zip(amounts.tolist(), problem.lot.tolist(), strict=True)
        ]
    )
    perp = _perp_to_band(problem, amounts)
    greeks = problem.greeks_of(amounts, perp)
    misses = check_greeks(problem, greeks)
    cost = trading_cost_usd(problem, amounts, perp)
    text = "; ".join(str(m) for m in misses)
    return GreekSolution("optimal", amounts, perp, greeks, cost, misses, text)


def _round_relaxed(problem: GreekProblem, amounts: FloatArray, max_options: int) -> FloatArray:
    """The relaxation's amounts toward zero to the lot and the venue's minimum, keeping the
    ``max_options`` largest in premium."""
    lots = np.trunc(amounts / problem.lot + np.copysign(1e-9, amounts))
    rounded = lots * problem.lot
    rounded = np.where(np.abs(rounded) >= problem.min_amount, rounded, 0.0)
    weight = np.abs(rounded) * np.abs(np.nan_to_num(problem.premium_usd, nan=1.0))
    if np.count_nonzero(rounded) > max_options:
        keep = np.argsort(-weight, kind="stable")[:max_options]
        mask = np.zeros(len(rounded), dtype=np.bool_)
        mask[keep] = True
        rounded = np.where(mask, rounded, 0.0)
    out: FloatArray = rounded
    return out


def _infeasible(problem: GreekProblem, program: _Program, params: MultiGreek) -> GreekSolution:
    zeros = np.zeros(problem.n)
    elastic = program.elastic(params.time_limit_s)
    if elastic is None:
        message = "infeasible (no elastic solution to name the binding constraint)"
        return GreekSolution("infeasible", zeros, 0.0, problem.start.copy(), 0.0, message=message)
    shortfall, x = elastic
    j = int(np.argmax(np.abs(shortfall) / program.scale))
    name, unit = GREEKS[j], UNITS[j]
    if shortfall[j] > 0:
        binding = f"{name} >= {problem.lower[j]:.6g} {unit}"
    else:
        binding = f"{name} <= {problem.upper[j]:.6g} {unit}"
    reached = problem.greeks_of(program.amounts(x), float(x[0] - x[1]))
    best = GreekMiss(name, float(reached[j]), float(problem.lower[j]), float(problem.upper[j]))
    notes = program.limits_in_the_way(x, params.max_options, j, bool(shortfall[j] > 0))
    message = f"infeasible, binding constraint {binding} (misses by {abs(shortfall[j]):.6g})"
    if notes:
        message += f"; {'; '.join(notes)}"
    return GreekSolution("infeasible", zeros, 0.0, problem.start.copy(), 0.0, (best,), message)


def greek_problem(
    ctx: FactorContext,
    params: MultiGreek,
    candidates: Candidates,
    chain: OptionChain,
    inner: bool = True,
) -> GreekProblem:
    """The program for ``ctx``'s factor: delta inside the factor's band, gamma and vega
    inside their inner bands (``inner``) or bands."""
    g = candidates.greeks
    rows = g.rows
    held = chain.held()[rows]
    cap = params.max_contracts_per_option
    max_sell = np.full(len(rows), cap) if params.allow_short else np.clip(held, 0.0, cap)
    gamma, vega = params.gamma, params.vega
    before = ctx.before
    return GreekProblem(
        start=np.array([before.beta_delta, before.gamma_usd_per_pct, before.vega_usd]),
        lower=np.array(
            [
                ctx.delta_lower,
                gamma.inner_lower if inner else gamma.lower,
                vega.inner_lower if inner else vega.lower,
            ]
        ),
        upper=np.array(
            [
                ctx.delta_upper,
                gamma.inner_upper if inner else gamma.upper,
                vega.inner_upper if inner else vega.upper,
            ]
        ),
        option_greeks=np.vstack([g.beta_delta, g.gamma_usd_per_pct, g.vega_usd]),
        cost_usd=g.cost_usd,
        premium_usd=g.premium_usd,
        lot=chain.amount_step[rows].astype(np.float64),
        min_amount=chain.min_amount[rows].astype(np.float64),
        max_buy=np.full(len(rows), cap),
        max_sell=max_sell,
        perp_cost_usd_per_unit=ctx.perp_cost_usd_per_unit,
        symbols=g.symbols,
    )


def greeks_outside(params: MultiGreek, greeks: FactorGreeks) -> list[str]:
    """The Greeks outside their (outer) bands: what makes the multi-Greek hedge trade."""
    return [
        name
        for name, band, value in (
            ("gamma", params.gamma, greeks.gamma_usd_per_pct),
            ("vega", params.vega, greeks.vega_usd),
        )
        if not band.contains(value)
    ]


def decide_multi_greek(
    ctx: FactorContext,
    params: MultiGreek,
    candidates: Candidates,
    chain: OptionChain,
    order: OptionOrder,
    max_order_amount: float | None = None,
) -> OptionDecision:
    """Hold while gamma and vega are inside their bands; otherwise solve for the options
    that bring them (and delta) back inside their inner bands at least cost.

    The decision's legs are options only: the perp trade the solve implies is left to the
    perp policy, which sizes it on the beta-delta after these legs (with its band, ratio,
    cooldown and lots), as in every mode.
    """
    before = ctx.before

    def record(
        action: Action,
        reason: str,
        legs: tuple[OptionLeg, ...] = (),
        after: FactorGreeks | None = None,
        misses: tuple[GreekMiss, ...] = (),
        solver: str = "",
    ) -> OptionDecision:
        return OptionDecision(
            ctx.factor, HedgeMode.MULTI_GREEK, action, reason, legs, before, after, misses, solver
        )

    outside = greeks_outside(params, before)
    if not outside:
        return record(Action.HOLD, "gamma and vega inside their bands", after=before)
    problem = greek_problem(ctx, params, candidates, chain)
    solution = solve_greeks(problem, params)
    why = f"{' and '.join(outside)} outside band"
    if solution.status == "time_limit":
        return record(
            Action.SKIP,
            f"{why}; {solution.message}: the perp hedges delta alone",
            solver=solution.status,
        )
    if solution.status != "optimal":
        if solution.status == "no_candidates" and candidates.excluded:
            excluded = ", ".join(f"{reason} {count}" for reason, count in candidates.excluded)
            message = f"{solution.message} (excluded: {excluded})"
        else:
            message = solution.message
        return record(
            Action.SKIP, f"{why}; {message}", misses=solution.misses, solver=solution.status
        )
    reason = (
        f"{why}: {np.count_nonzero(solution.amounts)} option(s) at {solution.cost_usd:,.0f} USD"
    )
    legs = legs_for(
        chain,
        candidates.greeks,
        solution.amounts,
        order,
        [reason] * len(solution.amounts),
        max_order_amount,
    )
    if not legs:
        return record(
            Action.SKIP,
            f"{why}; the solve trades nothing above the venue's minimum",
            misses=solution.misses,
            solver=solution.status,
        )
    # Slicing drops a remainder below the venue's minimum: re-check what the legs do.
    sent = np.zeros(problem.n)
    for leg in legs:
        sent[candidates.greeks.symbols.index(leg.symbol)] += leg.signed_amount
    misses = check_greeks(problem, problem.greeks_of(sent, _perp_to_band(problem, sent)))
    after = greeks_after(before, legs, ctx.index, ctx.price)
    return record(Action.HEDGE, reason, legs=legs, after=after, misses=misses, solver="optimal")
