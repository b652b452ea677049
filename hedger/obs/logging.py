"""One place configures logging: JSON lines in containers, console on a TTY, secrets redacted.

Every log line is an event name plus key/values. Redaction is a processor, so no call site
can leak a secret: keys that look like credentials are masked, and so is any value equal to
a registered secret (wherever it appears inside a string).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import orjson
import structlog

REDACTED = "<redacted>"
_SECRET_KEY_PARTS = (
    "secret",
    "password",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "signature",
)


class Redactor:
    """structlog processor masking credential-named keys and known secret values."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        # Short values would mask ordinary words; a real credential is never that short.
        self._secrets.update(s for s in secrets if s and len(s) >= 4)

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key in list(event_dict):
            event_dict[key] = self._clean(key, event_dict[key])
        return event_dict

    def _clean(self, key: str, value: Any) -> Any:
        if any(part in key.lower() for part in _SECRET_KEY_PARTS) and value is not None:
            return REDACTED
        if isinstance(value, str):
            return self._scrub(value)
        if isinstance(value, dict):
            return {k: self._clean(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean("", v) for v in value]
        return value

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


_redactor = Redactor()


def register_secrets(secrets: Iterable[str]) -> None:
    """Values that must never reach a log line, whatever key or message carries them."""
    _redactor.add(secrets)


def _orjson_dumps(obj: Any, default: Any = None) -> str:
    return orjson.dumps(obj, default=default, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def configure_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redactor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
