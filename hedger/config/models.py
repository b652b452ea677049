"""The daemon's configuration: pydantic v2 models, YAML loading, secrets and env substitution.

Every model forbids unknown keys, so a typo is an error rather than a silently ignored
threshold. Secrets are ``SecretStr`` and may come from ``<name>_file`` (Docker/Kubernetes
secrets) instead of the YAML itself; any string may reference ``${ENV_VAR}`` or
``${ENV_VAR:-default}``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from hedger.config.durations import (
    DAY_SECONDS,
    PerDay,
    Seconds,
    Span,
    format_seconds,
    format_span,
    span_bars,
)
from hedger.core import params as core
from hedger.core.beta import min_half_life_bars
from hedger.core.cycle import CycleParams
from hedger.core.margin import MarginAction, MarginPolicy
from hedger.core.option_hedge import OptionHedgeParams
from hedger.core.params import BandKind
from hedger.core.plausibility import PlausibilityParams
from hedger.core.policy import HedgeMarket
from hedger.obs.logging import REDACTED, is_secret_key, redact, redact_text

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
PositiveSeconds = Annotated[Seconds, Field(gt=0)]
NonNegativeSeconds = Annotated[Seconds, Field(ge=0)]


class FieldError(ValueError):
    """A model-level check that blames one field: ``loc`` is its path below the model, so
    the operator reads ``beta.priors.SOL`` rather than the model's path."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- venues -----------------------------------------------------------------------------------


def _load_secret_files(data: Any, names: tuple[str, ...]) -> Any:
    """Replace ``<name>_file: PATH`` by ``<name>: <file contents>`` before validation."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for name in names:
        file_key = f"{name}_file"
        if file_key not in data:
            continue
        if data.get(name) is not None:
            raise FieldError((name,), f"give either {name} or {file_key}, not both")
        path = Path(str(data.pop(file_key)))
        try:
            data[name] = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise FieldError(
                (file_key,), f"cannot read secret file {path}: {exc.strerror}"
            ) from None
        except UnicodeDecodeError:
            raise FieldError((file_key,), f"secret file {path} is not UTF-8 text") from None
    return data


class VenueUrls(Strict):
    rest: str | None = None
    ws: str | None = None


class PaperVenue(Strict):
    """The embedded paper venue, started in-process on loopback."""

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535, description="0 = an ephemeral port")
    seed: int = Field(default=7, ge=0)
    scenario: str = "stress-switching"
    ticks_per_second: PositiveFloat = 10.0
    speed: PositiveFloat = Field(
        default=1.0, description="simulated seconds per wall-clock second (tests, demos)"
    )
    history: Seconds = Field(
        default=7 * 86400.0, gt=0, description="simulated past served as OHLCV history"
    )
    faults: dict[str, Any] = Field(
        default_factory=dict, description="fault plan at start (see README, paper venue)"
    )

    @field_validator("faults")
    @classmethod
    def _faults_are_a_plan(cls, faults: dict[str, Any]) -> dict[str, Any]:
        from hedger.paper.faults import FaultPlan  # deferred: the paper venue is optional

        FaultPlan.parse(faults)  # FaultPlanError (a ValueError): one line naming the setting
        return faults


class RateLimit(Strict):
    """ccxt's own request pacing for one venue (its token bucket, per client)."""

    enabled: bool = Field(
        default=True, description="ccxt enableRateLimit; keep it on against a real venue"
    )
    interval: PositiveSeconds | None = Field(
        default=None,
        description="seconds between requests of cost 1 (ccxt rateLimit); None = ccxt's own "
        "figure for the exchange",
    )


AccountType = Literal["spot", "margin", "swap", "future", "option", "unified", "funding"]
"""An account whose balances (and, for derivatives, positions) the daemon reads: ccxt's
``fetch_balance`` ``type`` on venues that keep several (Binance spot/future, OKX funding)."""


class HyperliquidSettings(Strict):
    """Hyperliquid through ccxt: what ccxt does by default that a hedger should not."""

    builder_fee: bool = Field(
        default=False,
        description="pay ccxt's builder fee (1 bp) on every order; off: ccxt approves its "
        "builder at 0% once and attaches it with no fee",
    )
    set_referrer: bool = Field(
        default=False, description="let ccxt set its referral code on the account"
    )
    market_slippage: PositiveFloat = Field(
        default=0.01,
        lt=0.5,
        description="a market order is an IOC limit this fraction through the mid "
        "(ccxt's default is 0.05)",
    )


DEAD_MAN_TIMEOUT_RANGE_S: dict[str, tuple[float, float | None]] = {
    "okx": (10.0, 120.0),
    "bybit": (3.0, 300.0),
    "binanceusdm": (1.0, None),
}
"""The timeouts each venue's dead-man's switch accepts (seconds, inclusive; None: no upper
bound)."""

DEAD_MAN_WHOLE_SECONDS = frozenset({"okx", "bybit"})
"""Venues whose switch counts whole seconds (Binance counts milliseconds)."""


class DeadMan(Strict):
    """A venue-side dead-man's switch the daemon keeps pushing back (OKX cancel-all-after,
    Binance USD-M countdownCancelAll per hedge symbol, Bybit DCP); see
    ``hedger.live.dead_man``. Deribit has cancel-on-disconnect (``order_socket``)."""

    enabled: bool = False
    timeout: PositiveSeconds = Field(
        default=60.0, description="the venue cancels our orders this long after the last refresh"
    )
    refresh_every: PositiveSeconds = Field(default=15.0, description="the daemon's beat")

    @model_validator(mode="after")
    def _beat_inside_timeout(self) -> DeadMan:
        if self.refresh_every >= self.timeout:
            raise FieldError(
                ("refresh_every",),
                f"refresh_every ({format_seconds(self.refresh_every)}) must be shorter than "
                f"timeout ({format_seconds(self.timeout)})",
            )
        return self


_CCXT_CREDENTIALS = {
    "api_key": "apiKey",
    "secret": "secret",
    "password": "password",
    "wallet_address": "walletAddress",
    "private_key": "privateKey",
}
"""Config name -> ccxt's name of each credential (``requiredCredentials``)."""


class Venue(Strict):
    exchange: str = Field(description="ccxt exchange id, e.g. 'deribit'")
    api_key: SecretStr | None = None
    secret: SecretStr | None = None
    password: SecretStr | None = Field(default=None, description="OKX: the API passphrase")
    wallet_address: str | None = Field(
        default=None,
        pattern=r"^0x[0-9a-fA-F]{40}$",
        description="Hyperliquid: the main account's address, also when private_key is an "
        "API wallet's",
    )
    private_key: SecretStr | None = Field(
        default=None, description="Hyperliquid: the signing key (an API wallet's, ideally)"
    )
    urls: VenueUrls = VenueUrls()
    paper: PaperVenue | None = Field(
        default=None, description="run the built-in paper venue and point this venue at it"
    )
    testnet: bool = False
    timeout_seconds: PositiveSeconds = 10.0
    label_max_len: int = Field(default=64, ge=8, description="client order id limit (Deribit: 64)")
    order_socket: bool = Field(
        default=True,
        description=(
            "Deribit: send hedge orders over the daemon's own authenticated websocket with "
            "cancel-on-disconnect (a dropped socket cancels its resting orders); REST while it "
            "is down. Ignored on other exchanges."
        ),
    )
    order_ttl: PositiveSeconds | None = Field(
        default=None,
        description="request time-to-live sent to venues that honour one (Deribit's "
        "valid_until): a request reaching the venue later is refused there; "
        "None = timeout_seconds",
    )
    unknown_order_window: PositiveSeconds | None = Field(
        default=None,
        description="how long an order of unknown fate must be shown absent before its leg "
        "may be resent, on a venue without a request time-to-live; None = 3 x timeout_seconds",
    )
    demo_trading: bool = Field(
        default=False,
        description="the venue's demo-trading environment (ccxt enable_demo_trading: "
        "Binance, Bybit); testnet is the other sandbox",
    )
    accounts: list[AccountType] = Field(
        default_factory=list,
        description="accounts whose balances and positions are read, each a ccxt "
        "fetch_balance type; empty = the client's default account",
    )
    rate_limit: RateLimit = RateLimit()
    hyperliquid: HyperliquidSettings = HyperliquidSettings()
    dead_man: DeadMan = DeadMan()
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="ccxt options merged over the client's own, last (e.g. "
        "{fetchMarkets: {types: [linear]}} to load fewer markets)",
    )

    @model_validator(mode="before")
    @classmethod
    def _secret_files(cls, data: Any) -> Any:
        return _load_secret_files(data, ("api_key", "secret", "password", "private_key"))

    @field_validator("exchange")
    @classmethod
    def _known_exchange(cls, value: str) -> str:
        import ccxt  # deferred: importing ccxt costs ~0.3 s, only config validation needs it here

        if value not in ccxt.exchanges:
            raise ValueError(f"unknown ccxt exchange id {value!r}")
        return value

    @model_validator(mode="after")
    def _fits_the_exchange(self) -> Venue:
        """Credentials, sandboxes and settings checked against what ccxt's client for the
        exchange takes (its ``requiredCredentials``, test URLs, demo trading). A credential
        the exchange does not sign with is an error; a missing one is ccxt's to report on
        the first private call (preflight)."""
        import ccxt

        client = getattr(ccxt, self.exchange)()
        required = {name for name, needed in client.requiredCredentials.items() if needed}
        given = [key for key in _CCXT_CREDENTIALS if getattr(self, key) is not None]
        if given:
            unused = [k for k in given if _CCXT_CREDENTIALS[k] not in required]
            if unused:
                raise FieldError(
                    (unused[0],),
                    f"{self.exchange} does not use {unused[0]} (it signs with "
                    f"{_credential_names(required)})",
                )
        if self.testnet and not client.urls.get("test"):
            raise FieldError(("testnet",), f"ccxt has no testnet URLs for {self.exchange}")
        # Every client inherits enable_demo_trading; the exchanges that have a demo
        # environment override it.
        inherited = type(client).enable_demo_trading is ccxt.Exchange.enable_demo_trading
        if self.demo_trading and inherited:
            raise FieldError(("demo_trading",), f"ccxt has no demo trading for {self.exchange}")
        if self.demo_trading and self.testnet:
            raise FieldError(("demo_trading",), "choose one sandbox: testnet or demo_trading")
        # Compared with the defaults, not with what was set: a dumped and re-validated config
        # (a sweep, a reload diff) carries the default block on every venue.
        if self.hyperliquid != HyperliquidSettings() and self.exchange != "hyperliquid":
            raise FieldError(("hyperliquid",), f"hyperliquid settings on a {self.exchange} venue")
        return self

    @model_validator(mode="after")
    def _dead_man_fits_the_exchange(self) -> Venue:
        """Only where the venue has a switch, with a timeout it accepts."""
        if not self.dead_man.enabled:
            return self
        TIMEOUT_RANGE_S, WHOLE_SECONDS = DEAD_MAN_TIMEOUT_RANGE_S, DEAD_MAN_WHOLE_SECONDS

        if self.exchange == "deribit":
            raise FieldError(
                ("dead_man",), "deribit has cancel-on-disconnect instead (order_socket: true)"
            )
        if self.exchange not in TIMEOUT_RANGE_S:
            offered = ", ".join(sorted(TIMEOUT_RANGE_S))
            raise FieldError(
                ("dead_man",), f"no dead-man's switch for {self.exchange} (offered: {offered})"
            )
        low, high = TIMEOUT_RANGE_S[self.exchange]
        timeout = self.dead_man.timeout
        if timeout < low or (high is not None and timeout > high):
            span = f"{low:g} to {high:g} s" if high is not None else f"at least {low:g} s"
            raise FieldError(("dead_man", "timeout"), f"{self.exchange} accepts {span}")
        if self.exchange in WHOLE_SECONDS and timeout != int(timeout):
            raise FieldError(("dead_man", "timeout"), f"{self.exchange} counts whole seconds")
        if self.exchange == "bybit" and self.dead_man.refresh_every > 20.0:
            raise FieldError(
                ("dead_man", "refresh_every"),
                "bybit drops a private socket not pinged for 20 s: at most 20 s",
            )
        return self


def _credential_names(ccxt_names: set[str]) -> str:
    names = [key for key, ccxt_name in _CCXT_CREDENTIALS.items() if ccxt_name in ccxt_names]
    return " + ".join(names) or "no credentials"


# --- portfolio --------------------------------------------------------------------------------


class HoldingKind(StrEnum):
    SPOT = "spot"
    PERP = "perp"
    FUTURE = "future"
    OPTION = "option"


class Holding(Strict):
    """A position the venues do not report (cold wallet, OTC option, another exchange)."""

    asset: str = Field(description="underlying asset code, e.g. 'SOL'")
    kind: HoldingKind = HoldingKind.SPOT
    qty: float = Field(description="contracts (spot: coin units); negative = short")
    symbol: str | None = None
    contract_size: PositiveFloat = 1.0
    inverse: bool = False
    strike: PositiveFloat | None = None
    expiry: str | None = Field(default=None, description="YYYY-MM-DD; expires 08:00 UTC")
    option_type: Literal["call", "put"] | None = None
    entry_price: PositiveFloat | None = None

    @field_validator("asset")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.strip().upper()

    @field_validator("expiry")
    @classmethod
    def _iso_date(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(f"expiry {value!r} is not a YYYY-MM-DD date")
        return value

    @model_validator(mode="after")
    def _option_fields(self) -> Holding:
        terms = ("strike", "expiry", "option_type")
        missing = [name for name in terms if getattr(self, name) is None]
        if self.kind is HoldingKind.OPTION and missing:
            raise ValueError(f"an option holding needs {', '.join(missing)}")
        if self.kind is HoldingKind.FUTURE and self.expiry is None:
            raise ValueError("a dated future holding needs expiry")
        if self.kind is HoldingKind.SPOT and self.inverse:
            raise ValueError("a spot holding cannot be inverse")
        return self


class ReferenceMarket(Strict):
    """Prices and vols assumed when no venue is streaming (check-config, first start)."""

    prices: dict[str, PositiveFloat] = Field(default_factory=dict)
    implied_vols: dict[str, PositiveFloat] = Field(
        default_factory=dict, description="per asset, as a fraction (0.55 = 55%)"
    )
    now: str | None = Field(
        default=None, description="ISO timestamp for option time to expiry in offline checks"
    )

    @field_validator("now")
    @classmethod
    def _iso_timestamp(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an ISO timestamp") from None
        return value


class Portfolio(Strict):
    holdings: list[Holding] = Field(default_factory=list)
    include_venue_positions: bool = True
    reference: ReferenceMarket = ReferenceMarket()


# --- factors, beta, policy --------------------------------------------------------------------


class Band(Strict):
    kind: BandKind = BandKind.ABSOLUTE
    half_width: PositiveFloat | None = Field(
        default=None, description="absolute: in `unit`; relative: fraction of NAV"
    )
    unit: Literal["factor", "usd"] = "factor"
    risk_aversion: PositiveFloat | None = Field(default=None, description="Whalley-Wilmott only")
    min_half_width: NonNegativeFloat = Field(
        default=0.0, description="floor, in factor units, for the Whalley-Wilmott band"
    )
    lower_half_width: PositiveFloat | None = Field(
        default=None,
        description="asymmetric band: half-width below the target (half_width is then the "
        "upper one), same kind and unit; None = symmetric",
    )
    inner_half_width: NonNegativeFloat | None = Field(
        default=None,
        description="hysteresis: once outside the band, trade back to this inner band above "
        "the target (0 = the target), same kind and unit; None = rebalance_to decides",
    )
    inner_lower_half_width: NonNegativeFloat | None = Field(
        default=None, description="the inner band below the target; None = inner_half_width"
    )

    @model_validator(mode="after")
    def _band_parameters(self) -> Band:
        if self.kind in (BandKind.ABSOLUTE, BandKind.RELATIVE) and self.half_width is None:
            raise ValueError(f"a {self.kind.value} band needs half_width")
        if self.kind is BandKind.RELATIVE and self.half_width is not None and self.half_width >= 1:
            raise ValueError("a relative band's half_width is a fraction of NAV, below 1")
        if self.kind is BandKind.WHALLEY_WILMOTT and self.risk_aversion is None:
            raise ValueError("a whalley_wilmott band needs risk_aversion")
        self._check_band_controls()
        return self

    def _check_band_controls(self) -> None:
        controls = ("lower_half_width", "inner_half_width", "inner_lower_half_width")
        given = [name for name in controls if getattr(self, name) is not None]
        if self.kind is BandKind.WHALLEY_WILMOTT and given:
            raise FieldError(
                (given[0],),
                "a whalley_wilmott band is symmetric and trades to its edge: "
                f"{given[0]} applies to absolute and relative bands only",
            )
        if self.kind is BandKind.RELATIVE and (self.lower_half_width or 0.0) >= 1:
            raise FieldError(
                ("lower_half_width",), "a relative band's width is a fraction of NAV, below 1"
            )
        upper = self.half_width or 0.0
        lower = upper if self.lower_half_width is None else self.lower_half_width
        inner_lower = self.inner_lower_half_width
        if inner_lower is None:
            inner_lower = self.inner_half_width
        if self.inner_half_width is not None and self.inner_half_width >= upper:
            raise FieldError(
                ("inner_half_width",),
                f"the inner band ({self.inner_half_width:g}) must lie inside the band "
                f"(half_width {upper:g})",
            )
        if inner_lower is not None and inner_lower >= lower:
            raise FieldError(
                ("inner_lower_half_width",),
                f"the inner band below the target ({inner_lower:g}) must lie inside the band "
                f"(lower half-width {lower:g})",
            )

    def to_core(self) -> core.Band:
        return core.Band(
            self.kind,
            self.half_width,
            self.unit,
            self.risk_aversion,
            self.min_half_width,
            self.lower_half_width,
            self.inner_half_width,
            self.inner_lower_half_width,
        )


class Target(Strict):
    kind: Literal["beta", "beta_delta"] = "beta"
    value: float = 0.0

    def to_core(self) -> core.Target:
        return core.Target(self.kind, self.value)


class HedgeInstrument(Strict):
    venue: str
    symbol: str = Field(description="venue instrument id, e.g. BTC-PERPETUAL")
    mode: core.HedgeMode = Field(
        default=core.HedgeMode.PERP,
        description="perp | protective_put | multi_greek (options trade on this venue)",
    )


# --- option hedges (per factor: factors[].options; order and limits: hedge.option_order,
# option_limits) ----------------------------------------------------------------------------


class OptionCandidates(Strict):
    """Which listed options a factor's hedge may trade."""

    underlyings: list[str] = Field(
        default_factory=list, description="assets whose options qualify; empty = the factor's"
    )
    min_days_to_expiry: NonNegativeFloat = 2.0
    max_days_to_expiry: PositiveFloat = 90.0
    min_abs_delta: float = Field(default=0.05, ge=0.0, le=1.0)
    max_abs_delta: float = Field(default=0.95, ge=0.0, le=1.0)
    min_open_interest: NonNegativeFloat = Field(
        default=0.0, description="venue amount units; > 0 drops options of unknown interest"
    )
    max_relative_spread: PositiveFloat = Field(
        default=0.25, description="(ask - bid) / mid at most this"
    )
    max_candidates: int = Field(default=40, ge=1, le=500)

    @field_validator("underlyings")
    @classmethod
    def _upper(cls, value: list[str]) -> list[str]:
        return [asset.strip().upper() for asset in value]

    @model_validator(mode="after")
    def _ranges(self) -> OptionCandidates:
        if self.min_days_to_expiry >= self.max_days_to_expiry:
            raise FieldError(
                ("max_days_to_expiry",),
                f"max_days_to_expiry ({self.max_days_to_expiry:g}) must exceed "
                f"min_days_to_expiry ({self.min_days_to_expiry:g})",
            )
        if self.min_abs_delta >= self.max_abs_delta:
            raise FieldError(
                ("max_abs_delta",),
                f"max_abs_delta ({self.max_abs_delta:g}) must exceed min_abs_delta "
                f"({self.min_abs_delta:g})",
            )
        return self

    def to_core(self) -> core.CandidateFilter:
        return core.CandidateFilter(
            underlyings=tuple(self.underlyings),
            min_days_to_expiry=self.min_days_to_expiry,
            max_days_to_expiry=self.max_days_to_expiry,
            min_abs_delta=self.min_abs_delta,
            max_abs_delta=self.max_abs_delta,
            min_open_interest=self.min_open_interest,
            max_relative_spread=self.max_relative_spread,
            max_candidates=self.max_candidates,
        )


class GreekBand(Strict):
    """A band around a target for gamma or vega; no half_width = not constrained."""

    target: float = 0.0
    half_width: NonNegativeFloat | None = Field(
        default=None, description="above the target (and below unless lower_half_width)"
    )
    lower_half_width: NonNegativeFloat | None = None
    inner_half_width: NonNegativeFloat | None = Field(
        default=None, description="hysteresis: trade back inside this; None = the band"
    )
    inner_lower_half_width: NonNegativeFloat | None = None

    @model_validator(mode="after")
    def _inner_inside(self) -> GreekBand:
        given = [
            name
            for name in ("lower_half_width", "inner_half_width", "inner_lower_half_width")
            if getattr(self, name) is not None
        ]
        if self.half_width is None and given:
            raise FieldError((given[0],), f"{given[0]} needs half_width")
        upper = self.half_width if self.half_width is not None else math.inf
        lower = upper if self.lower_half_width is None else self.lower_half_width
        inner_lower = self.inner_lower_half_width
        if inner_lower is None:
            inner_lower = self.inner_half_width
        if self.inner_half_width is not None and self.inner_half_width > upper:
            raise FieldError(("inner_half_width",), "the inner band must lie inside the band")
        if inner_lower is not None and inner_lower > lower:
            raise FieldError(("inner_lower_half_width",), "the inner band must lie inside the band")
        return self

    def to_core(self) -> core.GreekBand:
        return core.GreekBand(
            self.target,
            math.inf if self.half_width is None else self.half_width,
            self.lower_half_width,
            self.inner_half_width,
            self.inner_lower_half_width,
        )


class ProtectivePut(Strict):
    coverage: float = Field(
        default=1.0, gt=0.0, le=1.5, description="share of the long beta-delta the puts offset"
    )
    moneyness: float = Field(default=0.9, gt=0.0, lt=2.0, description="strike / forward")
    tenor_days: PositiveFloat = 30.0
    roll_days: NonNegativeFloat = Field(
        default=7.0, description="roll a put with fewer days to expiry"
    )
    delta_drift: PositiveFloat = Field(
        default=0.25, description="roll when the puts' delta is this fraction off the aim"
    )
    restrike_moneyness: NonNegativeFloat = Field(
        default=0.05, description="re-strike a held put only if another is this much nearer"
    )

    @model_validator(mode="after")
    def _roll_before_tenor(self) -> ProtectivePut:
        if self.roll_days >= self.tenor_days:
            raise FieldError(
                ("roll_days",),
                f"roll_days ({self.roll_days:g}) must be below tenor_days "
                f"({self.tenor_days:g}), or every new put is rolled at once",
            )
        return self

    def to_core(self) -> core.ProtectivePut:
        return core.ProtectivePut(
            self.coverage,
            self.moneyness,
            self.tenor_days,
            self.roll_days,
            self.delta_drift,
            self.restrike_moneyness,
        )


class MultiGreek(Strict):
    gamma: GreekBand = Field(
        default=GreekBand(), description="USD of beta-delta per 1% factor move"
    )
    vega: GreekBand = Field(default=GreekBand(), description="USD per vol point")
    max_options: int = Field(default=4, ge=1, le=20)
    max_contracts_per_option: PositiveFloat = Field(
        default=100.0, description="per option and decision, venue amount units"
    )
    integer_lots: bool = Field(
        default=True, description="MILP on whole lots; false = LP, rounded and re-checked"
    )
    time_limit: PositiveSeconds = Field(
        default=1.0, description="HiGHS time limit; past it the perp hedges delta alone"
    )
    premium_weight: NonNegativeFloat = Field(
        default=0.01, description="regularisation: this fraction of premium per contract"
    )
    allow_short: bool = Field(
        default=False, description="write options; false = sell only what the hedge holds"
    )
    retry_after: NonNegativeSeconds = Field(
        default=30.0, description="after a solve that sent nothing, wait this long to re-solve"
    )

    def to_core(self) -> core.MultiGreek:
        return core.MultiGreek(
            gamma=self.gamma.to_core(),
            vega=self.vega.to_core(),
            max_options=self.max_options,
            max_contracts_per_option=self.max_contracts_per_option,
            integer_lots=self.integer_lots,
            time_limit_s=self.time_limit,
            premium_weight=self.premium_weight,
            allow_short=self.allow_short,
            retry_after_s=self.retry_after,
        )


class FactorOptions(Strict):
    """A factor's option settings, read when its hedge.mode is not perp."""

    candidates: OptionCandidates = OptionCandidates()
    protective_put: ProtectivePut = ProtectivePut()
    multi_greek: MultiGreek = MultiGreek()


class OptionOrder(Strict):
    spread_fraction: float = Field(
        default=0.25, ge=0.0, le=1.0, description="limit = mark ± this fraction of the spread"
    )
    reprice_interval: PositiveSeconds = 5.0
    timeout: PositiveSeconds = Field(
        default=60.0,
        description="a leg's rest is cancelled after this; no new option "
        "decision for the factor before it",
    )
    allow_market: bool = Field(default=False, description="never a market order on an option")

    def to_core(self) -> core.OptionOrder:
        return core.OptionOrder(
            self.spread_fraction, self.reprice_interval, self.timeout, self.allow_market
        )


class OptionLimits(Strict):
    max_premium_per_day_usd: PositiveFloat = 50_000.0
    max_net_vega_usd: PositiveFloat = Field(
        default=100_000.0, description="|book vega| after a leg, USD per vol point"
    )
    max_contracts_per_order: PositiveFloat = 50.0
    min_days_to_expiry: NonNegativeFloat = Field(
        default=2.0, description="nothing expiring sooner is bought"
    )

    def to_core(self) -> core.OptionLimits:
        return core.OptionLimits(
            self.max_premium_per_day_usd,
            self.max_net_vega_usd,
            self.max_contracts_per_order,
            self.min_days_to_expiry,
        )


class Factor(Strict):
    asset: str
    hedge: HedgeInstrument
    target: Target = Target()
    band: Band = Band(half_width=0.05)
    hedge_ratio: float = Field(
        default=1.0,
        ge=0.0,
        le=1.5,
        description="share of the trade back to the rebalance point that is sent (0 to 1.5)",
    )
    options: FactorOptions = FactorOptions()

    @model_validator(mode="after")
    def _multi_greek_has_a_band(self) -> Factor:
        greek = self.options.multi_greek
        if self.hedge.mode is core.HedgeMode.MULTI_GREEK and (
            greek.gamma.half_width is None and greek.vega.half_width is None
        ):
            raise FieldError(
                ("options", "multi_greek"),
                "multi_greek mode needs a gamma or a vega band (half_width)",
            )
        return self

    @field_validator("asset")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.strip().upper()

    def to_core(self) -> core.Factor:
        return core.Factor(self.asset, self.target.to_core(), self.band.to_core(), self.hedge_ratio)

    def option_hedge(self) -> core.OptionHedge:
        return core.OptionHedge(
            mode=self.hedge.mode,
            candidates=self.options.candidates.to_core(),
            protective_put=self.options.protective_put.to_core(),
            multi_greek=self.options.multi_greek.to_core(),
        )


class Estimator(StrEnum):
    EWMA = "ewma"
    ROLLING_OLS = "rolling_ols"
    KALMAN = "kalman"


class Shrinkage(Strict):
    """Vasicek shrinkage of each estimate toward its prior, weighted by precision: on by
    default, because it is what keeps a short history sane (few bars, or a crash bar)."""

    enabled: bool = True
    prior_stderr: PositiveFloat = 0.3


class Warmup(Strict):
    lookback: NonNegativeSeconds = Field(default=7 * 86400.0, description="0 = no warm start")
    timeframe: Literal["1m", "5m", "15m", "1h", "4h", "1d"] = "1h"


def _bars(count: float) -> str:
    return f"{count:.3g} bar" + ("" if count == 1 else "s")


class BetaConfig(Strict):
    """The loading estimators. ``half_life`` and ``window`` are durations (clock time) or
    bar counts ('24 bars'); the Kalman state noise is a rate per unit time, so each means
    the same thing at any ``bar``."""

    estimator: Estimator = Estimator.EWMA
    bar: PositiveSeconds = 60.0
    half_life: Span = 86400.0
    window: Span = 7 * 86400.0
    kalman_state_noise: PerDay = Field(
        default=3e-3,
        description="variance each loading's random walk adds per day (or per any unit: "
        "'1.25e-4/h', '2e-6/1m'); the filter's memory in bars follows the bar length",
    )
    min_observations: int = Field(default=30, ge=2)
    winsorize_sigmas: PositiveFloat | None = 5.0
    shrinkage: Shrinkage = Shrinkage()
    priors: dict[str, list[float]] = Field(
        default_factory=dict,
        description="fallback loadings per asset, one per factor, used until betas are warm",
    )
    warmup: Warmup = Warmup()

    @field_validator("priors")
    @classmethod
    def _upper_keys(cls, value: dict[str, list[float]]) -> dict[str, list[float]]:
        return {key.strip().upper(): loadings for key, loadings in value.items()}

    @property
    def half_life_bars(self) -> float:
        return span_bars(self.half_life, self.bar)

    @property
    def window_bars(self) -> int:
        return max(1, round(span_bars(self.window, self.bar)))

    @property
    def kalman_state_noise_per_bar(self) -> float:
        return self.kalman_state_noise * self.bar / DAY_SECONDS

    def span_problems(self) -> dict[str, str]:
        """Spans too short for ``min_observations`` at this bar, by field, with the numbers:
        the config refuses them; a backtest on other bars raises them and says so."""
        problems = {}
        floor = min_half_life_bars(self.min_observations)
        if self.half_life_bars < floor:
            problems["half_life"] = (
                f"half_life ({format_span(self.half_life)}) is {_bars(self.half_life_bars)} "
                f"of {format_seconds(self.bar)}: under {floor:.3g} bars an EWMA never holds "
                f"min_observations ({self.min_observations}) effective bars"
            )
        if self.window_bars < self.min_observations:
            problems["window"] = (
                f"window ({format_span(self.window)}) holds {_bars(self.window_bars)} of "
                f"{format_seconds(self.bar)}: it must hold at least min_observations "
                f"({self.min_observations}) bars"
            )
        return problems

    @model_validator(mode="after")
    def _spans_hold_bars(self) -> BetaConfig:
        problems = self.span_problems()
        if problems:
            field, problem = next(iter(problems.items()))
            raise FieldError(
                (field,), f"{problem}; lengthen it, give it in bars, or shorten beta.bar"
            )
        return self


class OrderConfig(Strict):
    type: Literal["market", "limit"] = "market"
    limit_offset_bps: NonNegativeFloat = 2.0
    limit_timeout: NonNegativeSeconds = 10.0


class HedgePolicy(Strict):
    rebalance_to: Literal["edge", "target"] = "target"
    cooldown: NonNegativeSeconds = 30.0
    max_order_amount: PositiveFloat | None = Field(
        default=None,
        # The old name said "contracts" but held the venue's order amount (USD face on
        # inverse perps, coins on linear ones); configs written with it still load.
        validation_alias=AliasChoices("max_order_amount", "max_order_contracts"),
        description="largest order, in the venue's amount unit (USD face or coins)",
    )
    order: OrderConfig = OrderConfig()
    option_order: OptionOrder = OptionOrder()
    max_decision_age: PositiveSeconds = Field(
        default=5.0, description="remaining slices of an older decision are not sent"
    )
    cancel_open_orders_on_stop: bool = Field(
        default=True, description="on SIGTERM, cancel this daemon's open orders before exiting"
    )

    def to_core(self) -> core.HedgePolicy:
        return core.HedgePolicy(self.rebalance_to, self.cooldown, self.max_order_amount)


class Limits(Strict):
    max_order_notional_usd: PositiveFloat = 250_000.0
    max_hedge_position_usd: PositiveFloat = 2_000_000.0
    max_notional_per_hour_usd: PositiveFloat = 1_000_000.0
    max_notional_per_day_usd: PositiveFloat = 5_000_000.0
    max_orders_per_minute: int = Field(default=10, ge=1)
    max_consecutive_errors: int = Field(default=3, ge=1)
    dry_run: bool = False
    min_liquidation_distance: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="smallest adverse move (fraction of mark) a hedge leg may stand from its "
        "liquidation price, e.g. 0.15; None = the margin guard is off",
    )
    on_margin_breach: Literal["alert", "reduce"] = Field(
        default="alert",
        description="alert: log, journal and export; reduce: also cut the leg back to the "
        "minimum distance",
    )

    def to_core(self) -> core.Limits:
        return core.Limits(
            **self.model_dump(exclude={"min_liquidation_distance", "on_margin_breach"})
        )

    def margin_policy(self) -> MarginPolicy:
        return MarginPolicy(self.min_liquidation_distance, MarginAction(self.on_margin_breach))


class Plausibility(Strict):
    """Price sanity before a tick may move a hedge (each a threshold, all > 0)."""

    max_mark_index_gap: PositiveFloat = Field(
        default=0.05, description="mark at most this fraction away from the index"
    )
    max_mark_outside_book: PositiveFloat = Field(
        default=0.02, description="mark at most this fraction outside the bid/ask"
    )
    jump_sigmas: PositiveFloat = Field(
        default=8.0, description="a move beyond this many recent sigmas needs confirmation"
    )
    confirm_ticks: int = Field(
        default=3, gt=0, description="consecutive ticks that confirm a jump (or the index moves)"
    )

    def to_core(self) -> PlausibilityParams:
        return PlausibilityParams(
            max_mark_index_gap=self.max_mark_index_gap,
            max_mark_outside_book=self.max_mark_outside_book,
            jump_sigmas=self.jump_sigmas,
            confirm_ticks=self.confirm_ticks,
        )


class MarketConfig(Strict):
    stale_after: PositiveSeconds = 10.0
    reconcile_every: PositiveSeconds = 60.0
    max_ahead: PositiveSeconds = Field(
        default=5.0,
        description="exchange timestamps further ahead of the receive clock are dropped",
    )
    plausibility: Plausibility = Plausibility()


class JournalConfig(Strict):
    path: str = "var/hedger.sqlite"


class HttpConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=9184, ge=0, le=65535)
    token: SecretStr | None = None

    @model_validator(mode="before")
    @classmethod
    def _secret_files(cls, data: Any) -> Any:
        return _load_secret_files(data, ("token",))


class LoggingConfig(Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"
    exposure_every: NonNegativeSeconds = Field(
        default=30.0,
        description="an `exposure` line (each factor against its band) this often; 0: never",
    )


class Config(Strict):
    name: str = Field(default="hedger", pattern=r"^[A-Za-z0-9_-]{1,16}$")
    venues: dict[str, Venue]
    factors: list[Factor] = Field(min_length=1, max_length=3)
    portfolio: Portfolio = Portfolio()
    beta: BetaConfig = BetaConfig()
    hedge: HedgePolicy = HedgePolicy()
    limits: Limits = Limits()
    option_limits: OptionLimits = OptionLimits()
    market: MarketConfig = MarketConfig()
    journal: JournalConfig = JournalConfig()
    http: HttpConfig = HttpConfig()
    logging: LoggingConfig = LoggingConfig()

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        assets = [factor.asset for factor in self.factors]
        if len(set(assets)) != len(assets):
            raise FieldError(("factors",), f"factors repeat an asset: {assets}")
        for i, factor in enumerate(self.factors):
            if factor.hedge.venue not in self.venues:
                raise FieldError(
                    ("factors", i, "hedge", "venue"),
                    f"factor {factor.asset} hedges on venue {factor.hedge.venue!r}, which is not "
                    f"in venues ({', '.join(sorted(self.venues)) or 'none'})",
                )
        for asset, loadings in self.beta.priors.items():
            if len(loadings) != len(self.factors):
                raise FieldError(
                    ("beta", "priors", asset),
                    f"{len(loadings)} loadings given, one per factor "
                    f"({len(self.factors)}) expected",
                )
        self._options_fit_their_limits()
        return self

    def _options_fit_their_limits(self) -> None:
        floor = self.option_limits.min_days_to_expiry
        for i, factor in enumerate(self.factors):
            days = factor.options.candidates.min_days_to_expiry
            if factor.hedge.mode is not core.HedgeMode.PERP and days < floor:
                raise FieldError(
                    ("factors", i, "options", "candidates", "min_days_to_expiry"),
                    f"candidates from {days:g} days would be refused by "
                    f"option_limits.min_days_to_expiry ({floor:g})",
                )

    def cycle_params(self, hedge_markets: Mapping[str, HedgeMarket]) -> CycleParams:
        """The core step's parameters; ``hedge_markets`` come from the venues' metadata."""
        return CycleParams(
            factors=tuple(f.to_core() for f in self.factors),
            hedge_markets=dict(hedge_markets),
            policy=self.hedge.to_core(),
            limits=self.limits.to_core(),
            stale_after_s=self.market.stale_after,
            plausibility=self.market.plausibility.to_core(),
            options=OptionHedgeParams(
                {f.asset: f.option_hedge() for f in self.factors},
                self.hedge.option_order.to_core(),
                self.option_limits.to_core(),
            ),
        )

    @property
    def factor_assets(self) -> tuple[str, ...]:
        return tuple(factor.asset for factor in self.factors)


# --- loading ----------------------------------------------------------------------------------

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(slots=True, frozen=True)
class ConfigIssue:
    """One thing wrong with a config file, said so an operator can fix it."""

    path: str
    reason: str
    value: str | None = None

    def __str__(self) -> str:
        shown = f" (got {self.value})" if self.value is not None else ""
        return f"{self.path or '<root>'}: {self.reason}{shown}"


class ConfigError(Exception):
    def __init__(self, source: str, issues: list[ConfigIssue]) -> None:
        self.source = source
        self.issues = issues
        super().__init__(f"{source}: {len(issues)} error(s)")

    def render(self) -> str:
        if len(self.issues) == 1 and not self.issues[0].path:
            # The file itself (unreadable, not UTF-8, not YAML): one line says it all.
            return f"{self.source}: {self.issues[0].reason}"
        lines = [f"{self.source}: invalid configuration ({len(self.issues)} error(s))"]
        lines += [f"  - {issue}" for issue in self.issues]
        return "\n".join(lines)


def _is_secret_path(parts: tuple[str | int, ...]) -> bool:
    return any(isinstance(part, str) and is_secret_key(part) for part in parts)


def _substitute_env(node: Any, env: Mapping[str, str], path: str, issues: list[ConfigIssue]) -> Any:
    if isinstance(node, dict):
        return {
            k: _substitute_env(v, env, f"{path}.{k}" if path else str(k), issues)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_substitute_env(v, env, f"{path}.{i}", issues) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        issues.append(ConfigIssue(path, f"environment variable {name} is not set"))
        return ""

    return _ENV_REF.sub(replace, node)


def issues_from_validation(error: ValidationError) -> list[ConfigIssue]:
    """One issue per pydantic error, at the path of the field to fix, with every secret the
    input echoes masked (pydantic quotes the offending value, and whole mappings)."""
    issues = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        blamed = (item.get("ctx") or {}).get("error")
        if isinstance(blamed, FieldError):
            loc += blamed.loc
        path = ".".join(str(part) for part in loc)
        reason = redact_text(item["msg"])
        value: str | None
        if item["type"] == "missing" or "input" not in item:
            value = None
        elif _is_secret_path(loc):
            value = REDACTED
        else:
            value = _short_repr(redact(item["input"]))
        # Model-level validators report at the model's path; keep their message whole.
        if item["type"] == "value_error":
            reason = reason.removeprefix("Value error, ")
            value = None if isinstance(item.get("input"), dict) else value
        issues.append(ConfigIssue(path, reason, value))
    return issues


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_config(
    text: str, source: str = "<config>", env: Mapping[str, str] | None = None
) -> Config:
    """Validate a YAML document; raise ConfigError listing every problem found."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            source, [ConfigIssue("", f"not valid YAML at {where}: {problem}")]
        ) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(source, [ConfigIssue("", "the top level must be a mapping")])
    issues: list[ConfigIssue] = []
    data = _substitute_env(raw, os.environ if env is None else env, "", issues)
    if issues:
        raise ConfigError(source, issues)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, issues_from_validation(exc)) from None


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            str(path), [ConfigIssue("", f"cannot read file: {exc.strerror}")]
        ) from None
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start]
        raise ConfigError(
            str(path),
            [ConfigIssue("", f"not UTF-8 text: byte 0x{bad:02x} at offset {exc.start}")],
        ) from None
    return parse_config(text, str(path), env)
