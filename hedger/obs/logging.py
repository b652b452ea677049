"""One place configures logging: JSON lines in containers, console on a TTY, secrets redacted.

Every log line is an event name plus key/values. Redaction is a processor, so no call site
can leak a secret: keys that look like credentials are masked, and so is any value equal to
a registered secret (wherever it appears inside a string), and the ``user:password@`` of
any URL. The same masking serves every other output (``redact``, ``redact_text``): config
errors, ``check-config``, HTTP error bodies.
"""

from __future__ import annotations

import logging
import math
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import orjson
import structlog

REDACTED = "<redacted>"
SECRET_KEYS = (
    "apiKey",
    "api_key",
    "secret",
    "api_secret",
    "privateKey",
    "private_key",
    "passphrase",
    "password",
    "token",
    "authorization",
    "signature",
)
"""The one list of credential names: a value under a key containing any of them (in any
case, with or without ``_``/``-``: ``apiKey``, ``API-KEY``, ``client_secret``,
``token_file``) is masked in every output."""


def _squash(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


_SECRET_KEY_PARTS = tuple(dict.fromkeys(_squash(key) for key in SECRET_KEYS))
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/\s@:]*:[^/\s@]*@")


def is_secret_key(key: str) -> bool:
    squashed = _squash(key)
    return any(part in squashed for part in _SECRET_KEY_PARTS)


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
        if is_secret_key(key) and value is not None:
            return REDACTED
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {k: self._clean(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean("", v) for v in value]
        return value

    def clean(self, value: Any) -> Any:
        """``value`` with every secret masked: under credential keys, registered values,
        URL credentials (containers are copied, never changed in place)."""
        return self._clean("", value)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return _URL_CREDENTIALS.sub(REDACTED + "@", text)


_redactor = Redactor()


def register_secrets(secrets: Iterable[str]) -> None:
    """Values that must never reach a log line, whatever key or message carries them."""
    _redactor.add(secrets)


def redact(value: Any) -> Any:
    """Any value bound for an operator (a response body, a config error), masked as a log
    line would be."""
    return _redactor.clean(value)


def redact_text(text: str) -> str:
    """Text bound for an operator with registered secrets and URL credentials masked."""
    return _redactor.scrub(text)


def _orjson_dumps(obj: Any, default: Any = None) -> str:
    return orjson.dumps(obj, default=default, option=orjson.OPT_SERIALIZE_NUMPY).decode()


CONSOLE_SIGNIFICANT_DIGITS = 6


def readable_number(value: float) -> float | int:
    """A float as a person reads it on a console: whole numbers without ``.0``, 2 decimals
    from 1,000 up (USD amounts, USD face), else 6 significant digits (``22.474``, not
    ``22.47404147444779``). NaN and infinities stay as they are."""
    if not math.isfinite(value):
        return value
    if value.is_integer() and abs(value) < 1e15:
        return int(value)
    if abs(value) >= 1000:
        return round(value, 2)
    return float(f"{value:.{CONSOLE_SIGNIFICANT_DIGITS}g}")


def _readable(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return readable_number(value)
    if isinstance(value, dict):
        return {k: _readable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_readable(v) for v in value]
    return value


def round_floats(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Console only: floats rounded for reading (JSON lines keep full precision)."""
    for key in list(event_dict):
        event_dict[key] = _readable(event_dict[key])
    return event_dict


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
            *([] if use_json else [round_floats]),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
