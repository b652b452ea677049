"""A real Prometheus scrapes a running daemon; the samples are read back through its HTTP API.

Also checks the contract from the other side: every metric name the alert rules and the
Grafana dashboard use is exported by the daemon's /metrics.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from hedger.config import load_config
from hedger.live.daemon import start_daemon, stop_daemon
from tests.deploy.metric_refs import alert_metric_names, dashboard_metric_names
from tests.net import free_port
from tests.obs.test_http import write_config

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = shutil.which("prometheus")


def exported_names(exposition: str) -> set[str]:
    """Metric family names in a text exposition, from its TYPE lines (so families without
    samples yet count), plus every sample name (``_bucket``, ``_total``...)."""
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            names.add(name)
            if kind == "counter":
                names.add(name + "_total")
            if kind == "histogram":
                names |= {name + "_bucket", name + "_sum", name + "_count"}
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def referenced_names() -> dict[str, set[str]]:
    """Metric tokens (as written: a histogram's ``_bucket``) in the alert rules and the
    dashboard's queries."""
    return {"alerts.yml": alert_metric_names(), "hedger.json": dashboard_metric_names()}


def _query(base: str, promql: str) -> list[object]:
    url = f"{base}/api/v1/query?query={urllib.parse.quote(promql)}"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    result: list[object] = body["data"]["result"]
    return result


async def test_every_referenced_metric_is_exported(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    daemon = await start_daemon(load_config(path), str(path), watch_config=False)
    try:
        assert daemon.http is not None
        deadline = time.monotonic() + 20
        while not any(h.result == "filled" for h in daemon.engine.recent_hedges):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        # The daemon serves from this event loop: a blocking client would deadlock it.
        async with (
            aiohttp.ClientSession() as session,
            session.get(daemon.http.url + "/metrics") as response,
        ):
            exposition = await response.text()
    finally:
        await stop_daemon(daemon)
    exported = exported_names(exposition)
    for source, names in referenced_names().items():
        missing = names - exported
        assert not missing, f"{source} uses metrics the daemon does not export: {missing}"


@pytest.mark.skipif(
    PROMETHEUS is None,
    reason="PROMETHEUS MISSING: install Debian's 'prometheus' package (make test does, as root "
    "with apt); the real scrape is NOT being tested",
)
async def test_a_real_prometheus_scrapes_the_daemon(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    daemon = await start_daemon(load_config(path), str(path), watch_config=False)
    assert daemon.http is not None and PROMETHEUS is not None
    web_port = free_port()
    scrape = tmp_path / "prometheus.yml"
    scrape.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: hedger\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{daemon.http.port}']}}]\n"
    )
    prometheus = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={scrape}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{web_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{web_port}"
    try:
        deadline = time.monotonic() + 60
        found: dict[str, list[object]] = {}
        while time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            assert prometheus.poll() is None, "prometheus exited"
            try:
                found = {
                    name: _query(base, name)
                    for name in ("hedger_portfolio_beta", "hedger_hedge_orders_total")
                }
            except OSError:
                continue  # not listening yet
            if all(found.values()):
                break
        assert all(found.values()), found
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
        await stop_daemon(daemon)
