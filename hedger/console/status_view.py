"""A daemon's ``/status`` as an operator reads it: state, each factor against its band,
data age per venue, the last hedges and the refusals.

Pure functions of the status document (and the refusal counts from ``/metrics``): the plain
text of ``hedger ctl status`` and the pieces ``hedger ctl watch`` draws with rich.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hedger.console.daemon_client import DaemonClient, DaemonRefusedError, DaemonUnreachableError
from hedger.console.times import clock_time

BAR_WIDTH = 21
"""odd, so the target sits on the middle cell; the bar spans two band half-widths a side"""


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


@dataclass(slots=True, frozen=True)
class FactorRow:
    factor: str
    price: float
    beta_delta: float
    """factor units"""
    beta_delta_usd: float
    target: float
    band_half_width: float
    deviation: float
    action: str
    reason: str

    @property
    def band_state(self) -> str:
        if not (math.isfinite(self.deviation) and math.isfinite(self.band_half_width)):
            return "unknown"
        return "inside" if abs(self.deviation) <= self.band_half_width else "OUTSIDE"


def factor_rows(status: Mapping[str, Any]) -> list[FactorRow]:
    return [
        FactorRow(
            factor=str(f.get("factor")),
            price=_float(f.get("price")),
            beta_delta=_float(f.get("beta_delta")),
            beta_delta_usd=_float(f.get("beta_delta_usd")),
            target=_float(f.get("target")),
            band_half_width=_float(f.get("band_half_width")),
            deviation=_float(f.get("deviation")),
            action=str(f.get("action") or "-"),
            reason=str(f.get("reason") or ""),
        )
        for f in status.get("factors") or ()
    ]


def band_bar(deviation: float, half_width: float, width: int = BAR_WIDTH) -> str:
    """``·····│────┼─●──│·····``: the band between ``│``, the target at ``┼``, the
    beta-delta at ``●`` (``◀``/``▶`` past two half-widths)."""
    if not (math.isfinite(deviation) and math.isfinite(half_width) and half_width > 0):
        return "?" * width
    last = width - 1

    def cell(x: float) -> int:
        return round((x / half_width + 2.0) / 4.0 * last)

    cells = ["─" if abs(i * 4.0 / last - 2.0) <= 1.0 else "·" for i in range(width)]
    cells[cell(-half_width)] = cells[cell(half_width)] = "│"
    cells[cell(0.0)] = "┼"
    where = cell(deviation)
    if where < 0:
        cells[0] = "◀"
    elif where > last:
        cells[last] = "▶"
    else:
        cells[where] = "●"
    return "".join(cells)


def trading_text(status: Mapping[str, Any]) -> str:
    state = str(status.get("trading_state") or "unknown").upper().replace("_", " ")
    reason = status.get("trading_reason")
    return f"{state} ({reason})" if reason else state


def readiness_text(status: Mapping[str, Any]) -> str:
    if status.get("ready"):
        return "ready"
    return "not ready: " + "; ".join(str(r) for r in status.get("not_ready_because") or ())


@dataclass(slots=True, frozen=True)
class VenueRow:
    venue: str
    data_age_s: float
    updates: int
    reconnects: int
    bad_messages: Mapping[str, int]


def venue_rows(status: Mapping[str, Any]) -> list[VenueRow]:
    feeds: Mapping[str, Any] = status.get("feeds") or {}
    return [
        VenueRow(
            venue=name,
            data_age_s=_float(feed.get("oldest_input_age_s")),
            updates=int(feed.get("updates") or 0),
            reconnects=int(feed.get("reconnects") or 0),
            bad_messages=dict(feed.get("bad_messages") or {}),
        )
        for name, feed in feeds.items()
    ]


def age_text(age_s: float) -> str:
    if not math.isfinite(age_s):
        return "no data"
    return f"{age_s:.1f} s" if age_s < 120 else f"{age_s / 60:.0f} min"


def hedge_line(hedge: Mapping[str, Any]) -> str:
    amount = _float(hedge.get("amount", hedge.get("qty")))
    notional = _float(hedge.get("notional_usd"))
    at = hedge.get("at_ms")
    when = clock_time(int(at)) if isinstance(at, int) else "?"
    return (
        f"{when}  #{hedge.get('intent_seq')} {hedge.get('factor')} {hedge.get('side')} "
        f"{amount:,.6g} {hedge.get('symbol')} ({notional:,.0f} USD) {hedge.get('result')}"
    )


def refusals_text(refusals: Mapping[str, float] | None) -> str:
    if refusals is None:
        return "refused since start: unknown (/metrics unreadable)"
    if not refusals:
        return "refused since start: none"
    parts = sorted(refusals.items(), key=lambda kv: -kv[1])
    return "refused since start: " + ", ".join(f"{reason} {n:,.0f}" for reason, n in parts)


def _signed(value: float, digits: int = 4) -> str:
    return f"{value:+,.{digits}f}" if math.isfinite(value) else "?"


def status_text(
    status: Mapping[str, Any], url: str, refusals: Mapping[str, float] | None = None
) -> str:
    """The readable summary ``hedger ctl status`` prints."""
    lines = [
        f"hedger daemon '{status.get('name')}' at {url}: trading {trading_text(status)}, "
        f"{readiness_text(status)}; config {status.get('config_version')}"
    ]
    nav, vega, theta = (_float(status.get(k)) for k in ("nav_usd", "vega_usd", "theta_usd"))
    p50, p99 = (_float(status.get(k)) * 1000 for k in ("cycle_seconds_p50", "cycle_seconds_p99"))
    lines.append(
        f"  NAV {nav:,.0f} USD, vega {vega:+,.0f} USD/vol pt, theta {theta:+,.0f} USD/day; "
        f"{status.get('cycles')} cycles (p50 {p50:.1f} ms, p99 {p99:.1f} ms)"
    )
    lines.append("")
    rows = factor_rows(status)
    if not rows:
        lines.append("factors: no exposure computed yet")
    for f in rows:
        lines.append(
            f"{f.factor:<6} beta-delta {_signed(f.beta_delta)} {f.factor} "
            f"({f.beta_delta_usd:+,.0f} USD) against {_signed(f.target)} ± "
            f"{f.band_half_width:.4f}  {band_bar(f.deviation, f.band_half_width)}  "
            f"{f.band_state}"
        )
        lines.append(f"       {f.action}: {f.reason}")
    lines.append("")
    for v in venue_rows(status):
        bad = ", ".join(f"{k} {n}" for k, n in v.bad_messages.items())
        lines.append(
            f"venue {v.venue}: data age {age_text(v.data_age_s)}, {v.updates:,} updates, "
            f"{v.reconnects} reconnects" + (f", dropped messages: {bad}" if bad else "")
        )
    hedges: Sequence[Mapping[str, Any]] = status.get("last_hedges") or ()
    lines.append("last hedges (newest first):" if hedges else "last hedges: none since start")
    lines += [f"  {hedge_line(h)}" for h in hedges[:5]]
    lines.append(refusals_text(refusals))
    return "\n".join(lines)


def status_report(client: DaemonClient, as_json: bool = False) -> str:
    """``hedger ctl status``: the raw ``/status`` JSON, or the readable summary (with the
    refusal counts when ``/metrics`` answers)."""
    body = client.get("/status")
    if as_json:
        return body.decode()
    status = json.loads(body)
    try:
        refusals: dict[str, float] | None = client.refusals()
    except (DaemonUnreachableError, DaemonRefusedError, ValueError):
        refusals = None
    return status_text(status, client.url, refusals)
