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
