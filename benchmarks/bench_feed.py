"""How fast tickers get from a websocket frame into MarketState.

1. Parse + store: ~768-byte Deribit ticker notifications built in memory, pushed through
   ``handle_frame`` (the function the native feed calls per frame), one core, no socket.
   DESIGN.md's budget for the native path is about 2 microseconds per message.
2. End to end (``--e2e``): ``hedger paper-venue`` in its own process at a high tick rate, every
   instrument subscribed, messages stored per second by the native feed and by the ccxt.pro
   feed (one ``watch_ticker`` loop per symbol), one after the other.

    .venv/bin/python benchmarks/bench_feed.py [--messages 200000] [--e2e --seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any

import orjson
from venue_process import paper_venue

from hedger.market.deribit_feed import DeribitTickerFeed, handle_frame
from hedger.market.state import LiveMarket, MarketState

START_MS = 1_796_000_000_000


def instrument_names(count: int) -> list[str]:
    names = ["BTC-PERPETUAL", "ETH-PERPETUAL"]
    strike = 60_000
    while len(names) < count:
        names.append(f"BTC-27NOV26-{strike}-{'CP'[len(names) % 2]}")
        strike += 1_000 * (len(names) % 2)
    return names


def ticker_frame(name: str, ts_ms: int, rng: random.Random) -> bytes:
    """One notification shaped like Deribit's ticker.<name>.100ms push for an option."""
    underlying = 90_000.0 + rng.uniform(-500, 500)
    mark = rng.uniform(0.001, 0.2)
    data = {
        "instrument_name": name,
        "timestamp": ts_ms,
        "state": "open",
        "best_bid_price": round(mark * 0.99, 4),
        "best_bid_amount": 12.5,
        "best_ask_price": round(mark * 1.01, 4),
        "best_ask_amount": 7.0,
        "mark_price": mark,
        "index_price": underlying - 2.2,
        "last_price": round(mark, 4),
        "open_interest": 110.0,
        "stats": {"volume": 12.3, "volume_usd": 1_107_000.0, "low": 0.0233, "high": 0.0392},
        "underlying_price": underlying,
        "underlying_index": "BTC-27NOV26",
        "interest_rate": 0.0,
        "mark_iv": rng.uniform(40, 120),
        "bid_iv": 80.86697358552864,
        "ask_iv": 87.92009937519697,
        "greeks": {
            "delta": rng.uniform(-1, 1),
            "gamma": 0.00003896452450559424,
            "vega": 127.707523880111,
            "theta": -293.47278257346363,
            "rho": 0.51234,
        },
    }
    channel = f"ticker.{name}.100ms"
    return orjson.dumps(
        {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}}
    )


def bench_parse_store(n_messages: int, n_instruments: int, repeats: int) -> None:
    rng = random.Random(1)
    names = instrument_names(n_instruments)
    # Each instrument's timestamps increase, so every message is stored (none out of order).
    frames = [
        ticker_frame(names[i % n_instruments], START_MS + i, rng).decode()
        for i in range(n_messages)
    ]
    mean_bytes = sum(map(len, frames)) / len(frames)
    best_s = best_parse_s = float("inf")
    clock = time.monotonic
    for _ in range(repeats):
        market = LiveMarket(MarketState(names))  # fresh: no out-of-order drops on repeat
        started = time.perf_counter()
        for frame in frames:
            handle_frame(market, frame, clock())
        best_s = min(best_s, time.perf_counter() - started)
        assert market.state.accepted == n_messages, market.state.rejected
        started = time.perf_counter()
        for frame in frames:
            orjson.loads(frame)
        best_parse_s = min(best_parse_s, time.perf_counter() - started)
    print(
        f"parse+store (handle_frame): {n_messages:,} msgs x {n_instruments} instruments, "
        f"mean {mean_bytes:.0f} bytes, best of {repeats}"
    )
    print(f"  {n_messages / best_s:,.0f} msgs/s, {best_s / n_messages * 1e9:,.0f} ns/msg")
    print(
        f"  of which orjson.loads alone: {best_parse_s / n_messages * 1e9:,.0f} ns/msg; "
        f"validate+store {(best_s - best_parse_s) / n_messages * 1e9:,.0f} ns/msg"
    )


# -- end to end -------------------------------------------------------------------------------


async def all_instruments(rest_url: str) -> list[str]:
    import aiohttp

    url = rest_url + "/api/v2/public/get_instruments"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return [row["instrument_name"] for row in (await response.json())["result"]]


async def stored_per_second(
    market: LiveMarket, warmup_s: float, seconds: float
) -> tuple[float, float]:
    """Tickers stored per second, and this process's CPU seconds per stored ticker: with two
    processes on few cores the venue may be the bottleneck, and CPU per message still says
    which client is cheaper."""
    await asyncio.sleep(warmup_s)
    before, started, cpu = market.state.accepted, time.perf_counter(), time.process_time()
    await asyncio.sleep(seconds)
    stored = market.state.accepted - before
    cpu_per_msg = (time.process_time() - cpu) / max(stored, 1)
    return stored / (time.perf_counter() - started), cpu_per_msg


async def e2e_native(urls: dict[str, str], seconds: float) -> tuple[tuple[float, float], int]:
    names = await all_instruments(urls["rest"])
    market = LiveMarket(MarketState(names))
    feed = DeribitTickerFeed(market, urls["ws"], names)  # logs at info: once per connect
    feed.start()
    try:
        rate = await stored_per_second(market, 1.0, seconds)
    finally:
        await feed.stop()
    return rate, len(names)


async def e2e_ccxt(urls: dict[str, str], seconds: float) -> tuple[tuple[float, float], int]:
    import ccxt.pro as ccxt_pro

    from hedger.market.ccxt_feed import CcxtTickerFeed

    names = await all_instruments(urls["rest"])
    client: Any = ccxt_pro.deribit({"apiKey": "paper", "secret": "paper"})
    client.urls["api"] = {"rest": urls["rest"], "ws": urls["ws"]}
    market = LiveMarket(MarketState(names))
    feed = CcxtTickerFeed(market, client, names)
    try:
        await feed.start()
        rate = await stored_per_second(market, 2.0, seconds)
    finally:
        await feed.stop()
        await client.close()
    return rate, len(names)


def bench_e2e(ticks_per_second: float, seconds: float) -> None:
    for label, run in (("native aiohttp+orjson", e2e_native), ("ccxt.pro watch_ticker", e2e_ccxt)):
        # A fresh venue each: no shared backlog.
        options = ("--history-hours", "1", "--ticks-per-second", str(ticks_per_second))
        with paper_venue(*options) as (_, urls):
            (rate, cpu_per_msg), n = asyncio.run(run(urls, seconds))
        print(
            f"end to end, {label}: {rate:,.0f} tickers stored/s ({n} instruments), "
            f"client CPU {cpu_per_msg * 1e6:.1f} us/ticker"
        )


# -- receive capacity: a server that only blasts pre-framed tickers ----------------------------


def websocket_frames(frames: list[bytes]) -> bytes:
    """Server-to-client text frames (unmasked, RFC 6455 5.2), concatenated."""
    out = bytearray()
    for payload in frames:
        size = len(payload)
        header = bytes([0x81, size]) if size < 126 else bytes([0x81, 126]) + size.to_bytes(2, "big")
        out += header + payload
    return bytes(out)


def blast_server(port_queue: Any, blob: bytes) -> None:
    """Accept one websocket and write ``blob`` to it forever (runs in its own process)."""
    import base64
    import hashlib

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key")
        )
        magic = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
        accept = base64.b64encode(hashlib.sha1(key + magic).digest())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )

        async def discard() -> None:  # the client's requests: read so its buffer never fills
            while await reader.read(65536):
                pass

        reading = asyncio.create_task(discard())
        try:
            while True:
                writer.write(blob)
                await writer.drain()
        except ConnectionError:
            reading.cancel()

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port_queue.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


async def receive_capacity(port: int, names: list[str], seconds: float) -> tuple[float, float]:
    market = LiveMarket(MarketState(names))
    feed = DeribitTickerFeed(market, f"ws://127.0.0.1:{port}/", names)
    feed.start()
    try:
        return await stored_per_second(market, 1.0, seconds)
    finally:
        await feed.stop()


def bench_receive_capacity(n_instruments: int, seconds: float) -> None:
    import multiprocessing

    names = instrument_names(n_instruments)
    rng = random.Random(2)
    # One timestamp for all: equal timestamps are accepted, so the looping blob is all stored.
    blob = websocket_frames(
        [ticker_frame(names[i % n_instruments], START_MS, rng) for i in range(20_000)]
    )
    ports: Any = multiprocessing.Queue()
    server = multiprocessing.Process(target=blast_server, args=(ports, blob), daemon=True)
    server.start()
    try:
        rate, cpu_per_msg = asyncio.run(receive_capacity(ports.get(timeout=10), names, seconds))
    finally:
        server.terminate()
        server.join(5)
    print(
        f"receive capacity, native feed (socket -> aiohttp -> handle_frame): {rate:,.0f} "
        f"tickers stored/s, client CPU {cpu_per_msg * 1e6:.2f} us/ticker"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--instruments", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--e2e", action="store_true", help="also measure against the venue")
    parser.add_argument(
        "--capacity", action="store_true", help="also measure the native feed against a blaster"
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--ticks-per-second", type=float, default=200.0)
    args = parser.parse_args()
    bench_parse_store(args.messages, args.instruments, args.repeats)
    if args.capacity:
        bench_receive_capacity(args.instruments, args.seconds)
    if args.e2e:
        bench_e2e(args.ticks_per_second, args.seconds)


if __name__ == "__main__":
    main()
