"""Prometheus config and alert rules, checked and unit-tested by a real promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.metric_refs import alert_exprs

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")

needs_promtool = pytest.mark.skipif(
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


@needs_promtool
def test_scrape_config_is_valid() -> None:
    assert "SUCCESS" in _promtool("check", "config", "prometheus.yml")


@needs_promtool
def test_alert_rules_are_valid() -> None:
    assert "10 rules found" in _promtool("check", "rules", "alerts.yml")


@needs_promtool
def test_alert_rules_fire_as_unit_tested() -> None:
    assert "SUCCESS" in _promtool("test", "rules", "alerts_test.yml")


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    """promtool only checks the cases written: an alert without a firing case could have a
    selector that never matches, one without a silent case could fire all the time."""
    suite = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())
    fires, silent = set(), set()
    for group in suite["tests"]:
        for case in group.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else silent).add(case["alertname"])
    alerts = {name for name, _ in alert_exprs()}
    assert alerts - fires == set(), "never tested firing"
    assert alerts - silent == set(), "never tested silent"
