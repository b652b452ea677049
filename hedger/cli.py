"""``hedger`` command line: one entry point, one subcommand per job.

Whatever goes wrong reaches the operator as one line saying what and why, with secrets
masked, and an exit code: 2 when the configuration (or the command line) must change, 1
when the environment refused (a port, the journal, a venue). Never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from hedger import __version__
from hedger.config import Config, ConfigError, load_config
from hedger.obs.logging import configure_logging, redact_text, register_secrets

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_CONFIG = 2
PUBLIC_PAPER_KEYS = frozenset({"paper"})


def _secrets_of(cfg: Config) -> list[str]:
    values = [cfg.http.token]
    for venue in cfg.venues.values():
        values += [venue.api_key, venue.secret, venue.password]
    secrets = [v.get_secret_value() for v in values if v is not None]
    # The paper venue's default key and secret are public (README); scrubbing the word
    # "paper" from every log line would only hide the venue's name.
    return [s for s in secrets if s not in PUBLIC_PAPER_KEYS]


def _load(path: str) -> Config | None:
    """The validated config with its secrets registered for redaction; None (after
    printing every error) if it is invalid."""
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        print(redact_text(exc.render()), file=sys.stderr)
        return None
    register_secrets(_secrets_of(cfg))
    return cfg


def _refused(command: str, exc: Exception) -> int:
    """One line for a failure the daemon knows (a refused check), or any it does not."""
    from hedger.live.preflight import refusal

    refused = refusal(exc)
    print(f"hedger {command}: {redact_text(refused.message)}", file=sys.stderr)
    return refused.exit_code


def cmd_check_config(args: argparse.Namespace) -> int:
    from hedger.check_report import render_config_summary, render_exposure

    cfg = _load(args.config)
    if cfg is None:
        return EXIT_BAD_CONFIG
    print(redact_text(render_config_summary(cfg, args.config)))
    print()
    print(redact_text(render_exposure(cfg, wall_clock_ms=int(time.time() * 1000))))
    if not args.online:
        return EXIT_OK
    import asyncio

    from hedger.live.daemon import check_online

    # The embedded paper venue and ccxt log as they start: keep stdout for the report.
    configure_logging("warning", cfg.logging.format)
    try:
        passed = asyncio.run(check_online(cfg))
    except Exception as exc:
        return _refused("check-config --online", exc)
    print()
    print("online checks passed:")
    print("\n".join(f"  {line}" for line in passed))
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return EXIT_BAD_CONFIG
    import asyncio

    from hedger.live.daemon import run_forever

    configure_logging(cfg.logging.level, cfg.logging.format)
    try:
        return asyncio.run(run_forever(cfg, config_path=args.config, force_dry_run=args.dry_run))
    except Exception as exc:
        return _refused("run", exc)


def cmd_ctl(args: argparse.Namespace) -> int:
    """Talk to a running daemon's HTTP port (status needs no token; actions do)."""
    import os
    import urllib.error
    import urllib.request

    token = args.token or os.environ.get("HEDGER_TOKEN")
    if args.token_file:
        try:
            with open(args.token_file, encoding="utf-8") as handle:
                token = handle.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            print(
                f"hedger ctl {args.action}: --token-file {args.token_file}: cannot read: {reason}",
                file=sys.stderr,
            )
            return EXIT_BAD_CONFIG
    if args.action == "status":
        request = urllib.request.Request(f"{args.url}/status")
    else:
        request = urllib.request.Request(f"{args.url}/control/{args.action}", method="POST")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:
            print(response.read().decode())
            return EXIT_OK
    except urllib.error.HTTPError as exc:
        print(f"hedger ctl {args.action}: HTTP {exc.code}: {exc.read().decode()}", file=sys.stderr)
        return EXIT_FAILED
    except (urllib.error.URLError, OSError) as exc:
        print(f"hedger ctl {args.action}: cannot reach {args.url}: {exc}", file=sys.stderr)
        return EXIT_FAILED


def cmd_paper_venue(args: argparse.Namespace) -> int:
    import asyncio

    import orjson

    from hedger.paper.run import build_server, serve_forever

    configure_logging(args.log_level, "auto")
    try:
        faults = orjson.loads(args.faults) if args.faults else None
        server = build_server(
            host=args.host,
            port=args.port,
            scenario=args.scenario,
            seed=args.seed,
            ticks_per_second=args.ticks_per_second,
            speed=args.speed,
            history_minutes=int(args.history_hours * 60),
            accounts_file=args.accounts,
            faults=faults,
        )
    except (ValueError, OSError, orjson.JSONDecodeError) as exc:
        print(f"paper-venue: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    asyncio.run(serve_forever(server))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hedger", description=__doc__)
    parser.add_argument("--version", action="version", version=f"hedger {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser(
        "check-config", help="validate a config file and print the declared portfolio's exposure"
    )
    check.add_argument("config", help="path to the YAML config")
    check.add_argument(
        "--online",
        action="store_true",
        help="also run `hedger run`'s preflight (listeners, journal, venues, symbols, "
        "prices) without trading",
    )
    check.set_defaults(handler=cmd_check_config)

    run = sub.add_parser("run", help="run the hedging daemon")
    run.add_argument("--config", "-c", required=True, help="path to the YAML config")
    run.add_argument("--dry-run", action="store_true", help="journal and log, send nothing")
    run.set_defaults(handler=cmd_run)

    ctl = sub.add_parser("ctl", help="pause, resume, reload or inspect a running daemon")
    ctl.add_argument("action", choices=["pause", "resume", "reload", "status"])
    ctl.add_argument("--url", default="http://127.0.0.1:9184")
    ctl.add_argument("--token", help="bearer token (default: $HEDGER_TOKEN)")
    ctl.add_argument("--token-file", help="read the bearer token from this file")
    ctl.add_argument("--timeout", type=float, default=30.0)
    ctl.set_defaults(handler=cmd_ctl)

    venue = sub.add_parser(
        "paper-venue", help="serve the simulated market over Deribit's API v2 on loopback"
    )
    venue.add_argument("--host", default="127.0.0.1")
    venue.add_argument("--port", type=int, default=8765, help="0 = an ephemeral port")
    venue.add_argument("--scenario", default="stress-switching")
    venue.add_argument("--seed", type=int, default=7)
    venue.add_argument("--ticks-per-second", type=float, default=10.0)
    venue.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    venue.add_argument("--history-hours", type=float, default=168.0, help="simulated past")
    venue.add_argument("--accounts", help="YAML list of {name, api_key, secret, balances}")
    venue.add_argument("--faults", help='fault plan as JSON, e.g. {"error_share": 0.1}')
    venue.add_argument("--log-level", default="info")
    venue.set_defaults(handler=cmd_paper_venue)

    from hedger.backtest.cli import register as register_backtest

    register_backtest(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
