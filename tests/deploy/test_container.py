"""The image, run for real: paper venue and daemon as two hardened containers on one network.

Needs a reachable docker daemon and the image (``deploy/docker/build-image.sh`` builds
``hedger:dev`` without any registry). CI machines have neither, so there it skips, loudly;
run it with ``HEDGER_IMAGE=hedger:dev .venv/bin/pytest tests/deploy/test_container.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.net import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("HEDGER_IMAGE", "hedger:dev")


def _docker(*args: str, check: bool = True, timeout: float = 120) -> str:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def _image_present() -> str | None:
    """None when the test can run, else why not."""
    if shutil.which("docker") is None:
        return "no docker CLI"
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        return "no reachable docker daemon"
    inspect = ["docker", "image", "inspect", IMAGE]
    if subprocess.run(inspect, capture_output=True, check=False).returncode:
        return f"image {IMAGE} not built (deploy/docker/build-image.sh)"
    return None


SKIP = _image_present()
pytestmark = pytest.mark.skipif(
    SKIP is not None, reason=f"CONTAINER NOT TESTED: {SKIP}; the image is NOT being run"
)

HARDENED = ["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL"]
HARDENED += ["--security-opt", "no-new-privileges:true"]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, ""


@pytest.fixture
def stack() -> Iterator[tuple[str, str]]:
    """(hedger container name, its base URL) on a private network next to a paper venue."""
    tag = uuid.uuid4().hex[:8]
    network, venue, hedger = f"hedger-net-{tag}", f"paper-{tag}", f"hedger-{tag}"
    volume = f"hedger-journal-{tag}"
    port = free_port()
    _docker("network", "create", network)
    try:
        _docker(
            "run", "-d", "--name", venue, "--network", network,
            "--network-alias", "paper-venue", *HARDENED,
            IMAGE, "paper-venue", "--host", "0.0.0.0", "--port", "8765",
        )  # fmt: skip
        _docker(
            "run", "-d", "--name", hedger, "--network", network, *HARDENED,
            "-v", f"{ROOT / 'deploy' / 'compose' / 'hedger.yaml'}:/etc/hedger/config.yaml:ro",
            "-v", f"{volume}:/var/lib/hedger",
            "-p", f"127.0.0.1:{port}:9184",
            "-e", "HEDGER_HTTP_TOKEN=container-token",
            IMAGE,
        )  # fmt: skip
        yield hedger, f"http://127.0.0.1:{port}"
    finally:
        for name in (hedger, venue):
            _docker("rm", "-f", name, check=False)
        _docker("volume", "rm", "-f", volume, check=False)
        _docker("network", "rm", network, check=False)


def test_the_image_hedges_on_the_paper_venue_and_stops_cleanly(stack: tuple[str, str]) -> None:
    hedger, base = stack
    config = json.loads(_docker("image", "inspect", IMAGE))[0]["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["hedger"]

    wait_until(lambda: _get(base + "/healthz")[0] == 200, 120, "/healthz")
    wait_until(lambda: _get(base + "/readyz")[0] == 200, 120, "/readyz")

    def hedged() -> bool:
        status, text = _get(base + "/metrics")
        return status == 200 and any(
            line.startswith("hedger_hedge_orders_total{") and 'result="filled"' in line
            for line in text.splitlines()
        )

    wait_until(hedged, 120, "a filled hedge in /metrics")
    state = json.loads(_get(base + "/status")[1])
    assert state["trading_state"] == "running", state
    # The control surface is reachable through the published port, and token-guarded.
    request = urllib.request.Request(base + "/control/pause", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=3)
    assert refused.value.code == 401
    # The image's HEALTHCHECK command, run as the container runs it.
    _docker("exec", hedger, "python3", "/opt/hedger/healthcheck.py")
    # Nothing outside the volume and /tmp is writable.
    touch = subprocess.run(
        ["docker", "exec", hedger, "python3", "-c", "open('/opt/hedger/x', 'w')"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert touch.returncode != 0 and "Read-only file system" in touch.stderr

    started = time.monotonic()
    _docker("stop", "--time", "30", hedger, timeout=60)
    took = time.monotonic() - started
    inspected = json.loads(_docker("inspect", hedger))[0]["State"]
    assert inspected["ExitCode"] == 0, inspected
    assert took < 25, f"SIGTERM took {took:.1f} s"
    events = [json.loads(line) for line in _container_output(hedger) if line.startswith("{")]
    names = {event.get("event") for event in events}
    assert {"order_filled", "daemon_stopped"} <= names, sorted(n for n in names if n)


def _container_output(container: str) -> list[str]:
    """Its stdout and stderr lines (docker logs replays them on its own two streams)."""
    result = subprocess.run(
        ["docker", "logs", container], capture_output=True, text=True, check=True
    )
    return result.stdout.splitlines() + result.stderr.splitlines()
