"""The real ``hedger`` console script, run as an operator would run it."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.net import free_port, wait_until
from tests.obs.test_http import TOKEN, write_config

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


# --- nothing trades before the daemon is whole; one line, never a traceback -----------------


def _last_event(journal: Path) -> tuple[str, dict[str, object]]:
    db = sqlite3.connect(journal)
    kind, payload = db.execute("SELECT kind, payload FROM events ORDER BY id DESC").fetchone()
    return kind, json.loads(payload)


def _traded(journal: Path) -> int:
    db = sqlite3.connect(journal)
    intents = db.execute("SELECT COUNT(*) FROM intents").fetchone()[0]
    return int(intents + db.execute("SELECT COUNT(*) FROM orders").fetchone()[0])


def _one_line(stderr: str, command: str) -> str:
    """The operator's line: the last one, plain text (the JSON lines before it are logs)."""
    assert "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"hedger {command}: "), stderr
    return last


@pytest.mark.parametrize(
    ("edit", "code", "expected"),
    [
        pytest.param(
            ("symbol: BTC-PERPETUAL}", "symbol: BTC-NOPE}"),
            2,
            "factor BTC: hedge instrument 'BTC-NOPE' is not listed on paper",
            id="unknown-hedge-symbol",
        ),
        pytest.param(
            ("- {asset: ETH, kind: spot, qty: 40}", "- {asset: ZZZ, kind: spot, qty: 40}"),
            2,
            "asset ZZZ: no venue lists a perpetual or spot pair",
            id="asset-no-venue-lists",
        ),
        pytest.param(
            ("api_key: paper ", f"api_key: {CANARY}-key "),
            2,
            "venue paper: authentication refused",
            id="wrong-api-key",
        ),
    ],
)
def test_run_refuses_what_no_venue_can_run(
    tmp_path: Path, edit: tuple[str, str], code: int, expected: str
) -> None:
    """Before: KeyError / UniverseError / AuthenticationError tracebacks, exit 1."""
    path = write_config(tmp_path, free_port(), **dict([edit]))
    result = _hedger("run", "--config", str(path))
    assert result.returncode == code, result.stderr
    assert expected in _one_line(result.stderr, "run")
    assert CANARY not in result.stderr
    kind, payload = _last_event(tmp_path / "j.sqlite")
    assert kind == "start_refused" and expected in str(payload["reason"])
    assert payload["exit_code"] == code
    assert _traded(tmp_path / "j.sqlite") == 0


@pytest.mark.parametrize("listener", ["http", "paper venue"])
def test_run_with_a_busy_port_exits_1_before_any_order(tmp_path: Path, listener: str) -> None:
    """Before: with the HTTP port taken the engine traded first, then a traceback left a
    pending order; a busy paper-venue port was a raw OSError traceback."""
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        if listener == "http":
            path = write_config(tmp_path, port)
        else:
            path = write_config(tmp_path, free_port(), **{"port: 0 ": f"port: {port} "})
        result = _hedger("run", "--config", str(path))
    assert result.returncode == 1, result.stderr
    line = _one_line(result.stderr, "run")
    assert f"{listener} " in line and f"127.0.0.1:{port}: cannot listen" in line, line
    assert _last_event(tmp_path / "j.sqlite")[0] == "start_refused"
    assert _traded(tmp_path / "j.sqlite") == 0
    assert "venue_connected" not in result.stderr  # refused before any venue was asked


def test_run_with_an_unwritable_journal_path_exits_1(tmp_path: Path) -> None:
    """Before: a NotADirectoryError/sqlite3 traceback."""
    (tmp_path / "a-file").write_text("")
    path = write_config(
        tmp_path, free_port(), **{f"{tmp_path}/j.sqlite": f"{tmp_path}/a-file/j.sqlite"}
    )
    result = _hedger("run", "--config", str(path))
    assert result.returncode == 1, result.stderr
    line = _one_line(result.stderr, "run")
    assert f"journal {tmp_path}/a-file/j.sqlite: cannot create {tmp_path}/a-file" in line


@pytest.mark.parametrize("command", ["run", "check-config"])
def test_a_non_utf8_config_is_one_line_exit_2(tmp_path: Path, command: str) -> None:
    """Before: a UnicodeDecodeError traceback from both commands."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    args = ["run", "--config", str(path)] if command == "run" else ["check-config", str(path)]
    result = _hedger(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == f"{path}: not UTF-8 text: byte 0xe9 at offset 9"


def test_ctl_with_a_missing_token_file_is_one_line_exit_2(tmp_path: Path) -> None:
    """Before: a FileNotFoundError traceback, exit 1."""
    missing = tmp_path / "no-token"
    result = _hedger("ctl", "pause", "--token-file", str(missing), "--url", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"hedger ctl pause: --token-file {missing}: cannot read: No such file or directory"
    )


def test_check_config_online_runs_the_preflight_without_trading(tmp_path: Path) -> None:
    """Before: `--online` did not exist (argparse error)."""
    path = write_config(tmp_path, free_port())
    result = _hedger("check-config", "--online", str(path))
    assert result.returncode == 0, result.stderr
    report = result.stdout.split("online checks passed:\n", 1)[1]
    assert "venue paper: connected" in report and "authenticated" in report
    assert "factor BTC: hedged with BTC-PERPETUAL on paper" in report
    for asset in ("SOL", "ETH", "AVAX"):
        assert f"asset {asset}: priced by paper:" in report
    db = sqlite3.connect(tmp_path / "j.sqlite")
    assert db.execute("SELECT name FROM sqlite_master").fetchall() == []  # left untouched


def test_check_config_online_refuses_what_run_would_refuse(tmp_path: Path) -> None:
    """Before: `--online` did not exist; offline, the unknown symbol was called valid."""
    path = write_config(tmp_path, free_port(), **{"symbol: BTC-PERPETUAL}": "symbol: BTC-NOPE}"})
    result = _hedger("check-config", "--online", str(path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "hedger check-config --online: "
        "factor BTC: hedge instrument 'BTC-NOPE' is not listed on paper"
    )


# --- secrets are masked in every output ---------------------------------------------------------


def test_check_config_masks_credentials_in_urls(tmp_path: Path) -> None:
    """Before: the summary printed a venue's REST URL with its user:password."""
    text = (ROOT / "config" / "paper.yaml").read_text()
    text = text.replace(
        "factors:",
        f"  elsewhere:\n    exchange: deribit\n"
        f"    urls: {{rest: 'https://key:{CANARY}@example.invalid/api'}}\n\nfactors:",
        1,
    )
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    result = _hedger("check-config", str(path))
    assert result.returncode == 0, result.stderr
    assert "elsewhere: deribit (https://<redacted>@example.invalid/api)" in result.stdout
    assert CANARY not in result.stdout + result.stderr


def test_a_refused_reload_does_not_echo_secrets(tmp_path: Path) -> None:
    """Before: `/control/reload` answered 422 with `got '<the key>'` for a credential under
    a key the old masking missed (`apiKey`) and a URL's password."""
    port = free_port()
    path = write_config(tmp_path, port)
    url = f"http://127.0.0.1:{port}"
    daemon = subprocess.Popen(
        [sys.executable, "-m", "hedger.cli", "run", "--config", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        wait_until(lambda: _engine_started(url, daemon), 60, "the engine to start")
        path.write_text(
            path.read_text().replace(
                "exchange: deribit",
                f"exchange: deribit\n    apiKey: {CANARY}-a\n"
                f"    urls: 'https://u:{CANARY}-b@example.invalid'",
            )
        )
        result = _hedger("ctl", "reload", "--url", url, "--token", TOKEN)
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, daemon_stderr = daemon.communicate(timeout=30)
    assert result.returncode == 1
    assert "HTTP 422" in result.stderr
    assert "venues.paper.apiKey" in result.stderr and "venues.paper.urls" in result.stderr
    assert CANARY not in result.stdout + result.stderr + daemon_stderr


def _engine_started(url: str, daemon: subprocess.Popen[str]) -> bool:
    import urllib.request

    assert daemon.poll() is None, daemon.communicate()[1]
    try:
        with urllib.request.urlopen(f"{url}/status", timeout=1) as response:
            return bool(json.loads(response.read())["cycles"])
    except OSError:
        return False
