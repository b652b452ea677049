"""Client ids in each venue's rules: minted within its length and alphabet, parsed back to
the same parts, and told apart by daemon (never by prefix)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hedger.execution.brokers.client_ids import (
    BINANCE,
    BYBIT,
    DERIBIT,
    HYPERLIQUID,
    OKX,
    RULES,
    ClientIdError,
    ClientIdParts,
    fingerprint,
    is_own_client_id,
    parse_client_id,
    rule_for,
)

NAMES = st.from_regex(r"[A-Za-z0-9_-]{1,16}", fullmatch=True)
"""Daemon names, as the config allows them."""
SEQS = st.integers(min_value=1, max_value=10**12)
SMALL = st.integers(min_value=0, max_value=99)


@pytest.mark.parametrize("family", sorted(RULES))
@given(name=NAMES, seq=SEQS, leg=SMALL, attempt=SMALL)
def test_every_id_fits_its_venue_and_parses_back(
    family: str, name: str, seq: int, leg: int, attempt: int
) -> None:
    rule = RULES[family]
    client_id = rule.mint(name, seq, leg, attempt)
    assert len(client_id) <= rule.max_len
    assert rule.alphabet.fullmatch(client_id), client_id
    owner = name if rule.shape == "readable" else fingerprint(name)
    assert rule.parse(client_id) == ClientIdParts(owner, seq, leg, attempt)
    assert parse_client_id(client_id) == ClientIdParts(owner, seq, leg, attempt)
    assert rule.is_own(client_id, name) and is_own_client_id(client_id, name)


@pytest.mark.parametrize("family", sorted(RULES))
@given(name=NAMES, other=NAMES, seq=SEQS)
def test_another_daemons_ids_are_not_ours(family: str, name: str, other: str, seq: int) -> None:
    client_id = RULES[family].mint(other, seq, 0, 0)
    same = other == name or (
        RULES[family].shape != "readable" and fingerprint(other) == fingerprint(name)
    )
    assert is_own_client_id(client_id, name) is same


def test_the_shapes_the_venues_require() -> None:
    assert DERIBIT.mint("lim", 7, 0, 1) == "lim-7-0-1"
    assert BINANCE.mint("lim", 7, 0, 1) == "lim-7-0-1"
    assert BYBIT.mint("lim", 7, 0, 1) == "lim-7-0-1"
    # OKX: letters and digits only, so "-" and "_" in a name cannot travel; its
    # fingerprint does (the first 32 bits of SHA-256: hashlib's, written out here).
    assert fingerprint("lim") == "1e0afa83"
    assert OKX.mint("my_book-2", 7, 0, 1) == f"h{fingerprint('my_book-2')}7l0a1"
    # Hyperliquid: 0x and 32 hex digits, fingerprint | seq | leg | attempt.
    cloid = HYPERLIQUID.mint("lim", 7, 2, 1)
    assert cloid == "0x" + fingerprint("lim") + "0000000000000007" + "0002" + "0001"


def test_prefixes_never_claim_ids() -> None:
    for rule in (DERIBIT, BINANCE, BYBIT):
        assert not is_own_client_id(rule.mint("lim-2f", 7, 0, 0), "lim")
    for client_id in ["", "lim-7-0", "lim-x-0-0", "lim-7-0-0-extra", "0x1234", "hello"]:
        assert not is_own_client_id(client_id, "lim")


def test_a_shape_is_never_read_as_another() -> None:
    readable, compact, cloid = (
        BINANCE.mint("h1", 7, 0, 0),
        OKX.mint("h1", 7, 0, 0),
        HYPERLIQUID.mint("h1", 7, 0, 0),
    )
    assert OKX.parse(readable) is None and HYPERLIQUID.parse(readable) is None
    assert BINANCE.parse(compact) is None and HYPERLIQUID.parse(compact) is None
    assert BINANCE.parse(cloid) is None and OKX.parse(cloid) is None


def test_ids_beyond_the_venue_limits_are_refused() -> None:
    with pytest.raises(ClientIdError, match="36 chars"):
        BINANCE.mint("x" * 16, 10**20, 0, 0)
    with pytest.raises(ClientIdError, match="32 chars"):
        OKX.mint("x", 10**21, 0, 0)
    with pytest.raises(ClientIdError, match="128-bit"):
        HYPERLIQUID.mint("x", 2**64, 0, 0)
    with pytest.raises(ClientIdError, match="breaks the venue's rule"):
        BYBIT.mint("a.b", 1, 0, 0)  # "." is Binance's, not Bybit's


def test_any_other_venue_gets_readable_ids_of_its_configured_length() -> None:
    rule = rule_for("kraken", 20)
    assert (rule.shape, rule.max_len, rule.venue_field) == ("readable", 20, "clientOrderId")
    assert rule_for("okx") is OKX
