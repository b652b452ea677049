"""A daemon on the embedded paper venue, sped up, with its journal in a temporary directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hedger.config import Config, load_config
from hedger.live.engine import Engine

ROOT = Path(__file__).resolve().parents[2]


def paper_config(tmp_path: Path, config: str = "paper.yaml", **paper: Any) -> Config:
    """``config/<config>`` with the venue sped up and the journal under ``tmp_path``.

    Extra keyword arguments override fields of the embedded venue (``speed``, ``seed``...);
    ``limits``/``hedge``/``market`` overrides go through ``with_updates``.
    """
    cfg = load_config(ROOT / "config" / config)
    venue = cfg.venues["paper"]
    assert venue.paper is not None
    settings = {"speed": 40.0, "ticks_per_second": 20.0, "history": 2 * 86400.0} | paper
    venue = venue.model_copy(update={"paper": venue.paper.model_copy(update=settings)})
    # The engine hedges on the venue's clock: at 40x a slice's round trip is seconds of
    # simulated time, so the default decision age would cut every sliced hedge short.
    hedge = cfg.hedge.model_copy(update={"max_decision_age": 120.0})
    return cfg.model_copy(
        update={
            "venues": {"paper": venue},
            "hedge": hedge,
            "journal": cfg.journal.model_copy(update={"path": str(tmp_path / "journal.sqlite")}),
        }
    )


def with_updates(cfg: Config, **sections: dict[str, Any]) -> Config:
    """Replace fields of top-level sections, e.g. ``limits={"dry_run": True}``."""
    update = {
        name: getattr(cfg, name).model_copy(update=fields) for name, fields in sections.items()
    }
    return cfg.model_copy(update=update)


async def move_target(engine: Engine, value: float) -> None:
    """A live change of the first factor's target, as a reload would apply it."""
    factor = engine.cfg.factors[0]
    moved = factor.model_copy(update={"target": factor.target.model_copy(update={"value": value})})
    await engine.apply_config(
        engine.cfg.model_copy(update={"factors": [moved]}), ["factors.0.target.value"]
    )
