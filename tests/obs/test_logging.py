"""Logging: JSON lines with the event name, and no secret ever leaves a processor."""

from __future__ import annotations

import io
import json

import structlog

from hedger.obs.logging import REDACTED, configure_logging, register_secrets

CANARY = "canary-logging-4d2b"


def _log_lines(emit: object) -> list[dict[str, object]]:
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    emit(structlog.get_logger())  # type: ignore[operator]
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_event_level_and_fields() -> None:
    (line,) = _log_lines(lambda log: log.info("hedge_sent", venue="paper", qty=10.0))
    assert line["event"] == "hedge_sent"
    assert line["level"] == "info"
    assert line["qty"] == 10.0
    assert "timestamp" in line


def test_credential_keys_and_registered_values_are_redacted() -> None:
    register_secrets([CANARY])
    (line,) = _log_lines(
        lambda log: log.warning(
            "order_failed",
            api_key="abc",
            error=f"401 for key {CANARY} at venue",
            request={"headers": {"Authorization": "deri-hmac x"}, "params": [CANARY]},
        )
    )
    text = json.dumps(line)
    assert CANARY not in text and "deri-hmac" not in text
    assert line["api_key"] == REDACTED
    assert line["error"] == f"401 for key {REDACTED} at venue"


def test_level_filter() -> None:
    stream = io.StringIO()
    configure_logging("warning", "json", stream)
    log = structlog.get_logger()
    log.info("quiet")
    log.warning("loud")
    assert [json.loads(x)["event"] for x in stream.getvalue().splitlines()] == ["loud"]


def test_every_credential_name_and_url_password_is_redacted() -> None:
    """Before: `privateKey`, `passphrase` and a URL's `user:password@` went out in clear."""
    (line,) = _log_lines(
        lambda log: log.error(
            "venue_failed",
            privateKey=CANARY,
            passphrase=CANARY,
            **{"API-SECRET": CANARY},
            request={"private_key": CANARY, "attempt": 2},
            url=f"wss://trader:{CANARY}@venue.example/ws",
        )
    )
    assert CANARY not in json.dumps(line)
    assert line["privateKey"] == line["passphrase"] == line["API-SECRET"] == REDACTED
    assert line["request"] == {"private_key": REDACTED, "attempt": 2}
    assert line["url"] == f"wss://{REDACTED}@venue.example/ws"


def test_console_lines_round_floats_and_json_keeps_full_precision() -> None:
    """Before: the console showed ``beta_delta=22.47404147444779`` and ``qty=1860070.0``."""
    fields = {
        "beta_delta_btc": 22.47404147444779,
        "amount_usd_face": 1860070.0,
        "notional_usd": 1234567.891234,
        "gamma": -0.000123456789,
        "legs": [500000.0, 0.1 + 0.2],
        "stale": float("nan"),
    }
    console = io.StringIO()
    configure_logging("info", "console", console)
    structlog.get_logger().info("hedge_decided", **fields)
    line = console.getvalue()
    for shown in (
        "beta_delta_btc=22.474",
        "amount_usd_face=1860070",
        "notional_usd=1234567.89",
        "gamma=-0.000123457",
        "legs=[500000, 0.3]",
        "stale=nan",
    ):
        assert shown in line, line
    assert "22.474041" not in line and "1860070.0" not in line
    (record,) = _log_lines(lambda log: log.info("hedge_decided", **fields))
    assert record["beta_delta_btc"] == 22.47404147444779
    assert record["gamma"] == -0.000123456789
    assert record["legs"] == [500000.0, 0.1 + 0.2]
