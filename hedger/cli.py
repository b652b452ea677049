"""``hedger`` command line: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from hedger import __version__
from hedger.config import Config, ConfigError, load_config
from hedger.obs.logging import register_secrets

EXIT_OK = 0
EXIT_BAD_CONFIG = 2


def _secrets_of(cfg: Config) -> list[str]:
    values = [cfg.http.token]
    for venue in cfg.venues.values():
        values += [venue.api_key, venue.secret, venue.password]
    return [v.get_secret_value() for v in values if v is not None]


def cmd_check_config(args: argparse.Namespace) -> int:
    from hedger.report import render_config_summary, render_exposure

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_BAD_CONFIG
    register_secrets(_secrets_of(cfg))
    print(render_config_summary(cfg, args.config))
    print()
    print(render_exposure(cfg, wall_clock_ms=int(time.time() * 1000)))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hedger", description=__doc__)
    parser.add_argument("--version", action="version", version=f"hedger {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser(
        "check-config", help="validate a config file and print the declared portfolio's exposure"
    )
    check.add_argument("config", help="path to the YAML config")
    check.set_defaults(handler=cmd_check_config)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
