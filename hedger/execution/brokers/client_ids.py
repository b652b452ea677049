"""Client order ids in each venue's own rules, and how to tell this daemon's from anyone else's.

Every id is minted from (daemon name, intent sequence, leg, attempt): the sequence comes from
the journal and never repeats, so neither does an id, across restarts. Venues differ in what
an id may look like, so there are three shapes:

- ``readable``: ``<name>-<seq>-<leg>-<attempt>``. Deribit ``label`` (64 chars), Binance
  ``newClientOrderId`` (36, ``[.A-Z:/a-z0-9_-]``), Bybit ``orderLinkId`` (36, letters,
  digits, ``-`` and ``_``), and any other venue (``label_max_len``).
- ``alphanumeric``: ``h<fingerprint><seq>l<leg>a<attempt>``. OKX ``clOrdId`` (32, letters
  and digits only: the name, which may hold ``-`` and ``_``, cannot travel in it).
- ``cloid``: ``0x`` and 32 hex digits, the 16 bytes fingerprint (4) | seq (8) | leg (2) |
  attempt (2). Hyperliquid ``cloid`` (a 128-bit hex number).

The two compact shapes carry the name's fingerprint (the first 32 bits of its SHA-256)
instead of the name: they are told apart by that fingerprint, so two daemons trading one
account must not share it (a 1 in 4 billion chance for two different names).

Ids are parsed, never prefix-matched: daemon ``lim`` never claims ``lim-2f-7-0-0``. The
shapes cannot be mistaken for one another (only ``readable`` holds ``-``; ``cloid`` starts
``0x``; ``alphanumeric`` starts ``h``), so ``is_own_client_id`` needs no venue.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

Shape = Literal["readable", "alphanumeric", "cloid"]


class ClientIdError(ValueError):
    """An id that breaks its venue's rules (too long, or a number beyond its field)."""


@dataclass(slots=True, frozen=True)
class ClientIdParts:
    owner: str
    """The daemon's name (``readable``), or its fingerprint (the compact shapes)."""
    intent_seq: int
    leg: int
    attempt: int


def fingerprint(name: str) -> str:
    """8 lower-case hex digits: the first 32 bits of SHA-256 of the daemon's name."""
    return hashlib.sha256(name.encode()).hexdigest()[:8]


_READABLE = re.compile(r"^(.+)-(\d+)-(\d+)-(\d+)$", re.ASCII)
_ALPHANUMERIC = re.compile(r"^h([0-9a-f]{8})(\d+)l(\d+)a(\d+)$", re.ASCII)
_CLOID = re.compile(r"^0x[0-9a-f]{32}$", re.ASCII)


def _parse(client_id: str) -> ClientIdParts | None:
    if match := _READABLE.fullmatch(client_id):
        name, seq, leg, attempt = match.groups()
        return ClientIdParts(name, int(seq), int(leg), int(attempt))
    if match := _ALPHANUMERIC.fullmatch(client_id):
        owner, seq, leg, attempt = match.groups()
        return ClientIdParts(owner, int(seq), int(leg), int(attempt))
    if _CLOID.fullmatch(client_id):
        raw = bytes.fromhex(client_id[2:])
        return ClientIdParts(
            raw[:4].hex(),
            int.from_bytes(raw[4:12], "big"),
            int.from_bytes(raw[12:14], "big"),
            int.from_bytes(raw[14:16], "big"),
        )
    return None


def _owner(shape: Shape, name: str) -> str:
    return name if shape == "readable" else fingerprint(name)


def _shape_of(client_id: str) -> Shape | None:
    if _READABLE.fullmatch(client_id):
        return "readable"
    if _ALPHANUMERIC.fullmatch(client_id):
        return "alphanumeric"
    if _CLOID.fullmatch(client_id):
        return "cloid"
    return None


def parse_client_id(client_id: str) -> ClientIdParts | None:
    """The parts of an id of any of our shapes, or None for anybody else's."""
    return _parse(client_id)


def is_own_client_id(client_id: str, name: str) -> bool:
    """Whether ``client_id`` was minted by daemon ``name``, on any venue."""
    shape = _shape_of(client_id)
    parts = _parse(client_id)
    return shape is not None and parts is not None and parts.owner == _owner(shape, name)


@dataclass(slots=True, frozen=True)
class ClientIdRule:
    """One venue's client-id rules: the field it travels in, its length and alphabet."""

    venue_field: str
    """The venue's own name for the id (what the request carries)."""
    max_len: int
    shape: Shape
    alphabet: re.Pattern[str]
    """What the venue accepts, checked on every id minted."""

    def mint(self, name: str, intent_seq: int, leg: int, attempt: int) -> str:
        if self.shape == "readable":
            client_id = f"{name}-{intent_seq}-{leg}-{attempt}"
        elif self.shape == "alphanumeric":
            client_id = f"h{fingerprint(name)}{intent_seq}l{leg}a{attempt}"
        else:
            client_id = "0x" + _cloid_bytes(name, intent_seq, leg, attempt).hex()
        if len(client_id) > self.max_len:
            raise ClientIdError(
                f"client id {client_id!r} exceeds the venue's {self.max_len} chars "
                f"({self.venue_field}); use a shorter daemon name"
            )
        if not self.alphabet.fullmatch(client_id):
            raise ClientIdError(
                f"client id {client_id!r} breaks the venue's rule for {self.venue_field} "
                f"({self.alphabet.pattern}); the daemon name may only use [A-Za-z0-9_-]"
            )
        return client_id

    def parse(self, client_id: str) -> ClientIdParts | None:
        """The parts of an id of this rule's shape, or None."""
        return _parse(client_id) if _shape_of(client_id) == self.shape else None

    def is_own(self, client_id: str, name: str) -> bool:
        parts = self.parse(client_id)
        return parts is not None and parts.owner == _owner(self.shape, name)


def _cloid_bytes(name: str, intent_seq: int, leg: int, attempt: int) -> bytes:
    try:
        return (
            bytes.fromhex(fingerprint(name))
            + intent_seq.to_bytes(8, "big")
            + leg.to_bytes(2, "big")
            + attempt.to_bytes(2, "big")
        )
    except OverflowError:
        raise ClientIdError(
            f"intent {intent_seq} leg {leg} attempt {attempt} do not fit a 128-bit cloid"
        ) from None


def readable(venue_field: str, max_len: int, alphabet: str = r"[A-Za-z0-9_-]+") -> ClientIdRule:
    return ClientIdRule(venue_field, max_len, "readable", re.compile(alphabet, re.ASCII))


DERIBIT = readable("label", 64, r".+")
"""Deribit's ``label``: any text up to 64 characters."""

BINANCE = readable("newClientOrderId", 36, r"[.A-Z:/a-z0-9_-]{1,36}")
"""Binance's ``newClientOrderId`` (spot and USD-M/COIN-M futures): ``^[.A-Z:/a-z0-9_-]{1,36}$``;
found again with ``origClientOrderId``."""

BYBIT = readable("orderLinkId", 36, r"[A-Za-z0-9_-]{1,36}")
"""Bybit's ``orderLinkId``: up to 36 letters, digits, ``-`` and ``_``; found again by
``orderLinkId`` on ``/v5/order/realtime`` and ``/v5/order/history``."""

OKX = ClientIdRule("clOrdId", 32, "alphanumeric", re.compile(r"[A-Za-z0-9]{1,32}", re.ASCII))
"""OKX's ``clOrdId``: up to 32 letters and digits; found again with ``clOrdId`` on
``/api/v5/trade/order``."""

HYPERLIQUID = ClientIdRule("cloid", 34, "cloid", _CLOID)
"""Hyperliquid's ``cloid``: a 128-bit number as ``0x`` and 32 hex digits; found again with
``orderStatus`` and the cloid as its ``oid``."""

RULES: dict[str, ClientIdRule] = {
    "deribit": DERIBIT,
    "binance": BINANCE,
    "bybit": BYBIT,
    "okx": OKX,
    "hyperliquid": HYPERLIQUID,
}
"""Per venue family (the ccxt class a venue's client derives from)."""


def rule_for(family: str, label_max_len: int = 64) -> ClientIdRule:
    """The rule of a venue family; any other venue gets readable ids of ``label_max_len``."""
    known = RULES.get(family)
    if known is not None:
        return known
    return readable("clientOrderId", label_max_len)
