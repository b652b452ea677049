"""Message rate the paper venue sustains on loopback, and what it costs in CPU.

Starts ``hedger paper-venue`` as its own process, subscribes one websocket client to the
ticker channel of every instrument, counts pushes for a while, and reads the venue's CPU
time from /proc.

    .venv/bin/python benchmarks/bench_paper_venue.py [--seconds 10] [--ticks-per-second 10]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp
import orjson
from venue_process import cpu_seconds, paper_venue


async def measure(urls: dict[str, str], pid: int, seconds: float) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(urls["rest"] + "/api/v2/public/get_instruments") as response:
            names = [row["instrument_name"] for row in (await response.json())["result"]]
        async with session.ws_connect(urls["ws"], max_msg_size=1 << 24) as ws:
            channels = [f"ticker.{name}.100ms" for name in names]
            await ws.send_str(
                orjson.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "public/subscribe",
                        "params": {"channels": channels},
                    }
                ).decode()
            )
            await asyncio.sleep(1.0)  # let the subscription settle
            count = nbytes = 0
            cpu0, t0 = cpu_seconds(pid), time.perf_counter()
            deadline = t0 + seconds
            while time.perf_counter() < deadline:
                try:
                    message = await ws.receive(timeout=max(0.01, deadline - time.perf_counter()))
                except TimeoutError:
                    break
                if message.type is aiohttp.WSMsgType.TEXT:
                    count += 1
                    nbytes += len(message.data)
            elapsed, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    print(f"instruments subscribed: {len(names)}")
    print(f"ticker pushes: {count / elapsed:,.0f} msgs/s, mean {nbytes / max(count, 1):,.0f} bytes")
    print(f"venue CPU: {cpu / elapsed:.2f} cores ({cpu / max(count, 1) * 1e6:.1f} us per push)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--ticks-per-second", type=float, default=10.0)
    args = parser.parse_args()
    options = ("--history-hours", "1", "--ticks-per-second", str(args.ticks_per_second))
    with paper_venue(*options) as (venue, urls):
        asyncio.run(measure(urls, venue.pid, args.seconds))


if __name__ == "__main__":
    main()
