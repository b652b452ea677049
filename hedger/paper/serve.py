"""Build and run the paper venue: accounts from a file or the default ``paper``/``paper``."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import orjson
import yaml

from hedger.paper.auth import ApiKey
from hedger.paper.faults import FaultPlan, Faults
from hedger.paper.server import PaperVenueServer
from hedger.paper.venue import PaperExchange

DEFAULT_ACCOUNT = ApiKey(name="paper", api_key="paper", secret="paper")


def load_accounts(
    path: str | Path | None,
) -> tuple[dict[str, ApiKey], dict[str, dict[str, float]]]:
    """Accounts keyed by API key, and each account's starting balances.

    The file is a YAML list of ``{name, api_key, secret, balances: {BTC: 10, ...}}``.
    """
    if path is None:
        return {DEFAULT_ACCOUNT.api_key: DEFAULT_ACCOUNT}, {}
    rows = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"{path}: expected a non-empty list of accounts")
    accounts, balances = {}, {}
    for n, row in enumerate(rows):
        try:
            account = ApiKey(
                name=str(row["name"]), api_key=str(row["api_key"]), secret=str(row["secret"])
            )
        except (KeyError, TypeError):
            raise ValueError(f"{path}: account #{n} needs name, api_key and secret") from None
        accounts[account.api_key] = account
        if row.get("balances"):
            balances[account.name] = {str(k): float(v) for k, v in row["balances"].items()}
    return accounts, balances


def build_server(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    scenario: str = "stress-switching",
    seed: int = 7,
    ticks_per_second: float = 10.0,
    speed: float = 1.0,
    history_minutes: int = 7 * 24 * 60,
    accounts_file: str | Path | None = None,
    faults: object = None,
) -> PaperVenueServer:
    accounts, balances = load_accounts(accounts_file)
    plan = FaultPlan.parse({} if faults is None else faults)
    exchange = PaperExchange(
        accounts,
        scenario=scenario,
        seed=seed,
        start_ms=int(time.time() * 1000),
        balances=balances,
        history_minutes=history_minutes,
        faults=Faults(plan),
    )
    return PaperVenueServer(
        exchange, host=host, port=port, ticks_per_second=ticks_per_second, speed=speed
    )


async def serve_forever(server: PaperVenueServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    print(orjson.dumps({"rest": server.rest_url, "ws": server.ws_url}).decode(), flush=True)
    await stop.wait()
    await server.stop()
