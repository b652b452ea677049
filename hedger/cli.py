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
from typing import Any

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
    from hedger.check_report import (
        render_accounts,
        render_combined_exposure,
        render_config_summary,
        render_exposure,
    )

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
        checked = asyncio.run(check_online(cfg))
    except Exception as exc:
        return _refused("check-config --online", exc)
    print()
    print("online checks passed:")
    print("\n".join(f"  {line}" for line in checked.lines))
    print()
    print(redact_text(render_accounts(cfg, checked.accounts)))
    print()
    now_ms = int(time.time() * 1000)
    print(redact_text(render_combined_exposure(cfg, checked.accounts, now_ms)))
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
    """Talk to a running daemon's HTTP port (status and watch need no token; actions do).
    The daemon is found from --url, --config (its http host and port), $HEDGER_URL, or the
    default port."""
    import os

    from hedger.console.daemon_client import (
        DaemonClient,
        DaemonNotFoundError,
        DaemonRefusedError,
        DaemonUnreachableError,
        config_token,
        daemon_url,
    )

    where = f"hedger ctl {args.action}"
    cfg = None
    if args.config:
        cfg = _load(args.config)
        if cfg is None:
            return EXIT_BAD_CONFIG
    token = args.token or os.environ.get("HEDGER_TOKEN") or config_token(cfg)
    if args.token_file:
        try:
            with open(args.token_file, encoding="utf-8") as handle:
                token = handle.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            print(
                f"{where}: --token-file {args.token_file}: cannot read: {reason}",
                file=sys.stderr,
            )
            return EXIT_BAD_CONFIG
    try:
        url = daemon_url(args.url, cfg, os.environ)
    except DaemonNotFoundError as exc:
        print(f"{where}: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    client = DaemonClient(url, token, args.timeout)
    if args.action == "watch":
        from hedger.console.watch import watch

        if not args.interval > 0:
            print(f"{where}: --interval must be > 0, got {args.interval}", file=sys.stderr)
            return EXIT_BAD_CONFIG
        return watch(client, args.interval)
    try:
        if args.action == "status":
            from hedger.console.status_view import status_report

            print(status_report(client, args.json))
        elif args.action == "flatten":
            return _flatten(client, args, where)
        else:
            print(redact_text(client.post(f"/control/{args.action}").decode()))
        return EXIT_OK
    except (DaemonRefusedError, DaemonUnreachableError) as exc:
        print(f"{where}: {redact_text(str(exc))}", file=sys.stderr)
        return EXIT_FAILED


def _flatten(client: Any, args: argparse.Namespace, where: str) -> int:
    """Close the hedge positions: the daemon's name typed back (or --yes) confirms it."""
    name = str(client.status().get("name") or "")
    what = f"the {', '.join(args.factor)} hedge" if args.factor else "every factor's hedge"
    if args.dry_run or args.yes:
        confirm = name
    else:
        print(f"{where}: this closes {what} of daemon {name!r} at market prices and pauses it.")
        try:
            confirm = input(f"type the daemon's name ({name}) to go on: ").strip()
        except EOFError:
            confirm = ""
        if confirm != name:
            print(f"{where}: not confirmed; nothing sent", file=sys.stderr)
            return EXIT_FAILED
    body = {"confirm": confirm, "factors": args.factor or [], "dry_run": args.dry_run}
    print(redact_text(client.post("/control/flatten", body).decode()))
    return EXIT_OK


def cmd_journal(args: argparse.Namespace) -> int:
    """The journal as a readable history (read-only: a running daemon's journal is fine)."""
    import orjson

    from hedger.console.journal_read import JournalReadError, read_history
    from hedger.console.journal_view import render_json, render_text
    from hedger.console.times import parse_since

    path = args.path
    if args.config:
        cfg = _load(args.config)
        if cfg is None:
            return EXIT_BAD_CONFIG
        path = cfg.journal.path
    try:
        since_ms = None if args.since == "all" else parse_since(args.since)
        history = read_history(path, since_ms)
    except ValueError as exc:
        print(f"hedger journal: --since {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    except JournalReadError as exc:
        print(f"hedger journal: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    if args.json:
        print(orjson.dumps(render_json(history, args.kind)).decode())
    else:
        print(render_text(history, args.kind))
    return EXIT_OK


def cmd_paper_venue(args: argparse.Namespace) -> int:
    import asyncio

    import orjson

    from hedger.paper.serve import build_server, serve_forever

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
    ctl.add_argument("action", choices=["pause", "resume", "reload", "status", "watch", "flatten"])
    ctl.add_argument(
        "--factor", action="append", help="flatten: only this factor's hedge (repeatable)"
    )
    ctl.add_argument(
        "--dry-run", action="store_true", help="flatten: say what would be sent, send nothing"
    )
    ctl.add_argument("--yes", action="store_true", help="flatten: skip the typed confirmation")
    ctl.add_argument(
        "--url",
        help="the daemon's HTTP address (default: from --config, else $HEDGER_URL, "
        "else http://127.0.0.1:9184)",
    )
    ctl.add_argument("--config", "-c", help="the daemon's YAML config: its http host, port, token")
    ctl.add_argument("--json", action="store_true", help="status: the raw /status JSON")
    ctl.add_argument("--interval", type=float, default=1.0, help="watch: seconds between refreshes")
    ctl.add_argument("--token", help="bearer token (default: $HEDGER_TOKEN)")
    ctl.add_argument("--token-file", help="read the bearer token from this file")
    ctl.add_argument("--timeout", type=float, default=30.0)
    ctl.set_defaults(handler=cmd_ctl)

    journal = sub.add_parser(
        "journal", help="the journal as a readable history: why it traded, what happened"
    )
    where = journal.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", "-c", help="the daemon's YAML config (its journal.path)")
    where.add_argument("--path", help="the journal's SQLite file")
    journal.add_argument(
        "--since",
        default="1d",
        help="a span back from now (30m, 1h, 1d), a date or "
        "date-time (2026-03-05, 2026-03-05T03:00, local time), or 'all' (default: 1d)",
    )
    journal.add_argument(
        "--kind", default="all", choices=["all", "intents", "orders", "fills", "events"]
    )
    journal.add_argument("--json", action="store_true", help="the same entries as one JSON object")
    journal.set_defaults(handler=cmd_journal)

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

    from hedger.backtest.commands import register as register_backtest
    from hedger.backtest.fetch_candles import register as register_fetch_candles

    register_backtest(sub)
    register_fetch_candles(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
