"""A venue's ccxt client, built from its configuration.

Everything the config says about a venue that ccxt has a switch for lands here: credentials
(API key and secret, OKX's passphrase, Hyperliquid's wallet address and signing key),
sandbox (testnet, or demo trading), request pacing, the accounts read, and the defaults of
ccxt's that a hedger must not inherit silently:

- Hyperliquid: ccxt attaches its builder (1 bp on every order) and sets its referral code
  on the account on the first order; both off unless configured. Its market orders are IOC
  limits ``market_slippage`` through the mid (ccxt's default: 5%).
- Bybit: ccxt asks two private endpoints before every order whether the account is unified
  (UTA); with ``accounts: [unified]`` it is told so instead.

``urls.rest`` replaces the scheme and host of every REST URL the client knows (keeping its
path), so one base serves every endpoint family (Binance's ``/fapi/v1`` and ``/api/v3``
alike): a proxy, a recorder, or a loopback test server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import ccxt.async_support as ccxt_async

from hedger.config import Venue

_ORIGIN = re.compile(r"^https?://[^/]+")


def client_config(cfg: Venue) -> dict[str, Any]:
    """The ccxt constructor's argument for this venue (credentials included)."""
    config: dict[str, Any] = {
        "enableRateLimit": cfg.rate_limit.enabled,
        "timeout": int(cfg.timeout_seconds * 1000),
    }
    if cfg.rate_limit.interval is not None:
        config["rateLimit"] = cfg.rate_limit.interval * 1000.0
    for key, ccxt_key in (("api_key", "apiKey"), ("secret", "secret"), ("password", "password")):
        value = getattr(cfg, key)
        if value is not None:
            config[ccxt_key] = value.get_secret_value()
    if cfg.wallet_address is not None:
        config["walletAddress"] = cfg.wallet_address
    if cfg.private_key is not None:
        config["privateKey"] = cfg.private_key.get_secret_value()
    options: dict[str, Any] = {}
    if cfg.exchange == "hyperliquid":
        settings = cfg.hyperliquid
        options["builderFee"] = settings.builder_fee
        options["refSet"] = not settings.set_referrer  # ccxt skips setReferrer once "set"
        options["defaultSlippage"] = settings.market_slippage
    if "unified" in cfg.accounts:
        # Bybit: the account is unified (UTA), so ccxt need not ask before each order.
        options["enableUnifiedAccount"] = True
        options["enableUnifiedMargin"] = False
    config["options"] = _merged(options, cfg.options)
    return config


def make_client(cfg: Venue, module: Any = ccxt_async) -> Any:
    """The venue's client from ``module`` (``ccxt.async_support`` or ``ccxt.pro``)."""
    client = getattr(module, cfg.exchange)(client_config(cfg))
    if cfg.testnet:
        client.set_sandbox_mode(True)
    if cfg.demo_trading:
        client.enable_demo_trading(True)
    if cfg.urls.rest:
        point_rest(client, cfg.urls.rest)
    if cfg.urls.ws:
        client.urls["api"] = {**client.urls["api"], "ws": cfg.urls.ws}
    return client


def point_rest(client: Any, base: str) -> None:
    """Send every REST request of ``client`` to ``base``: each URL in ``urls['api']`` keeps
    its path and loses its scheme and host (``https://fapi.binance.com/fapi/v1`` becomes
    ``<base>/fapi/v1``). Websocket URLs are left alone."""
    base = base.rstrip("/")

    def moved(value: Any) -> Any:
        if isinstance(value, str) and _ORIGIN.match(value):
            return _ORIGIN.sub(base, value)
        if isinstance(value, Mapping):
            return {key: moved(item) for key, item in value.items()}
        return value

    client.urls["api"] = moved(client.urls["api"])


def balance_params(cfg: Venue) -> list[dict[str, Any]]:
    """One ``fetch_balance`` params per configured account (``[{}]``: the default one)."""
    return [{"type": account} for account in cfg.accounts] or [{}]


def reads_positions(cfg: Venue) -> bool:
    """Whether the venue's derivative positions are read (``fetch_positions``)."""
    derivatives = {"margin", "swap", "future", "option", "unified"}
    return not cfg.accounts or any(account in derivatives for account in cfg.accounts)


def _merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out
