"""The metric contract, and the metric names the dashboard and the alert rules refer to.

``CONTRACT`` is the set of metric family names the daemon promises to export (counters with
their ``_total``, histograms by their base name), plus prometheus-client's process collector.
``LABELS`` gives each family's label names and ``LABEL_VALUES`` the closed value sets.

``metric_names_in`` returns the *raw* tokens of a PromQL expression, exactly as written: a
histogram appears as ``hedger_order_latency_seconds_bucket`` (or ``_sum``/``_count``), which
is also the sample name in a /metrics exposition. Callers comparing with family names map
tokens through ``family_of`` (``_bucket``/``_sum``/``_count`` of a contract histogram ->
its base name; anything else unchanged); callers comparing with an exposition's sample names
use the raw tokens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from hedger.obs.labels import HEDGE_RESULTS, REFUSAL_KINDS, RELOAD_RESULTS

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "hedger.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"

# name -> label names (histograms: without "le")
LABELS: dict[str, frozenset[str]] = {
    name: frozenset(labels)
    for name, labels in {
        "hedger_portfolio_beta": {"factor"},
        "hedger_portfolio_beta_delta": {"factor", "unit"},
        "hedger_portfolio_gamma": {"factor"},
        "hedger_portfolio_vega_usd": set(),
        "hedger_portfolio_theta_usd": set(),
        "hedger_portfolio_nav_usd": set(),
        "hedger_target_beta_delta": {"factor"},
        "hedger_band_half_width": {"factor"},
        "hedger_band_deviation_ratio": {"factor"},
        "hedger_asset_beta": {"asset", "factor"},
        "hedger_asset_beta_delta_usd": {"asset", "factor"},
        "hedger_hedge_orders_total": {"venue", "instrument", "result"},
        "hedger_hedge_notional_usd_total": {"venue"},
        "hedger_order_latency_seconds": set(),
        "hedger_cycle_seconds": set(),
        "hedger_cycles_total": set(),
        "hedger_cycles_decided_total": set(),
        "hedger_cycles_in_band_total": set(),
        "hedger_position_reads_superseded_total": set(),
        "hedger_task_failures_total": {"task"},
        "hedger_option_hedge_gamma_usd_per_pct": {"factor", "mode"},
        "hedger_option_hedge_vega_usd": {"factor", "mode"},
        "hedger_option_premium_spent_usd": set(),
        "hedger_hedge_liquidation_distance": {"venue", "instrument"},
        "hedger_hedge_margin_ratio": {"venue"},
        "hedger_dead_man_armed": {"venue"},
        "hedger_market_updates_total": {"venue"},
        "hedger_market_data_age_seconds": {"venue"},
        "hedger_feed_reconnects_total": {"venue"},
        "hedger_bad_messages_total": {"venue", "reason"},
        "hedger_guard_refusals_total": {"reason"},
        "hedger_trading_state": set(),
        "hedger_ready": set(),
        "hedger_config_reloads_total": {"result"},
        "hedger_config_in_sync": set(),
        "hedger_up": set(),
        # prometheus-client's ProcessCollector (Linux)
        "process_cpu_seconds_total": set(),
        "process_resident_memory_bytes": set(),
        "process_virtual_memory_bytes": set(),
        "process_start_time_seconds": set(),
        "process_open_fds": set(),
        "process_max_fds": set(),
    }.items()
}

CONTRACT: frozenset[str] = frozenset(LABELS)
HISTOGRAMS: frozenset[str] = frozenset({"hedger_order_latency_seconds", "hedger_cycle_seconds"})
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

# Closed label value sets: a selector using another value matches nothing, silently.
LABEL_VALUES: dict[tuple[str, str], frozenset[str]] = {
    ("hedger_portfolio_beta_delta", "unit"): frozenset({"benchmark", "usd"}),
    ("hedger_hedge_orders_total", "result"): frozenset(HEDGE_RESULTS),
    ("hedger_guard_refusals_total", "reason"): frozenset(REFUSAL_KINDS),
    ("hedger_config_reloads_total", "result"): frozenset(RELOAD_RESULTS),
}

# Labels every scraped series carries besides its own.
TARGET_LABELS = frozenset({"job", "instance"})


def family_of(token: str) -> str:
    """The contract family a raw token belongs to: a contract histogram's ``_bucket``,
    ``_sum`` or ``_count`` maps to its base name; every other token is returned unchanged."""
    for suffix in HISTOGRAM_SUFFIXES:
        base = token.removesuffix(suffix)
        if base != token and base in HISTOGRAMS:
            return base
    return token


# --- PromQL scanning ---------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_COMMENT = re.compile(r"#[^\n]*")
_NAME = re.compile(r"(?<![A-Za-z0-9_:])((?:hedger|process)_[A-Za-z0-9_:]*)")
_SELECTOR = re.compile(r"(?<![A-Za-z0-9_:])([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def _blank_strings(expr: str) -> str:
    """The expression with string literals (label values) and comments blanked out, so a
    label value such as ``job="hedger_x"`` is never mistaken for a metric name."""
    expr = _STRING.sub(lambda m: m.group(0)[0] * 2, expr)
    return _COMMENT.sub("", expr)


def metric_names_in(expr: str) -> set[str]:
    """Raw ``hedger_*`` and ``process_*`` metric tokens in a PromQL expression.

    Tokens are returned as written (``..._bucket`` stays ``..._bucket``); map them with
    ``family_of`` to compare with ``CONTRACT``. Label names with these prefixes inside a
    selector's braces or a ``by``/``without``/``on``/``ignoring`` list are not returned.
    """
    blank = _blank_strings(expr)
    # Drop label-name lists: {a="", b=~""} and by (a, b) / on (a) / group_left (a) ...
    blank = re.sub(r"\{[^}]*\}", " ", blank)
    blank = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", blank)
    return set(_NAME.findall(blank))


def selectors_in(expr: str) -> list[tuple[str, str, str, str]]:
    """``(metric, label, operator, value)`` for every label matcher on a named metric."""
    out = []
    for match in _SELECTOR.finditer(_COMMENT.sub("", expr)):
        metric, body = match.group(1), match.group(2)
        for label, op, value in _MATCHER.findall(body):
            out.append((metric, label, op, value))
    return out


def literal_values(op: str, value: str) -> set[str] | None:
    """The label values an ``=`` or ``=~`` matcher can match, when they are plain words
    (``"failed|rejected"``); None for a negative matcher or a real regular expression."""
    if op == "=":
        return {value}
    if op == "=~" and re.fullmatch(r"[A-Za-z0-9_]+(\|[A-Za-z0-9_]+)*", value):
        return set(value.split("|"))
    return None


def grouping_labels_in(expr: str) -> set[str]:
    """Label names in ``by (...)`` / ``without (...)`` clauses."""
    found: set[str] = set()
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", _blank_strings(expr)):
        found |= {name.strip() for name in group.split(",") if name.strip()}
    return found


# --- files ---------------------------------------------------------------------------------


def iter_panels(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard, rows' nested (collapsed) panels included."""
    for panel in node.get("panels", []):
        yield panel
        yield from iter_panels(panel)


def dashboard_exprs(path: Path = DASHBOARD) -> list[tuple[str, str]]:
    """``(panel title, expr)`` for every query target of the dashboard."""
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            out.append((str(panel.get("title", "")), str(target.get("expr", ""))))
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if variable.get("type") == "query" and query:
            out.append((f"${variable.get('name')}", str(query)))
    return out


def alert_exprs(path: Path = ALERTS) -> list[tuple[str, str]]:
    """``(alert or record name, expr)`` for every rule of a Prometheus rules file."""
    rules = yaml.safe_load(path.read_text(encoding="utf-8"))
    out = []
    for group in rules.get("groups", []):
        for rule in group.get("rules", []):
            out.append((str(rule.get("alert") or rule.get("record")), str(rule["expr"])))
    return out


def dashboard_metric_names(path: Path = DASHBOARD) -> set[str]:
    """Raw metric tokens used by the dashboard's queries (see ``metric_names_in``)."""
    return {name for _, expr in dashboard_exprs(path) for name in metric_names_in(expr)}


def alert_metric_names(path: Path = ALERTS) -> set[str]:
    """Raw metric tokens used by the alert rules (see ``metric_names_in``)."""
    return {name for _, expr in alert_exprs(path) for name in metric_names_in(expr)}
