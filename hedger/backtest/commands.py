"""``hedger backtest`` and ``hedger record``: argument parsing and the shell around the study.

Exit codes: 0 done; 2 bad config or arguments (the message names the bad path or value).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import zlib
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from hedger.backtest.derman_kamal import derman_kamal, extrapolate
from hedger.backtest.layout import LayoutError
from hedger.backtest.presets import OPTIONS_BOOK, OPTIONS_BOOK_SCENARIO, options_book_config
from hedger.backtest.recording_format import RecordingError
from hedger.backtest.sweep import SweepError, combinations, parse_axis
from hedger.config import Config, ConfigError, load_config
from hedger.config.durations import parse_duration

EXIT_OK = 0
EXIT_BAD_ARGUMENTS = 2
DERMAN_KAMAL = "derman-kamal"

if TYPE_CHECKING:
    from hedger.backtest.study import RunResult

    PlotWriter = Callable[[Sequence[RunResult], RunResult, Sequence[str], Path], dict[str, str]]


class UsageError(ValueError):
    """Bad arguments, said so that the operator can fix them."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bt = sub.add_parser(
        "backtest",
        help="run the hedging core on a simulated or recorded market",
        description="Backtest the live core (betas, exposure, policy, guards) bar by bar on a "
        "simulated clock; --sweep PATH=v1,v2 runs the cartesian product of config values "
        "(hedge.band.X is factors.0.band.X).",
    )
    bt.add_argument("--config", "-c", help="YAML config (same schema as `hedger run`)")
    bt.add_argument(
        "--scenario",
        default="calm",
        help=f"simulator scenario (calm, stress, stress-switching, trend, NAME-1f), "
        f"{OPTIONS_BOOK} (built-in short straddles), or {DERMAN_KAMAL} (theory check)",
    )
    bt.add_argument("--seed", type=int, default=7)
    bt.add_argument("--days", type=float, default=7.0, help="simulated days after warm-up")
    bt.add_argument("--bar", help="backtest bar, e.g. 1m (default: beta.bar)")
    bt.add_argument("--warmup", default=None, help="bars that only feed the betas (sim: 1d)")
    bt.add_argument("--sweep", action="append", default=[], metavar="PATH=V1,V2")
    bt.add_argument("--replay", metavar="FILE", help="replay a `hedger record` file instead")
    bt.add_argument(
        "--candles",
        metavar="DIR",
        help="judge every estimator on real candles, one file per asset (CSV, Parquet)",
    )
    bt.add_argument("--asset-map", metavar="NAME=ASSET,...", help="--candles: name files' assets")
    bt.add_argument("--fee-bps", type=float, default=5.0, help="--candles: fee per unit traded")
    bt.add_argument("--half-spread-bps", type=float, default=1.0, help="--candles: half-spread")
    bt.add_argument("--out", metavar="DIR", help="write CSV, JSON and plots here")
    bt.add_argument("--no-plots", action="store_true", help="with --out: CSV and JSON only")
    bt.add_argument("--json", action="store_true", help="one JSON object on stdout, no progress")
    bt.add_argument(
        "--format",
        choices=["table", "csv", "json"],
        default="table",
        help="stdout: a table fitted to the terminal (in full to a file), CSV rows, or the "
        "JSON document (--json)",
    )
    bt.add_argument("--chosen", choices=["first", "best"], default="best", help="run to plot")
    bt.add_argument("--no-oracle", action="store_true", help="skip the true-beta twin runs")
    bt.add_argument("--paths", type=int, default=20_000, help=f"{DERMAN_KAMAL}: MC paths")
    bt.set_defaults(handler=cmd_backtest)

    rec = sub.add_parser(
        "record", help="record a Deribit-dialect ticker feed to gzip JSON lines for --replay"
    )
    rec.add_argument(
        "--url", required=True, help="websocket URL, e.g. wss://www.deribit.com/ws/api/v2"
    )
    rec.add_argument("--out", required=True, metavar="FILE", help="e.g. var/ticks.jsonl.gz")
    rec.add_argument("--instruments", default="", help="comma-separated (default: all active)")
    rec.add_argument("--seconds", type=float, default=None, help="stop after (default: Ctrl-C)")
    rec.add_argument("--interval", default="100ms", choices=["raw", "100ms", "agg2"])
    rec.set_defaults(handler=cmd_record)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hedger")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def _fail(message: str) -> int:
    print(f"hedger: {message}", file=sys.stderr)
    return EXIT_BAD_ARGUMENTS


def cmd_backtest(args: argparse.Namespace) -> int:
    try:
        if args.candles:
            from hedger.backtest.candle_report import backtest_candles

            return backtest_candles(args)
        if args.scenario == DERMAN_KAMAL:
            return _derman_kamal(args)
        if args.scenario == OPTIONS_BOOK and not (args.config or args.sweep or args.replay):
            from hedger.backtest.option_study import backtest_option_modes

            return backtest_option_modes(args)
        return _backtest(args)
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    except (SweepError, LayoutError, UsageError) as exc:
        return _fail(str(exc))


def _derman_kamal(args: argparse.Namespace) -> int:
    if args.paths < 100:
        raise UsageError(f"--paths must be at least 100, got {args.paths}")
    rows = derman_kamal(paths=args.paths, seed=args.seed)
    fit = extrapolate(rows)
    document = {
        "scenario": DERMAN_KAMAL,
        "paths": args.paths,
        "seed": args.seed,
        "rows": [r.as_dict() for r in rows],
        "extrapolation": fit.as_dict(),
    }
    from hedger.backtest.report import emit_derman_kamal, write_json

    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(document, out / "derman_kamal.json")
    emit_derman_kamal(rows, fit, document, _format(args), Console())
    return EXIT_OK


def _format(args: argparse.Namespace) -> str:
    return "json" if args.json else str(args.format)


def _duration(text: str, flag: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _config(args: argparse.Namespace) -> Config:
    if args.config:
        return load_config(args.config)
    if args.scenario == OPTIONS_BOOK and not args.replay:
        return options_book_config(args.seed)
    raise UsageError(f"--config is required (unless --scenario {OPTIONS_BOOK} or {DERMAN_KAMAL})")


def _plot_writer(args: argparse.Namespace) -> PlotWriter | None:
    """The plot writer, checked before any work: plots need the ``plots`` extra
    (matplotlib, plotly), which the container image leaves out."""
    if not args.out or args.no_plots:
        return None
    try:
        from hedger.backtest.plots import write_plots
    except ImportError as exc:
        raise UsageError(
            f"--out writes plots, which need the 'plots' extra ({exc.name} is missing): "
            "pip install 'hedger[plots]', or add --no-plots for CSV and JSON only"
        ) from None
    return write_plots


def _backtest(args: argparse.Namespace) -> int:
    from hedger.backtest.replay import replay_file
    from hedger.backtest.report import emit, write_csv, write_json
    from hedger.backtest.sim_tape import simulate_tape
    from hedger.backtest.study import check_bars, chosen_run, run_study

    write_plots = _plot_writer(args)
    cfg = _config(args)
    combos = combinations(cfg, [parse_axis(spec) for spec in args.sweep])
    bar_s = _duration(args.bar, "--bar") if args.bar else cfg.beta.bar
    if not bar_s > 0:
        raise UsageError(f"--bar must be > 0, got {args.bar}")
    bar_ms = max(1, round(bar_s * 1000))
    if args.days <= 0:
        raise UsageError(f"--days must be > 0, got {args.days}")
    default_warmup = "0s" if args.replay else "1d"
    warmup_bars = round(_duration(args.warmup or default_warmup, "--warmup") * 1000 / bar_ms)
    if args.replay:
        try:
            tape = replay_file(cfg, args.replay, bar_ms)
        except OSError as exc:
            raise UsageError(f"--replay {args.replay}: {exc.strerror or exc}") from None
        except zlib.error as exc:
            raise UsageError(f"--replay {args.replay}: not a gzip recording ({exc})") from None
        except RecordingError as exc:
            raise UsageError(f"--replay {args.replay}: {exc}") from None
    else:
        name = OPTIONS_BOOK_SCENARIO if args.scenario == OPTIONS_BOOK else args.scenario
        bars = warmup_bars + max(1, round(args.days * 86_400_000 / bar_ms))
        try:
            tape = simulate_tape(cfg, name, args.seed, bars, bar_ms)
        except ValueError as exc:  # unknown scenario names come from the simulator
            raise UsageError(str(exc)) from None
    check_bars(tape, combos)
    measured = len(tape) - min(warmup_bars, len(tape) - 1)
    if measured < 3:
        raise UsageError(
            f"{tape.source}: only {measured} bar(s) after warm-up; shorten --bar or --warmup"
            f"{'' if args.replay else ', or lengthen --days'}"
        )
    runs_per_combo = 1 if args.no_oracle or tape.true_loadings is None else 2
    total = runs_per_combo * len(combos)
    progress = _progress(_format(args) != "table" or total < 2)
    with progress if progress is not None else nullcontext():
        task = None if progress is None else progress.add_task("runs", total=total)

        def advance(done: int) -> None:
            if progress is not None and task is not None:
                progress.advance(task, done)

        results = run_study(tape, combos, warmup_bars, not args.no_oracle, advance)
    document: dict[str, Any] = {
        "source": tape.source,
        "bars": measured,
        "bar_seconds": bar_ms / 1000.0,
        "warmup_bars": warmup_bars,
        "market_updates": tape.updates,
        "factors": list(cfg.factor_assets),
        "runs": [r.as_dict() for r in results],
    }
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_csv(results, out / "results.csv")
        chosen = chosen_run(results, args.chosen)
        document["chosen"] = chosen.combination.label
        document["files"] = {
            "csv": str(out / "results.csv"),
            "json": str(out / "results.json"),
        }
        if write_plots is not None:
            document["files"] |= write_plots(results, chosen, cfg.factor_assets, out)
        write_json(document, out / "results.json")
    emit(results, document, _format(args), f"hedger backtest: {tape.source}", Console())
    return EXIT_OK


def _progress(disabled: bool) -> Progress | None:
    if disabled:
        return None
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )


def cmd_record(args: argparse.Namespace) -> int:
    import aiohttp

    from hedger.backtest.record import RecordProgress, TickerRecorder

    if args.seconds is not None and args.seconds <= 0:
        return _fail(f"--seconds must be > 0, got {args.seconds}")
    names = [n.strip() for n in args.instruments.split(",") if n.strip()]
    recorder = TickerRecorder(args.url, args.out, names, interval=args.interval)
    try:
        with RecordProgress(Console(stderr=True), args.out, args.seconds) as progress:
            stats = asyncio.run(recorder.run(args.seconds, on_progress=progress.update))
    except KeyboardInterrupt:
        return EXIT_OK
    except (OSError, ValueError, aiohttp.ClientError) as exc:
        return _fail(f"record {args.url}: {type(exc).__name__}: {exc}")
    print(
        f"recorded {stats.frames} frames ({stats.tickers} tickers, {stats.channels} channels) "
        f"to {args.out}",
        file=sys.stderr,
    )
    return EXIT_OK
