"""Finding a running daemon's HTTP port and asking it: ``hedger ctl``'s side of the wire.

The daemon is found, first match wins, from ``--url``, from its config (``--config``: the
``http.host``/``http.port`` it serves on), from ``$HEDGER_URL``, or at the default
``http://127.0.0.1:9184``. The token, likewise, from ``--token``/``--token-file``,
``$HEDGER_TOKEN``, or the config's ``http.token``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from hedger.config import Config

DEFAULT_URL = "http://127.0.0.1:9184"
_ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class DaemonNotFoundError(ValueError):
    """Where the daemon listens cannot be told from what was given."""


class DaemonUnreachableError(Exception):
    """The daemon did not answer (not running, wrong port, a firewall)."""


class DaemonRefusedError(Exception):
    """The daemon answered with an HTTP error (e.g. 401 without a valid token)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


def url_from_config(cfg: Config) -> str:
    host, port = cfg.http.host, cfg.http.port
    if port == 0:
        raise DaemonNotFoundError(
            "http.port is 0 (an ephemeral port, different each run): pass --url"
        )
    # A daemon bound to every address is reached on loopback from its own machine.
    host = _ANY_ADDRESS.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def daemon_url(url: str | None, cfg: Config | None, env: Mapping[str, str]) -> str:
    """Where the daemon answers: ``--url``, else its config, else ``$HEDGER_URL``, else
    the default port on loopback."""
    if url:
        return url.rstrip("/")
    if cfg is not None:
        return url_from_config(cfg)
    return (env.get("HEDGER_URL") or DEFAULT_URL).rstrip("/")


def config_token(cfg: Config | None) -> str | None:
    if cfg is None or cfg.http.token is None:
        return None
    return cfg.http.token.get_secret_value()


@dataclass(slots=True)
class DaemonClient:
    url: str
    token: str | None = None
    timeout_s: float = 10.0

    def _open(self, request: urllib.request.Request) -> bytes:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body: bytes = response.read()
                return body
        except urllib.error.HTTPError as exc:
            raise DaemonRefusedError(exc.code, exc.read().decode(errors="replace")) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DaemonUnreachableError(f"cannot reach {self.url}: {reason}") from None

    def get(self, path: str) -> bytes:
        return self._open(urllib.request.Request(f"{self.url}{path}"))

    def post(self, path: str, body: dict[str, Any] | None = None) -> bytes:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method="POST")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        return self._open(request)

    def status(self) -> dict[str, Any]:
        document = json.loads(self.get("/status"))
        if not isinstance(document, dict):
            raise DaemonUnreachableError(f"{self.url}/status: not a hedger status document")
        return document

    def refusals(self) -> dict[str, float]:
        """Hedges the guards refused since the daemon started, by gate or limit (from
        ``/metrics``: ``hedger_guard_refusals_total``), non-zero ones only."""
        text = self.get("/metrics").decode()
        counts: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            if family.name != "hedger_guard_refusals":
                continue
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.value:
                    counts[sample.labels.get("reason", "?")] = sample.value
        return counts
