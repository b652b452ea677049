"""``hedger ctl`` finds the daemon from its config, a URL or ``$HEDGER_URL``, and ``ctl
status`` reads as a summary (``--json``: the raw document), against a real daemon."""

from __future__ import annotations

import asyncio
import io
import json
import re
from pathlib import Path

import pytest

from hedger import cli
from hedger.config import load_config
from hedger.console.daemon_client import DaemonNotFoundError, daemon_url
from hedger.live.daemon import start_daemon, stop_daemon
from hedger.obs.logging import configure_logging
from tests.live.conftest import move_target
from tests.net import free_port
from tests.obs.test_http import TOKEN, until, write_config


def test_the_url_comes_from_the_flag_the_config_the_environment_or_the_default(
    tmp_path: Path,
) -> None:
    cfg = load_config(write_config(tmp_path, 19999))
    env = {"HEDGER_URL": "http://elsewhere:1/"}
    assert daemon_url("http://given:2/", cfg, env) == "http://given:2"
    assert daemon_url(None, cfg, env) == "http://127.0.0.1:19999"
    assert daemon_url(None, None, env) == "http://elsewhere:1"
    assert daemon_url(None, None, {}) == "http://127.0.0.1:9184"
    everywhere = cfg.model_copy(update={"http": cfg.http.model_copy(update={"host": "0.0.0.0"})})
    assert daemon_url(None, everywhere, {}) == "http://127.0.0.1:19999"
    v6 = cfg.model_copy(update={"http": cfg.http.model_copy(update={"host": "::1"})})
    assert daemon_url(None, v6, {}) == "http://[::1]:19999"
    ephemeral = cfg.model_copy(update={"http": cfg.http.model_copy(update={"port": 0})})
    with pytest.raises(DaemonNotFoundError, match=r"http\.port is 0"):
        daemon_url(None, ephemeral, {})


def test_ctl_with_an_ephemeral_port_config_says_to_pass_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, 0)
    assert cli.main(["ctl", "status", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "hedger ctl status: http.port is 0 (an ephemeral port, different each run): pass --url"
    )


def test_ctl_status_of_nobody_is_one_line_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert cli.main(["ctl", "status", "--url", url, "--timeout", "5"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"hedger ctl status: cannot reach {url}: ") and "\n" not in err


async def test_ctl_status_reads_as_a_summary_and_pause_finds_the_token_in_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: one line of raw JSON, and `ctl` could not find the daemon from its config."""
    configure_logging("error", "json", io.StringIO())  # stdout is the command's alone
    path = write_config(tmp_path, free_port())
    daemon = await start_daemon(load_config(path), str(path), watch_config=False)
    try:
        await until(lambda: daemon.engine.exposure is not None, 60)

        def ctl(*args: str) -> tuple[int, str, str]:
            code = cli.main(["ctl", *args, "--config", str(path)])
            captured = capsys.readouterr()
            return code, captured.out, captured.err

        code, raw, err = await asyncio.to_thread(ctl, "status", "--json")
        assert code == 0, err
        document = json.loads(raw)
        code, text, err = await asyncio.to_thread(ctl, "status")
        assert code == 0, err
        assert text.startswith(f"hedger daemon 'paper' at {daemon.http.url}: trading RUNNING")  # type: ignore[union-attr]
        factor = next(line for line in text.splitlines() if line.startswith("BTC "))
        assert re.search(r"beta-delta [+-][\d,]+\.\d{4} BTC \([+-][\d,]+ USD\)", factor)
        assert "± 0.2500" in factor and re.search(r"(inside|OUTSIDE)$", factor)
        assert "venue paper: data age " in text and "refused since start: " in text
        assert document["name"] == "paper" and document["factors"][0]["factor"] == "BTC"

        code, out, err = await asyncio.to_thread(ctl, "pause")  # the token from the config
        assert code == 0, err
        assert json.loads(out)["trading_state"] == "paused"
        code, text, err = await asyncio.to_thread(ctl, "status")
        assert "trading PAUSED (by operator (127.0.0.1))" in text.splitlines()[0]
        await move_target(daemon.engine, 2.0)  # a hedge is due: the pause refuses it
        await until(lambda: daemon.engine.stats.guard_refusals["paused"] > 0, 30)
        code, text, err = await asyncio.to_thread(ctl, "status")
        assert re.search(r"refused since start: .*paused [\d,]+", text), text
        code, _, err = await asyncio.to_thread(ctl, "resume", "--token", "wrong")
        assert code == 1 and "HTTP 401" in err and TOKEN not in err
    finally:
        await stop_daemon(daemon)
