"""Deribit API v2 authentication as ccxt speaks it: signed REST, client_signature on websocket.

REST: ``Authorization: deri-hmac-sha256 id=KEY,ts=MS,sig=HEX,nonce=N``, where HEX is
HMAC-SHA256(secret, ts \\n nonce \\n METHOD \\n raw-target \\n body \\n). The signature covers the
raw request target, so it is verified on the target as received, never a re-encoding.
Websocket ``public/auth``: HMAC-SHA256(secret, timestamp \\n nonce \\n data).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

# Deribit error codes ccxt maps to AuthenticationError.
INVALID_CREDENTIALS = 13004
UNAUTHORIZED = 13009
MAX_CLOCK_SKEW_MS = 60_000


class AuthError(Exception):
    def __init__(self, code: int, message: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.message = message
        self.reason = reason


@dataclass(slots=True, frozen=True)
class ApiKey:
    name: str
    api_key: str
    secret: str


def _hex_hmac(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def rest_signature(
    secret: str, ts: str, nonce: str, method: str, target: str, body: str = ""
) -> str:
    return _hex_hmac(secret, f"{ts}\n{nonce}\n{method}\n{target}\n{body}\n")


def ws_signature(secret: str, timestamp: int | str, nonce: str, data: str = "") -> str:
    return _hex_hmac(secret, f"{timestamp}\n{nonce}\n{data}")


def _parse_header(header: str) -> dict[str, str]:
    scheme, _, rest = header.partition(" ")
    if scheme != "deri-hmac-sha256":
        raise AuthError(UNAUTHORIZED, "unauthorized", "unsupported authorization scheme")
    fields = {}
    for part in rest.split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields[key] = value
    if not {"id", "ts", "sig", "nonce"} <= fields.keys():
        raise AuthError(UNAUTHORIZED, "unauthorized", "malformed authorization header")
    return fields


def _check_clock(ts: str, now_ms: int) -> None:
    if not ts.isdigit() or abs(int(ts) - now_ms) > MAX_CLOCK_SKEW_MS:
        raise AuthError(UNAUTHORIZED, "unauthorized", "timestamp outside the allowed window")


def verify_rest(
    accounts: Mapping[str, ApiKey], header: str | None, method: str, target: str, now_ms: int
) -> ApiKey:
    if not header:
        raise AuthError(UNAUTHORIZED, "unauthorized", "missing authorization header")
    fields = _parse_header(header)
    account = accounts.get(fields["id"])
    if account is None:
        raise AuthError(INVALID_CREDENTIALS, "invalid_credentials", "unknown api key")
    _check_clock(fields["ts"], now_ms)
    expected = rest_signature(account.secret, fields["ts"], fields["nonce"], method, target)
    if not hmac.compare_digest(expected, fields["sig"]):
        raise AuthError(UNAUTHORIZED, "unauthorized", "invalid signature")
    return account


def verify_ws(accounts: Mapping[str, ApiKey], params: Mapping[str, object], now_ms: int) -> ApiKey:
    grant = params.get("grant_type")
    client_id = str(params.get("client_id", ""))
    account = accounts.get(client_id)
    if account is None:
        raise AuthError(INVALID_CREDENTIALS, "invalid_credentials", "unknown client_id")
    if grant == "client_credentials":
        if hmac.compare_digest(str(params.get("client_secret", "")), account.secret):
            return account
        raise AuthError(INVALID_CREDENTIALS, "invalid_credentials", "wrong client_secret")
    if grant != "client_signature":
        raise AuthError(INVALID_CREDENTIALS, "invalid_credentials", f"unsupported grant {grant!r}")
    timestamp = str(params.get("timestamp", ""))
    _check_clock(timestamp, now_ms)
    nonce = str(params.get("nonce", ""))
    data = str(params.get("data", ""))
    expected = ws_signature(account.secret, timestamp, nonce, data)
    if not hmac.compare_digest(expected, str(params.get("signature", ""))):
        raise AuthError(UNAUTHORIZED, "unauthorized", "invalid signature")
    return account
