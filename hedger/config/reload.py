"""What a config reload changes, and whether it may change while the daemon runs.

Thresholds an operator tunes (targets, bands, limits, cooldowns, order settings, beta
parameters, staleness, declared holdings, log level) apply live. Anything that identifies
what the daemon is connected to or where it writes (venues and keys, the hedge instrument
of a factor, the daemon's name — it prefixes every client order id —, the journal, the HTTP
bind, the log format) needs a restart: changing it under a running engine would orphan
orders, subscriptions or files. A reload that touches one of those is refused whole, with
the paths that need a restart, and the running config stays.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pydantic import SecretStr

from hedger.config import Config

RESTART_PREFIXES = (
    "name",
    "venues",
    "journal",
    "http",
    "logging.format",
)
"""Dotted paths (and everything under them) that only a restart may change."""


@dataclass(slots=True, frozen=True)
class Change:
    path: str
    old: Any
    new: Any


def _flatten(node: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(node, SecretStr):
        # A changed secret must show as a change (venues need a restart), without the value.
        digest = hashlib.sha256(node.get_secret_value().encode()).hexdigest()[:8]
        out[prefix] = f"secret:{digest}"
    elif isinstance(node, Enum):
        out[prefix] = node.value
    elif isinstance(node, dict):
        for key, value in node.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(node, list):
        out[f"{prefix}.__len__"] = len(node)
        for i, value in enumerate(node):
            _flatten(value, f"{prefix}.{i}", out)
    else:
        out[prefix] = node


def _dump(cfg: Config) -> dict[str, Any]:
    """Plain values, secrets as a short digest."""
    flat: dict[str, Any] = {}
    _flatten(cfg.model_dump(mode="python"), "", flat)
    return flat


def diff(old: Config, new: Config) -> list[Change]:
    before, after = _dump(old), _dump(new)
    paths = sorted(set(before) | set(after))
    return [
        Change(path, before.get(path), after.get(path))
        for path in paths
        if before.get(path) != after.get(path)
    ]


def needs_restart(change: Change) -> bool:
    path = change.path
    if any(path == p or path.startswith(p + ".") for p in RESTART_PREFIXES):
        return True
    # A factor's asset and hedge instrument decide subscriptions and executors; adding or
    # removing a factor changes every array's factor axis.
    parts = path.split(".")
    return parts[0] == "factors" and (len(parts) == 2 or parts[2] in ("asset", "hedge"))


def restart_reasons(changes: list[Change]) -> list[str]:
    return [c.path for c in changes if needs_restart(c)]


def as_journal_diff(changes: list[Change]) -> dict[str, dict[str, Any]]:
    return {c.path: {"old": c.old, "new": c.new} for c in changes}
