"""``hedger ctl watch``: a running daemon at a glance, redrawn in place (rich).

Polls the daemon's ``/status`` (and ``/metrics`` for the refusal counts) every interval and
draws: the trading state and readiness, per factor the beta-delta against target and band
(a bar), data age per venue, the last hedges and the refusals. A daemon that stops
answering is shown as such, and the view keeps asking until Ctrl-C.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hedger.console.daemon_client import (
    DaemonClient,
    DaemonRefusedError,
    DaemonUnreachableError,
)
from hedger.console.status_view import (
    age_text,
    band_bar,
    factor_rows,
    readiness_text,
    refusals_text,
    trading_text,
    venue_rows,
)
from hedger.console.times import clock_time

_STATE_STYLE = {"running": "bold green", "paused": "bold yellow", "halted": "bold white on red"}
HEDGES_SHOWN = 6


def _state_style(status: Mapping[str, Any]) -> str:
    return _STATE_STYLE.get(str(status.get("trading_state")), "bold cyan")


def _factors(status: Mapping[str, Any]) -> RenderableType:
    rows = factor_rows(status)
    if not rows:
        return Text("factors: no exposure computed yet", style="yellow")
    table = Table(title="factors", title_justify="left")
    table.add_column("factor")
    table.add_column("beta-delta", justify="right")
    table.add_column("target ± band", justify="right")
    table.add_column("band", no_wrap=True)
    table.add_column("state")
    table.add_column("decision", overflow="fold")
    for f in rows:
        inside = f.band_state == "inside"
        table.add_row(
            f.factor,
            f"{f.beta_delta:+,.4f} {f.factor}\n{f.beta_delta_usd:+,.0f} USD",
            f"{f.target:+,.4f} ± {f.band_half_width:.4f}",
            Text(band_bar(f.deviation, f.band_half_width), style="green" if inside else "red"),
            Text(f.band_state, style="green" if inside else "bold red"),
            f"{f.action}: {f.reason}",
        )
    return table


def _venues(status: Mapping[str, Any]) -> RenderableType:
    table = Table(title="venues", title_justify="left")
    for header in ("venue", "data age", "updates", "reconnects", "dropped"):
        table.add_column(header, justify="left" if header == "venue" else "right")
    stale = bool(status.get("stale_inputs"))
    for v in venue_rows(status):
        dropped = sum(v.bad_messages.values())
        table.add_row(
            v.venue,
            Text(age_text(v.data_age_s), style="bold red" if stale else ""),
            f"{v.updates:,}",
            str(v.reconnects),
            f"{dropped:,}",
        )
    return table


def _hedges(status: Mapping[str, Any]) -> RenderableType:
    hedges = list(status.get("last_hedges") or ())[:HEDGES_SHOWN]
    if not hedges:
        return Text("last hedges: none since start")
    table = Table(title="last hedges", title_justify="left")
    for header in ("time", "intent", "factor", "side", "amount", "symbol", "USD", "result"):
        table.add_column(header, justify="right" if header in ("amount", "USD") else "left")
    for h in hedges:
        at = h.get("at_ms")
        amount = h.get("amount", h.get("qty"))
        result = str(h.get("result"))
        table.add_row(
            clock_time(int(at)) if isinstance(at, int) else "?",
            f"#{h.get('intent_seq')}",
            str(h.get("factor")),
            str(h.get("side")),
            f"{amount:,.6g}" if isinstance(amount, int | float) else "?",
            str(h.get("symbol")),
            f"{float(h.get('notional_usd') or 0.0):,.0f}",
            Text(result, style="green" if result == "filled" else "yellow"),
        )
    return table


def render(
    status: Mapping[str, Any] | None,
    refusals: Mapping[str, float] | None,
    url: str,
    now_ms: int,
    error: str | None = None,
) -> RenderableType:
    """One screen of the view (``status`` None: the daemon did not answer, ``error`` says
    why)."""
    head = Text(f"hedger ctl watch  {url}  {clock_time(now_ms)}  (Ctrl-C quits)", style="dim")
    if status is None:
        return Group(head, Text(f"daemon not answering: {error}", style="bold red"))
    state = Text.assemble(
        (f"daemon {status.get('name')}: trading ", ""),
        (trading_text(status), _state_style(status)),
        (f"  {readiness_text(status)}", "green" if status.get("ready") else "yellow"),
    )
    nav = status.get("nav_usd")
    money = Text(
        f"NAV {nav:,.0f} USD; {status.get('cycles')} cycles; config {status.get('config_version')}"
        if isinstance(nav, int | float)
        else f"NAV not computed yet; config {status.get('config_version')}"
    )
    refused = Text(refusals_text(refusals), style="yellow" if refusals else "")
    return Group(head, state, money, _factors(status), _venues(status), _hedges(status), refused)


def snapshot(client: DaemonClient) -> tuple[dict[str, Any] | None, dict[str, float] | None, str]:
    """The status, the refusal counts and an error ('' when the daemon answered)."""
    try:
        status = client.status()
    except (DaemonUnreachableError, DaemonRefusedError, ValueError) as exc:
        return None, None, str(exc)
    try:
        refusals: dict[str, float] | None = client.refusals()
    except (DaemonUnreachableError, DaemonRefusedError, ValueError):
        refusals = None
    return status, refusals, ""


def watch(
    client: DaemonClient,
    interval_s: float = 1.0,
    console: Console | None = None,
    clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
) -> int:
    """Redraw until Ctrl-C; exit code 0."""
    console = console or Console()
    try:
        with Live(console=console, auto_refresh=False, screen=True) as live:
            while True:
                status, refusals, error = snapshot(client)
                live.update(render(status, refusals, client.url, clock_ms(), error), refresh=True)
                time.sleep(interval_s)  # the refresh period of a terminal view
    except KeyboardInterrupt:
        return 0
