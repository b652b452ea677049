"""The real ``hedger`` console script, run as an operator would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CANARY = "canary-7f3a9c1e-do-not-print"


def _hedger(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hedger.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        timeout=60,
    )


def test_check_config_paper_prints_one_factor_exposure() -> None:
    result = _hedger("check-config", "config/paper.yaml")
    assert result.returncode == 0, result.stderr
    assert "factors (K = 1)" in result.stdout
    assert "beta_delta[BTC]" in result.stdout
    assert "beta_delta[ETH]" not in result.stdout


def test_check_config_two_factor_prints_both_factors() -> None:
    result = _hedger("check-config", "config/two-factor.yaml")
    assert result.returncode == 0, result.stderr
    assert "factors (K = 2)" in result.stdout
    assert "beta_delta[BTC]" in result.stdout and "beta_delta[ETH]" in result.stdout


def test_bad_config_exits_2_listing_every_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (ROOT / "config" / "paper.yaml")
        .read_text()
        .replace("max_orders_per_minute: 20", "max_orders_per_minute: -1")
        .replace("half_life: 1d", "half_life: forever")
    )
    result = _hedger("check-config", str(bad))
    assert result.returncode == 2
    assert "limits.max_orders_per_minute" in result.stderr and "got -1" in result.stderr
    assert "beta.half_life" in result.stderr and "'forever'" in result.stderr
    assert result.stdout == ""


def test_missing_file_exits_2() -> None:
    result = _hedger("check-config", "config/does-not-exist.yaml")
    assert result.returncode == 2
    assert "cannot read file" in result.stderr


@pytest.mark.parametrize("valid", [True, False])
def test_secrets_never_appear_in_output(tmp_path: Path, valid: bool) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(CANARY + "-file")
    text = (
        (ROOT / "config" / "paper.yaml")
        .read_text()
        .replace("api_key: paper ", "api_key: ${HEDGER_TEST_KEY} ")
        .replace("secret: paper", f"secret_file: {secret_file}")
    )
    text = text.replace(
        'token: "${HEDGER_HTTP_TOKEN:-paper-token}"',
        f"token: {CANARY}-inline",
    )
    if not valid:
        # bad values next to the secrets, and a secret of the wrong type
        text = text.replace(
            "exchange: deribit", "exchange: deribit\n    password: [" + CANARY + "-list]"
        )
        text = text.replace("max_orders_per_minute: 20", "max_orders_per_minute: zero")
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    result = _hedger("check-config", str(path), env={"HEDGER_TEST_KEY": CANARY + "-env"})
    assert result.returncode == (0 if valid else 2), result.stderr
    assert CANARY not in result.stdout + result.stderr
    if not valid:
        assert "venues.paper.password" in result.stderr
