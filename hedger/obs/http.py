"""One HTTP port for operators: /metrics, /healthz, /readyz, /status and /control/*.

Control endpoints need ``Authorization: Bearer <http.token>``; without a configured token
they are closed. A request without a valid token gets 401 and changes nothing.
"""

from __future__ import annotations

import hmac
import math
import time
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from hedger.core import guards
from hedger.live.control import Control
from hedger.live.engine import Engine
from hedger.obs.logging import redact


def _json(data: Any, status: int = 200) -> web.Response:
    body = orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY, default=_finite)
    return web.Response(body=body, status=status, content_type="application/json")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return None if not math.isfinite(value) else value
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _number(value: float) -> float | None:
    """JSON has no NaN or infinity: say 'unknown' as null."""
    value = float(value)
    return value if math.isfinite(value) else None


def readiness(engine: Engine) -> list[str]:
    """Why the daemon is not ready to hedge (empty: ready)."""
    reasons = []
    if not engine.positions_reconciled:
        reasons.append("positions not reconciled")
    if engine.exposure is None:
        reasons.append("no exposure computed yet")
    if engine.stale_inputs:
        reasons.append(f"stale inputs: {', '.join(engine.stale_inputs)}")
    if engine.implausible_inputs:
        reasons.append(f"implausible data: {', '.join(engine.implausible_inputs)}")
    if engine.trading_state == "halted":
        reasons.append(f"halted: {engine.guard_state.reason}")
    now_s = engine.monotonic()
    # A cycle awaits its order; a few pulses without one means decisions are stuck behind it.
    stuck_after_s = 5 * engine.pulse_interval_s
    if engine.last_cycle_s is not None and now_s - engine.last_cycle_s > stuck_after_s:
        reasons.append(f"no cycle for {now_s - engine.last_cycle_s:.1f} s")
    for venue, executor in engine.executors.items():
        since = executor.failing_since_s
        if since is not None and now_s - since > engine.cfg.market.stale_after:
            reasons.append(f"{venue} REST failing for {now_s - since:.1f} s")
    return reasons


def option_status(engine: Engine) -> dict[str, Any]:
    """Per factor hedged with options: its mode, gamma and vega against their bands, the
    last decision; the options the hedge holds and the premium bought over the last day."""
    bands = {f.asset: f.options.multi_greek for f in engine.cfg.factors}
    factors = []
    for d in engine.option_decisions:
        greeks = d.before
        band = bands.get(d.factor)
        factors.append(
            {
                "factor": d.factor,
                "mode": d.mode.value,
                "action": d.action.value,
                "reason": d.reason,
                "gamma_usd_per_pct": None if greeks is None else _number(greeks.gamma_usd_per_pct),
                "gamma_band": None if band is None else band.gamma.model_dump(),
                "vega_usd": None if greeks is None else _number(greeks.vega_usd),
                "vega_band": None if band is None else band.vega.model_dump(),
            }
        )
    held = [
        {"venue": p.instrument.venue, "symbol": p.instrument.symbol, "amount": _number(p.qty)}
        for p in engine.venue_positions
        if p.instrument.kind.value == "option"
    ]
    spent = guards.premium_spent_usd(engine.guard_state, engine.clock_ms())
    return {"factors": factors, "held_by_hedge": held, "premium_spent_day_usd": _number(spent)}


def status(engine: Engine, control: Control) -> dict[str, Any]:
    now_s = engine.monotonic()
    result = engine.exposure
    factors = []
    if result is not None:
        for k, factor in enumerate(result.factors):
            decision = engine.decision_of(factor)
            factors.append(
                {
                    "factor": factor,
                    "price": _number(result.factor_price[k]),
                    "beta_delta": _number(result.beta_delta[k]),
                    "beta_delta_usd": _number(result.beta_delta_usd[k]),
                    "portfolio_beta": _number(result.portfolio_beta[k]),
                    "gamma_usd_per_pct": _number(result.gamma_usd_per_pct[k]),
                    "target": None if decision is None else _number(decision.target),
                    "band_half_width": None
                    if decision is None
                    else _number(decision.band_half_width),
                    "deviation": None if decision is None else _number(decision.deviation),
                    "action": None if decision is None else decision.action.value,
                    "reason": None if decision is None else decision.reason,
                }
            )
    assets = []
    if result is not None:
        betas = engine.betas
        per_asset = result.asset_factor_delta_usd
        for i, asset in enumerate(result.assets):
            assets.append(
                {
                    "asset": asset,
                    "price": _number(result.asset_price[i]),
                    "delta_usd": _number(result.asset_delta_usd[i]),
                    "loadings": [_number(x) for x in result.loadings[i]],
                    "beta_delta_usd": [_number(x) for x in per_asset[i]],
                    "beta_warm": None if betas is None else bool(betas.is_warm[i]),
                    "beta_collinear": None if betas is None else bool(betas.collinear[i]),
                }
            )
    feeds = {}
    for name, link in engine.links.items():
        age = engine.oldest_input_age_s(name, now_s)
        feeds[name] = {
            "oldest_input_age_s": None if age is None else _number(age),
            "updates": 0 if link.market is None else link.market.state.accepted,
            "reconnects": link.reconnects,
            "bad_messages": {}
            if link.market is None
            else {r.value: n for r, n in link.market.state.rejected.items() if n},
        }
    guard = engine.guard_state
    return {
        "name": engine.cfg.name,
        "trading_state": engine.trading_state,
        "trading_reason": guard.reason,
        "consecutive_errors": guard.consecutive_errors,
        "config_version": control.version,
        "ready": not readiness(engine),
        "not_ready_because": readiness(engine),
        "nav_usd": None if result is None else _number(result.nav_usd),
        "vega_usd": None if result is None else _number(result.vega_usd),
        "theta_usd": None if result is None else _number(result.theta_usd),
        "factors": factors,
        "options": option_status(engine),
        "assets": assets,
        "stale_inputs": list(engine.stale_inputs),
        "feeds": feeds,
        "cycles": engine.stats.cycles,
        "cycle_seconds_p50": _number(engine.stats.cycle_seconds.quantile(0.5)),
        "cycle_seconds_p99": _number(engine.stats.cycle_seconds.quantile(0.99)),
        "last_hedges": [
            {
                "at_ms": h.at_ms,
                "factor": h.factor,
                "venue": h.venue,
                "symbol": h.symbol,
                "side": h.side,
                "amount": h.amount,
                "notional_usd": h.notional_usd,
                "result": h.result,
                "reason": h.reason,
                "intent_seq": h.intent_seq,
            }
            for h in reversed(engine.recent_hedges)
        ][:20],
        "server_time_ms": int(time.time() * 1000),
    }


def build_app(
    engine: Engine, control: Control, registry: CollectorRegistry, token: str | None
) -> web.Application:
    expected = f"Bearer {token}".encode() if token else None

    def authorised(request: web.Request) -> bool:
        given = request.headers.get("Authorization", "").encode()
        return expected is not None and hmac.compare_digest(given, expected)

    def refuse() -> web.Response:
        why = "missing or invalid bearer token" if expected else "no http.token configured"
        return _json({"error": f"unauthorised: {why}"}, status=401)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(request: web.Request) -> web.Response:
        return _json({"status": "alive"})

    async def readyz(request: web.Request) -> web.Response:
        reasons = readiness(engine)
        return _json({"ready": not reasons, "reasons": reasons}, status=503 if reasons else 200)

    async def get_status(request: web.Request) -> web.Response:
        return _json(status(engine, control))

    async def pause(request: web.Request) -> web.Response:
        if not authorised(request):
            return refuse()
        return _json(control.pause(who=request.remote or "http"))

    async def resume(request: web.Request) -> web.Response:
        if not authorised(request):
            return refuse()
        return _json(control.resume(who=request.remote or "http"))

    async def reload(request: web.Request) -> web.Response:
        if not authorised(request):
            return refuse()
        result = await control.reload(trigger="http")
        # A refused file's errors quote what it says, which may be a misplaced credential.
        return _json(redact(result.as_dict()), status=200 if result.applied else 422)

    async def flatten(request: web.Request) -> web.Response:
        if not authorised(request):
            return refuse()
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("confirm") != engine.cfg.name:
            # The daemon's own name, so a command aimed at the wrong daemon cannot close
            # this one's hedges.
            why = f'body must be JSON with "confirm": "{engine.cfg.name}" (the daemon name)'
            return _json({"error": why}, status=400)
        factors = body.get("factors") or []
        if not (isinstance(factors, list) and all(isinstance(f, str) for f in factors)):
            return _json({"error": '"factors" must be a list of factor assets'}, status=400)
        try:
            report = await control.flatten(
                request.remote or "http", factors, dry_run=bool(body.get("dry_run"))
            )
        except (ValueError, RuntimeError) as exc:
            return _json({"error": str(exc)}, status=409)
        return _json(report)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/status", get_status)
    app.router.add_post("/control/pause", pause)
    app.router.add_post("/control/resume", resume)
    app.router.add_post("/control/reload", reload)
    app.router.add_post("/control/flatten", flatten)
    return app


class HttpServer:
    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self.app, self.host, self.port = app, host, port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
