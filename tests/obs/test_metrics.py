"""/metrics as Prometheus reads it: closed label sets, known series from start-up at 0, and
the gauges the alert rules watch (readiness, config in sync with its file)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from hedger.config import load_config
from hedger.execution.journal import Journal
from hedger.live.control import Control
from hedger.live.daemon import start_daemon, stop_daemon
from hedger.live.engine import Engine
from hedger.obs.http import readiness
from hedger.obs.labels import HEDGE_RESULTS, REFUSAL_KINDS, RELOAD_RESULTS
from hedger.obs.metrics import build_registry
from tests.obs.test_http import until, write_config

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(registry: CollectorRegistry) -> Samples:
    """Every sample of the text exposition, parsed back as Prometheus would read it."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def values_of(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(labels)[label]: v for (n, labels), v in samples.items() if n == name}


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture
def engine(config_path: Path) -> Iterator[Engine]:
    """The real engine of the paper config, built but never started: no hedge, no cycle."""
    cfg = load_config(config_path)
    journal = Journal(cfg.journal.path)
    yield Engine(cfg, {}, journal)
    journal.close()


@pytest.fixture
def control(engine: Engine, config_path: Path) -> Control:
    return Control(engine, load_config(config_path), str(config_path))


def test_a_fresh_collector_exports_every_known_label_at_zero(
    engine: Engine, control: Control
) -> None:
    """increase() and rate() need a sample before the first event: without these zeros
    the first failed hedge or refusal after a restart never raises an alert."""
    samples = scrape(build_registry(engine, control))
    hedge = {"venue": "paper", "instrument": "BTC-PERPETUAL"}
    assert samples[key("hedger_hedge_orders_total", **hedge, result="failed")] == 0
    orders = {
        dict(labels)["result"]: value
        for (name, labels), value in samples.items()
        if name == "hedger_hedge_orders_total" and hedge.items() <= dict(labels).items()
    }
    assert orders == dict.fromkeys(HEDGE_RESULTS, 0.0)
    assert samples[key("hedger_guard_refusals_total", reason="stale_inputs")] == 0
    refusals = values_of(samples, "hedger_guard_refusals_total", "reason")
    assert refusals == dict.fromkeys(REFUSAL_KINDS, 0.0)
    reloads = values_of(samples, "hedger_config_reloads_total", "result")
    assert reloads == dict.fromkeys(RELOAD_RESULTS, 0.0)


def test_a_raw_venue_status_is_exported_as_failed(engine: Engine) -> None:
    """An unfilled leg the engine counted under the venue's word ("open", "cancelled")
    would be a series no alert selects."""
    engine.stats.hedge_orders[("paper", "BTC-PERPETUAL", "open")] += 1
    engine.stats.hedge_orders[("paper", "BTC-PERPETUAL", "cancelled")] += 2
    engine.stats.hedge_orders[("paper", "BTC-PERPETUAL", "failed")] += 3
    engine.stats.hedge_orders[("paper", "BTC-PERPETUAL", "filled")] += 4
    samples = scrape(build_registry(engine))
    results = values_of(samples, "hedger_hedge_orders_total", "result")
    assert set(results) == set(HEDGE_RESULTS)
    assert results["failed"] == 6 and results["filled"] == 4


def test_refusals_of_a_kind_outside_the_set_are_still_exported(engine: Engine) -> None:
    """The zeros add series; they never hide a count the engine made."""
    engine.stats.guard_refusals["stale_inputs"] += 2
    engine.stats.guard_refusals["some_new_gate"] += 1
    refusals = values_of(scrape(build_registry(engine)), "hedger_guard_refusals_total", "reason")
    assert refusals["stale_inputs"] == 2 and refusals["some_new_gate"] == 1
    assert set(refusals) == {*REFUSAL_KINDS, "some_new_gate"}


async def test_config_in_sync_turns_0_when_a_reload_is_refused(
    engine: Engine, control: Control, config_path: Path
) -> None:
    """A refused reload keeps the old config running: a restart would start the file's."""
    registry = build_registry(engine, control)
    assert scrape(registry)[key("hedger_config_in_sync")] == 1
    good = config_path.read_text()
    config_path.write_text(good.replace("half_width: 0.25", "half_width: -1"))
    result = await control.reload(trigger="test")
    assert not result.applied
    samples = scrape(registry)
    assert samples[key("hedger_config_in_sync")] == 0
    assert samples[key("hedger_config_reloads_total", result="refused")] == 1
    config_path.write_text(good)  # the file the daemon runs again
    assert scrape(registry)[key("hedger_config_in_sync")] == 1


def test_config_in_sync_is_0_when_the_file_is_gone(
    engine: Engine, control: Control, config_path: Path
) -> None:
    config_path.unlink()
    assert scrape(build_registry(engine, control))[key("hedger_config_in_sync")] == 0


def test_a_fresh_engine_is_not_ready(engine: Engine) -> None:
    assert readiness(engine)
    assert scrape(build_registry(engine))[key("hedger_ready")] == 0


@pytest.fixture
async def daemon_registry(config_path: Path) -> AsyncIterator[tuple[Engine, CollectorRegistry]]:
    daemon = await start_daemon(load_config(config_path), str(config_path), watch_config=False)
    try:
        yield daemon.engine, build_registry(daemon.engine, daemon.control)
    finally:
        await stop_daemon(daemon)


async def test_hedger_ready_is_what_readyz_answers(
    daemon_registry: tuple[Engine, CollectorRegistry],
) -> None:
    engine, registry = daemon_registry
    await until(lambda: not readiness(engine))
    # No await between the two reads: the event loop cannot change the engine in between.
    ready = not readiness(engine)
    samples = scrape(registry)
    assert ready and samples[key("hedger_ready")] == 1
    assert samples[key("hedger_config_in_sync")] == 1
