"""Config: every error names its field, value and reason; secrets come from files or env."""

from __future__ import annotations

from pathlib import Path

import pytest

from hedger.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]

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
    issues = _issues(MINIMAL + "beta: {priors: {SOL: [1.0, 0.5]}}\n")
    assert list(issues) == ["beta.priors.SOL"]
    assert "2 loadings given, one per factor (1) expected" in issues["beta.priors.SOL"]


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


# --- every duration and count that cannot be negative is refused with its path -------------


@pytest.mark.parametrize(
    ("section", "path", "bound"),
    [
        ("hedge: {cooldown: -5}", "hedge.cooldown", "greater than or equal to 0"),
        ("hedge: {order: {limit_timeout: -3}}", "hedge.order.limit_timeout", "or equal to 0"),
        ("beta: {warmup: {lookback: -7}}", "beta.warmup.lookback", "greater than or equal to 0"),
        ("hedge: {max_decision_age: 0}", "hedge.max_decision_age", "greater than 0"),
        ("market: {max_ahead: -1}", "market.max_ahead", "greater than 0"),
        ("market: {plausibility: {confirm_ticks: 0}}", "market.plausibility.confirm_ticks", ">"),
        ("market: {plausibility: {jump_sigmas: -8}}", "market.plausibility.jump_sigmas", ">"),
    ],
)
def test_negative_durations_and_counts_are_refused_with_their_path(
    section: str, path: str, bound: str
) -> None:
    """Before: the first three were accepted; the others did not exist."""
    issues = _issues(MINIMAL + section + "\n")
    assert list(issues) == [path]
    assert bound.replace(">", "greater than") in issues[path]


@pytest.mark.parametrize(
    ("field", "value"),
    [("timeout_seconds", "0"), ("order_ttl", "-1"), ("unknown_order_window", "0s")],
)
def test_venue_timeouts_must_be_positive(field: str, value: str) -> None:
    """Before: `timeout_seconds: 0` was accepted (aiohttp, under ccxt, takes 0 as no timeout)."""
    issues = _issues(
        MINIMAL.replace("{exchange: deribit}", f"{{exchange: deribit, {field}: {value}}}")
    )
    assert "greater than 0" in issues[f"venues.deribit.{field}"]


def test_safety_fields_have_their_documented_defaults() -> None:
    """Before: none of these fields existed (the engine and executor read them)."""
    cfg = parse_config(MINIMAL, env={})
    venue = cfg.venues["deribit"]
    assert venue.order_ttl is None and venue.unknown_order_window is None
    assert cfg.hedge.max_decision_age == 5.0
    assert cfg.market.max_ahead == 5.0
    gates = cfg.market.plausibility
    assert (gates.max_mark_index_gap, gates.max_mark_outside_book) == (0.05, 0.02)
    assert (gates.jump_sigmas, gates.confirm_ticks) == (8.0, 3)
    timed = parse_config(
        MINIMAL.replace("{exchange: deribit}", "{exchange: deribit, order_ttl: 2500ms}"), env={}
    )
    assert timed.venues["deribit"].order_ttl == 2.5


@pytest.mark.parametrize(
    ("text", "path"),
    [
        (MINIMAL.replace("venue: deribit,", "venue: binance,"), "factors.0.hedge.venue"),
        (MINIMAL + "beta: {bar: 1h, window: 1d}\n", "beta.window"),
        (
            MINIMAL + "  - asset: BTC\n    hedge: {venue: deribit, symbol: BTC-PERPETUAL}\n",
            "factors",
        ),
    ],
)
def test_model_level_errors_name_the_field_to_fix(text: str, path: str) -> None:
    """Before: `<root>: factor BTC hedges on ...` and `beta: window (...) must hold ...`."""
    assert list(_issues(text)) == [path]


def test_a_non_utf8_config_file_is_one_line(tmp_path: Path) -> None:
    """Before: UnicodeDecodeError escaped load_config (a traceback at the operator)."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.render() == f"{path}: not UTF-8 text: byte 0xe9 at offset 9"


def test_an_unreadable_config_file_is_one_line(tmp_path: Path) -> None:
    """Before: two lines, the reason under a `<root>` heading."""
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.render() == f"{tmp_path}: cannot read file: Is a directory"


# --- config errors never echo a secret -------------------------------------------------------

SECRET = "canary-config-91c5"


@pytest.mark.parametrize(
    ("venue", "path"),
    [
        (f"{{exchange: deribit, apiKey: {SECRET}}}", "venues.deribit.apiKey"),
        (f"{{exchange: deribit, passphrase: {SECRET}}}", "venues.deribit.passphrase"),
        (f"{{exchange: deribit, private_key: {SECRET}}}", "venues.deribit.private_key"),
        (f"[{{exchange: deribit, api_key: {SECRET}}}]", "venues.deribit"),
        (
            f"{{exchange: deribit, urls: 'https://me:{SECRET}@example.invalid'}}",
            "venues.deribit.urls",
        ),
    ],
)
def test_config_errors_mask_secrets_pydantic_echoes(venue: str, path: str) -> None:
    """Before: pydantic's `got ...` echoed each of these (the old list missed `apiKey`,
    `passphrase`, `private_key`, secrets inside a wrongly shaped value, URL passwords)."""
    issues = _issues(MINIMAL.replace("{exchange: deribit}", venue))
    assert path in issues
    assert SECRET not in " ".join(issues.values())


def test_the_old_max_order_contracts_key_still_loads_as_max_order_amount() -> None:
    """The key was renamed (it holds USD face or coins, not contracts); old files still load."""
    from hedger.config.models import HedgePolicy

    assert HedgePolicy.model_validate({"max_order_contracts": 5.0}).max_order_amount == 5.0
    assert HedgePolicy.model_validate({"max_order_amount": 7.0}).max_order_amount == 7.0
