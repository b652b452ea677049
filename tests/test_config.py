"""Config: every error names its field, value and reason; secrets come from files or env."""

from __future__ import annotations

from pathlib import Path

import pytest

from hedger.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]

MINIMAL = """
venues:
  deribit: {exchange: deribit}
factors:
  - asset: btc
    hedge: {venue: deribit, symbol: BTC-PERPETUAL}
"""


def _issues(text: str, env: dict[str, str] | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "test.yaml", env or {})
    return {issue.path: str(issue) for issue in info.value.issues}


@pytest.mark.parametrize("name", ["paper.yaml", "two-factor.yaml"])
def test_shipped_configs_are_valid(name: str) -> None:
    cfg = load_config(ROOT / "config" / name, env={})
    assert cfg.factors


def test_defaults_fill_a_minimal_config() -> None:
    cfg = parse_config(MINIMAL, env={})
    assert cfg.factor_assets == ("BTC",)
    assert cfg.beta.half_life == 86_400.0
    assert cfg.http.port == 9184


def test_unknown_key_is_an_error_with_its_path() -> None:
    issues = _issues(MINIMAL + "limits: {max_order_notional: 5}\n")
    assert "limits.max_order_notional" in issues
    assert "Extra inputs are not permitted" in issues["limits.max_order_notional"]


def test_every_error_is_reported_with_path_value_and_reason() -> None:
    text = (
        MINIMAL
        + """
limits: {max_orders_per_minute: 0, max_order_notional_usd: -5}
beta: {half_life: soon}
market: {stale_after: 0}
"""
    )
    issues = _issues(text)
    assert "got 0" in issues["limits.max_orders_per_minute"]
    assert "greater than or equal to 1" in issues["limits.max_orders_per_minute"]
    assert "got -5" in issues["limits.max_order_notional_usd"]
    assert "'soon' is not a duration" in issues["beta.half_life"]
    assert "market.stale_after" in issues


def test_cross_reference_errors_say_what_to_fix() -> None:
    text = MINIMAL.replace("venue: deribit,", "venue: binance,")
    (message,) = _issues(text).values()
    assert "binance" in message and "deribit" in message


def test_priors_need_one_loading_per_factor() -> None:
    (message,) = _issues(MINIMAL + "beta: {priors: {SOL: [1.0, 0.5]}}\n").values()
    assert "beta.priors.SOL has 2 loadings" in message


def test_band_kind_needs_its_parameters() -> None:
    text = MINIMAL.replace(
        "symbol: BTC-PERPETUAL}", "symbol: BTC-PERPETUAL}\n    band: {kind: whalley_wilmott}"
    )
    (message,) = _issues(text).values()
    assert "risk_aversion" in message


def test_option_holding_needs_its_terms() -> None:
    text = (
        MINIMAL + "portfolio:\n  holdings:\n    - {asset: BTC, kind: option, qty: 1, strike: 1}\n"
    )
    ((path, message),) = _issues(text).items()
    assert path == "portfolio.holdings.0"
    assert "expiry" in message and "option_type" in message


def test_env_substitution_and_defaults() -> None:
    text = MINIMAL.replace("{exchange: deribit}", "{exchange: deribit, api_key: '${KEY}'}")
    text += "journal: {path: '${JOURNAL:-var/default.sqlite}'}\n"
    cfg = parse_config(text, env={"KEY": "abc123"})
    assert cfg.venues["deribit"].api_key is not None
    assert cfg.venues["deribit"].api_key.get_secret_value() == "abc123"
    assert cfg.journal.path == "var/default.sqlite"


def test_missing_env_var_is_named() -> None:
    text = MINIMAL.replace("{exchange: deribit}", "{exchange: deribit, api_key: '${NOPE}'}")
    issues = _issues(text)
    assert "environment variable NOPE is not set" in issues["venues.deribit.api_key"]


def test_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t-value\n")
    text = MINIMAL.replace("{exchange: deribit}", f"{{exchange: deribit, secret_file: {secret}}}")
    cfg = parse_config(text, env={})
    venue_secret = cfg.venues["deribit"].secret
    assert venue_secret is not None and venue_secret.get_secret_value() == "s3cr3t-value"


def test_unreadable_secret_file_is_an_error(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "{exchange: deribit}", f"{{exchange: deribit, secret_file: {tmp_path / 'missing'}}}"
    )
    (message,) = _issues(text).values()
    assert "cannot read secret file" in message


def test_unknown_exchange() -> None:
    issues = _issues(MINIMAL.replace("exchange: deribit", "exchange: nosuchex"))
    assert "unknown ccxt exchange id 'nosuchex'" in issues["venues.deribit.exchange"]


def test_yaml_syntax_error_names_the_line() -> None:
    (message,) = _issues("venues: [\n  oops: {").values()
    assert "not valid YAML at line" in message
