"""Docker HEALTHCHECK for the hedger image: GET /healthz with the standard library only.

Exit 0 when the daemon answers 2xx, 1 otherwise. A container running no `hedger run`
(paper-venue, check-config, backtest, ...) serves no /healthz and is reported healthy.
HEDGER_HEALTHCHECK_URL overrides the URL when a mounted config moves the port.
"""

import os
import sys
import urllib.request

URL = os.environ.get("HEDGER_HEALTHCHECK_URL", "http://127.0.0.1:9184/healthz")


def daemon_running() -> bool:
    """Whether some process is `hedger run ...` (PID 1 normally; a child with --init)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        for i, arg in enumerate(argv[:-1]):
            if os.path.basename(arg) == b"hedger":
                if argv[i + 1] == b"run":
                    return True
                break
    return False


def main() -> int:
    if not daemon_running():
        return 0
    try:
        with urllib.request.urlopen(URL, timeout=4) as response:
            return 0 if 200 <= response.status < 300 else 1
    except Exception as exc:  # HTTPError, URLError, timeouts: all mean unhealthy
        print(f"{URL}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
