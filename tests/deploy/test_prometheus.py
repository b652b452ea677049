"""Prometheus config and alert rules, checked and unit-tested by a real promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(
    PROMTOOL is None,
    reason="PROMTOOL MISSING: install Debian's 'prometheus' package (make test does, as root "
    "with apt); the alert rules are NOT being tested",
)


def _promtool(*args: str) -> str:
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, *args],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_scrape_config_is_valid() -> None:
    assert "SUCCESS" in _promtool("check", "config", "prometheus.yml")


def test_alert_rules_are_valid() -> None:
    assert "6 rules found" in _promtool("check", "rules", "alerts.yml")


def test_alert_rules_fire_as_unit_tested() -> None:
    assert "SUCCESS" in _promtool("test", "rules", "alerts_test.yml")
