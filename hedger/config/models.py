"""The daemon's configuration: pydantic v2 models, YAML loading, secrets and env substitution.

Every model forbids unknown keys, so a typo is an error rather than a silently ignored
threshold. Secrets are ``SecretStr`` and may come from ``<name>_file`` (Docker/Kubernetes
secrets) instead of the YAML itself; any string may reference ``${ENV_VAR}`` or
``${ENV_VAR:-default}``.
"""

from __future__ import annotations

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

from hedger.config.durations import Seconds
from hedger.core import params as core
from hedger.core.cycle import CycleParams
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


class Venue(Strict):
    exchange: str = Field(description="ccxt exchange id, e.g. 'deribit'")
    api_key: SecretStr | None = None
    secret: SecretStr | None = None
    password: SecretStr | None = None
    urls: VenueUrls = VenueUrls()
    paper: PaperVenue | None = Field(
        default=None, description="run the built-in paper venue and point this venue at it"
    )
    testnet: bool = False
    timeout_seconds: PositiveSeconds = 10.0
    label_max_len: int = Field(default=64, ge=8, description="client order id limit (Deribit: 64)")
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

    @model_validator(mode="before")
    @classmethod
    def _secret_files(cls, data: Any) -> Any:
        return _load_secret_files(data, ("api_key", "secret", "password"))

    @field_validator("exchange")
    @classmethod
    def _known_exchange(cls, value: str) -> str:
        import ccxt  # deferred: importing ccxt costs ~0.3 s, only config validation needs it here

        if value not in ccxt.exchanges:
            raise ValueError(f"unknown ccxt exchange id {value!r}")
        return value


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

    @model_validator(mode="after")
    def _band_parameters(self) -> Band:
        if self.kind in (BandKind.ABSOLUTE, BandKind.RELATIVE) and self.half_width is None:
            raise ValueError(f"a {self.kind.value} band needs half_width")
        if self.kind is BandKind.RELATIVE and self.half_width is not None and self.half_width >= 1:
            raise ValueError("a relative band's half_width is a fraction of NAV, below 1")
        if self.kind is BandKind.WHALLEY_WILMOTT and self.risk_aversion is None:
            raise ValueError("a whalley_wilmott band needs risk_aversion")
        return self

    def to_core(self) -> core.Band:
        return core.Band(
            self.kind, self.half_width, self.unit, self.risk_aversion, self.min_half_width
        )


class Target(Strict):
    kind: Literal["beta", "beta_delta"] = "beta"
    value: float = 0.0

    def to_core(self) -> core.Target:
        return core.Target(self.kind, self.value)


class HedgeInstrument(Strict):
    venue: str
    symbol: str = Field(description="venue instrument id, e.g. BTC-PERPETUAL")


class Factor(Strict):
    asset: str
    hedge: HedgeInstrument
    target: Target = Target()
    band: Band = Band(half_width=0.05)

    @field_validator("asset")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.strip().upper()

    def to_core(self) -> core.Factor:
        return core.Factor(self.asset, self.target.to_core(), self.band.to_core())


class Estimator(StrEnum):
    EWMA = "ewma"
    ROLLING_OLS = "rolling_ols"
    KALMAN = "kalman"


class Shrinkage(Strict):
    enabled: bool = False
    prior_stderr: PositiveFloat = 0.5


class Warmup(Strict):
    lookback: NonNegativeSeconds = Field(default=7 * 86400.0, description="0 = no warm start")
    timeframe: Literal["1m", "5m", "15m", "1h", "4h", "1d"] = "1h"


class BetaConfig(Strict):
    estimator: Estimator = Estimator.EWMA
    bar: PositiveSeconds = 60.0
    half_life: PositiveSeconds = 86400.0
    window: PositiveSeconds = 7 * 86400.0
    kalman_state_noise: PositiveFloat = 1e-5
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

    @model_validator(mode="after")
    def _window_holds_bars(self) -> BetaConfig:
        if self.window < self.bar * self.min_observations:
            raise FieldError(
                ("window",),
                f"window ({self.window:g}s) must hold at least min_observations "
                f"({self.min_observations}) bars of {self.bar:g}s",
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

    def to_core(self) -> core.Limits:
        return core.Limits(**self.model_dump())


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
        return self

    def cycle_params(self, hedge_markets: Mapping[str, HedgeMarket]) -> CycleParams:
        """The core step's parameters; ``hedge_markets`` come from the venues' metadata."""
        return CycleParams(
            factors=tuple(f.to_core() for f in self.factors),
            hedge_markets=dict(hedge_markets),
            policy=self.hedge.to_core(),
            limits=self.limits.to_core(),
            stale_after_s=self.market.stale_after,
            plausibility=self.market.plausibility.to_core(),
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
