"""Operator actions on a running daemon: pause, resume, reload (HTTP, SIGHUP, file watch).

Every action is logged and journaled; a reload is validated in full first and applied only
if every change may be made live (``hedger.config.reload``), so a bad file never half-applies.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from hedger.config import Config, ConfigError, load_config
from hedger.config.reload import as_journal_diff, diff, restart_reasons
from hedger.live.engine import Engine
from hedger.obs.logging import configure_logging

log = structlog.get_logger("hedger.live.control")


def config_version(path: str | Path | None) -> str:
    """First 12 hex digits of the file's SHA-256 ('unsaved' without a file)."""
    if path is None:
        return "unsaved"
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
    except OSError:
        return "unreadable"


@dataclass
class ReloadResult:
    applied: bool
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    version: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "changes": self.changes,
            "errors": self.errors,
            "version": self.version,
        }


class Control:
    def __init__(
        self, engine: Engine, cfg: Config, config_path: str | None, force_dry_run: bool = False
    ) -> None:
        self.engine = engine
        self.cfg = cfg
        """The config as the file said it (no run-time rewrites): what reloads diff against."""
        self.config_path = config_path
        self.force_dry_run = force_dry_run
        self.version = config_version(config_path)
        self._lock = asyncio.Lock()

    def pause(self, who: str) -> dict[str, Any]:
        self.engine.pause(f"by operator ({who})", by=f"operator:{who}")
        self._journal("trading_paused", {"by": who})
        return self.state()

    def resume(self, who: str) -> dict[str, Any]:
        self.engine.resume(by=f"operator:{who}")
        self._journal("trading_resumed", {"by": who})
        return self.state()

    async def flatten(self, who: str, factors: list[str], dry_run: bool) -> dict[str, Any]:
        """Close the hedge positions (see ``Engine.flatten``); the daemon stays paused."""
        report = await self.engine.flatten(factors, dry_run=dry_run, by=f"operator:{who}")
        self._journal("flatten_done", {"by": who, **report})
        return report

    def state(self) -> dict[str, Any]:
        guard = self.engine.guard_state
        return {"trading_state": self.engine.trading_state, "reason": guard.reason}

    async def reload(self, trigger: str) -> ReloadResult:
        """Validate the file, refuse restart-only changes, else apply (all or nothing) and
        journal the diff. A refusal, for whatever reason, leaves the running config as it
        was, is journaled and counted, and never raises: every trigger survives it."""
        async with self._lock:
            try:
                result, new = self._reload_checked()
                if result.applied and new is not None and result.changes:
                    await self.engine.apply_config(self._runtime(new), list(result.changes))
            except Exception as exc:
                # Built-first means nothing was swapped: say why, keep running as before.
                log.exception("config_reload_failed", trigger=trigger)
                result, new = ReloadResult(False, errors=[f"{type(exc).__name__}: {exc}"]), None
            stats = self.engine.stats.config_reloads
            if not result.applied:
                stats["refused"] += 1
                log.error("config_reload_refused", trigger=trigger, errors=result.errors)
                self._journal(
                    "config_reload_refused", {"trigger": trigger, "errors": result.errors}
                )
                return result
            assert new is not None
            self.cfg = new
            if result.changes:
                self.engine.journal.record_config_change(
                    now_ms=self.engine.clock_ms(), version=result.version, diff=result.changes
                )
                if "logging.level" in result.changes:
                    configure_logging(new.logging.level, self.engine.cfg.logging.format)
            self.version = result.version
            stats["applied"] += 1
            log.info(
                "config_reloaded", trigger=trigger, version=result.version, changes=result.changes
            )
            return result

    def _reload_checked(self) -> tuple[ReloadResult, Config | None]:
        if self.config_path is None:
            return ReloadResult(False, errors=["the daemon was not started from a file"]), None
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            return ReloadResult(False, errors=[str(issue) for issue in exc.issues]), None
        # The running config may carry run-time rewrites (paper venue urls, --dry-run): the
        # file is compared with the file as it was loaded, and those rewrites are kept.
        changes = diff(self.cfg, new)
        blocked = restart_reasons(changes)
        if blocked:
            errors = [f"{path}: needs a restart, refused live" for path in blocked]
            return ReloadResult(False, errors=errors), None
        version = config_version(self.config_path)
        return ReloadResult(True, as_journal_diff(changes), version=version), new

    def _runtime(self, cfg: Config) -> Config:
        """The file's config with the run-time rewrites kept: venue urls of an embedded
        paper venue, and a dry run forced from the command line (a reload must not turn
        a dry run live)."""
        cfg = cfg.model_copy(update={"venues": self.engine.cfg.venues})
        if self.force_dry_run:
            cfg = cfg.model_copy(update={"limits": cfg.limits.model_copy(update={"dry_run": True})})
        return cfg

    def _journal(self, kind: str, payload: dict[str, Any]) -> None:
        self.engine.journal.record_event(now_ms=self.engine.clock_ms(), kind=kind, payload=payload)
