"""Market simulator and matching engine: pure, deterministic, no I/O, no clock reads.

``Market(scenario("stress-switching"), seed=7)`` simulates prices, an option surface, funding
and synthetic books; ``step(now_ms)`` advances it. ``MatchingEngine(market)`` holds accounts,
orders, trades and positions in Deribit's units; call ``advance(now_ms)`` after each step.
A server (``hedger.paper``) or a backtester drives both with its own clock.
"""

from hedger.sim.errors import SimError
from hedger.sim.instruments import SimInstrument
from hedger.sim.market import Market
from hedger.sim.matching import Events, Execution, MatchingEngine
from hedger.sim.orders import Order, OrderState, Trade
from hedger.sim.process import Regime
from hedger.sim.scenario import SCENARIOS, Scenario, scenario

__all__ = [
    "SCENARIOS",
    "Events",
    "Execution",
    "Market",
    "MatchingEngine",
    "Order",
    "OrderState",
    "Regime",
    "Scenario",
    "SimError",
    "SimInstrument",
    "Trade",
    "scenario",
]
