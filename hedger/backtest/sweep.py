"""Parameter sweeps: ``PATH=v1,v2,...`` specs over the config, as a cartesian product.

A path is dotted through the config's YAML keys; list items by index (``factors.0.band``).
Aliases, because a sweep almost always varies the first factor's hedge: ``hedge.band.X`` is
``factors.0.band.X`` and ``hedge.target.X`` is ``factors.0.target.X`` (``hedge`` has no band
or target of its own, so the alias cannot hide a real key). Values are read as YAML scalars
(``0.5`` a number, ``true`` a bool, ``6h`` a string the duration fields parse), and every
combination is validated by the config's own pydantic models, so a bad value fails the way it
would in a config file, naming the path.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from hedger.config import Config, issues_from_validation

ALIASES = {"hedge.band.": "factors.0.band.", "hedge.target.": "factors.0.target."}


class SweepError(ValueError):
    """A sweep spec or value the config rejects: ``str()`` says which and why."""


@dataclass(slots=True, frozen=True)
class Axis:
    path: str
    """as given (shown in tables)"""
    resolved: tuple[str | int, ...]
    values: tuple[Any, ...]
    labels: tuple[str, ...]


@dataclass(slots=True, frozen=True)
class Combination:
    settings: tuple[tuple[str, str], ...]
    """(path, value as given) per axis"""
    config: Config

    @property
    def label(self) -> str:
        return " ".join(f"{path}={value}" for path, value in self.settings) or "base"


def resolve_path(path: str) -> tuple[str | int, ...]:
    for alias, target in ALIASES.items():
        if path.startswith(alias):
            path = target + path[len(alias) :]
            break
    parts = path.replace("[", ".").replace("]", "").split(".")
    if not path or any(not p for p in parts):
        raise SweepError(f"sweep path {path!r} is not a dotted config path")
    return tuple(int(p) if p.isdigit() else p for p in parts)


def fixes_the_market(resolved: tuple[str | int, ...]) -> bool:
    """Paths the market tape is laid out from (the book's holdings, the factors' assets and
    hedge instruments, the venues): the tape is built once from the base config and shared
    by every run, so sweeping them would print identical runs."""
    head = resolved[0]
    if head in ("portfolio", "venues"):
        return True
    return head == "factors" and (len(resolved) < 3 or resolved[2] in ("asset", "hedge"))


def parse_axis(spec: str) -> Axis:
    path, sep, raw = spec.partition("=")
    path = path.strip()
    if not sep or not raw.strip():
        raise SweepError(
            f"sweep {spec!r}: expected PATH=v1,v2,... (e.g. hedge.band.half_width=0.5,1)"
        )
    labels = tuple(v.strip() for v in raw.split(","))
    if any(not v for v in labels):
        raise SweepError(f"sweep {path}: empty value in {raw!r}")
    values = tuple(_scalar(v) for v in labels)
    resolved = resolve_path(path)
    if fixes_the_market(resolved):
        raise SweepError(
            f"sweep {path}: the market is laid out once from the config's holdings, factors "
            "and venues, so every run would be the same; run one config per value instead"
        )
    return Axis(path, resolved, values, labels)


def _scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def with_value(data: Any, path: tuple[str | int, ...], value: Any, shown: str) -> Any:
    """A copy of ``data`` (plain dicts/lists) with ``value`` at ``path``; the last key may be
    new (pydantic then rejects it if the model has no such field)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(data, list) and isinstance(head, int):
        if not 0 <= head < len(data):
            raise SweepError(f"sweep path {shown}: index {head} out of range ({len(data)} items)")
        copy = list(data)
        copy[head] = with_value(data[head], rest, value, shown)
        return copy
    if isinstance(data, dict) and isinstance(head, str):
        if rest and head not in data:
            raise SweepError(f"sweep path {shown}: no key {head!r} in the config")
        copy_d = dict(data)
        copy_d[head] = with_value(data.get(head), rest, value, shown)
        return copy_d
    raise SweepError(f"sweep path {shown}: cannot descend into {head!r}")


def combinations(base: Config, axes: list[Axis]) -> list[Combination]:
    """Every combination, first axis slowest; each validated as a whole config."""
    if not axes:
        return [Combination((), base)]
    data = base.model_dump(mode="python", round_trip=True)
    out = []
    for picks in itertools.product(*(range(len(a.values)) for a in axes)):
        changed = data
        for axis, pick in zip(axes, picks, strict=True):
            changed = with_value(changed, axis.resolved, axis.values[pick], axis.path)
        settings = tuple((a.path, a.labels[p]) for a, p in zip(axes, picks, strict=True))
        try:
            config = Config.model_validate(changed)
        except ValidationError as exc:
            shown = ", ".join(f"{p}={v}" for p, v in settings)
            issues = "; ".join(str(i) for i in issues_from_validation(exc))
            raise SweepError(f"sweep {shown}: invalid config: {issues}") from None
        out.append(Combination(settings, config))
    return out
