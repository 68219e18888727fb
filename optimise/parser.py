"""The ``optimise`` command line: every command, option, default and example in one place."""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from objectives.metrics import METRIC_NAMES
from objectives.registry import BackendSpec, CheckpointTool, SourceKey, names, specs
from objectives.tasks import DEFAULT_TASK, TASKS
from objectives.windows import WindowSpec
from optimise import argtypes

EXIT_USAGE = 2


def _description() -> str:
    return f"""\
Find, per trading symbol, the inference settings that make the {_titles()} forecasting
models most accurate, and hand the winners to trading code. One Optuna study per (model,
symbol, windows) in a SQL database (SQLite by default, PostgreSQL for several workers); TPE
searches the sampling settings against one-step forecasts of a validation window; the best few
are confirmed on fresh Monte-Carlo draws, the winner is scored once on a later test window and
exported to a JSON store (store/<model>/<SYMBOL>.json)."""


def _titles(models: Sequence[BackendSpec] | None = None) -> str:
    """``A, B and C``: the models' titles (every registered model's by default)."""
    titles = [s.title for s in (specs() if models is None else models)]
    return " and ".join(filter(None, [", ".join(titles[:-1]), *titles[-1:]]))


def _examples() -> dict[str, str]:
    """Each command's examples, naming the registered models in turn."""
    every = specs()
    m = [every[i % len(every)].name for i in range(3)]
    params = [
        " \\\n      ".join(
            [f"optimise forecast --model {s.name} --symbol AAPL --window validation --seed 0"]
            + [
                " ".join(f"--param {p}" for p in s.example_params[i : i + 3])
                for i in range(0, len(s.example_params), 3)
            ]
        )
        for s in every
        if s.example_params
    ]
    inits = [
        f"optimise checkpoint init --arch {s.name} --preset {preset} {seed}"
        f"checkpoints/{s.name}-{preset}"
        for s, (preset, seed) in zip(
            (s for s in every if s.checkpoints is not None),
            itertools.cycle([("tiny", ""), ("base", "--seed 1 ")]),
            strict=False,
        )
    ]
    lines = {
        "optimise": [
            f"optimise launch --model {m[0]} --checkpoint checkpoints/{m[0]}-tiny --symbols AAPL "
            "MSFT --n-trials 100",
            "optimise status",
            f"optimise forecast --model {m[0]} --symbol AAPL --from-store --last 5",
        ],
        "launch": [
            f"optimise launch --model {m[0]} --symbols AAPL MSFT --n-trials 200",
            f"optimise launch --model {m[1]} --checkpoint checkpoints/{m[1]}-tiny --all "
            "--n-trials 60",
            "OPTIMISE_STORAGE=postgresql+psycopg://optimise@db/optimise optimise launch --model "
            f"{m[2]} --all",
        ],
        "status": [
            "optimise status",
            "optimise status --storage sqlite:///other.db",
            f"optimise status --model {m[0]} --symbols AAPL MSFT",
            "optimise status --wide",
            "optimise status --json > status.json",
            "optimise status --watch 10",
            f"optimise status --top 5 --model {m[0]} --symbols AAPL",
        ],
        "export": [
            f"optimise export --model {m[0]} --symbols AAPL",
            f"optimise export --model {m[1]} --all --store /srv/trading/params",
            f"optimise export --model {m[0]} --symbols AAPL --val-window 60 --promote",
            f"optimise export --model {m[0]} --symbols AAPL --top 10 --format csv --out "
            "aapl-top10.csv",
        ],
        "forecast": [
            f"optimise forecast --model {m[0]} --symbol AAPL --from-store --last 5",
            *params,
        ],
        "dashboard": [
            "optimise dashboard",
            "optimise dashboard --read-only --host 0.0.0.0 --port 8081",
        ],
        "cache": [
            "optimise cache info",
            "optimise cache clear --cache-dir /srv/cache/optimise",
            f"optimise launch --model {m[0]} --symbols AAPL --cache-dir none",
        ],
        "init": inits,
    }
    return {key: "examples:\n" + "".join(f"  {line}\n" for line in value).rstrip("\n")
            for key, value in lines.items()}  # fmt: skip


class _Formatter(argparse.HelpFormatter):
    """Show each real default; wrap descriptions; keep the examples' lines as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        hidden = action.default is None or action.default is False
        if not hidden and action.default is not argparse.SUPPRESS and "default" not in text:
            text += " (default: %(default)s)"
        return text

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump) and exit code 2."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - argparse's signature
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_USAGE)


def _windows(parser: argparse.ArgumentParser) -> None:
    defaults = WindowSpec()
    group = parser.add_argument_group("windows (part of the study's name)")
    group.add_argument(
        "--val-window", type=int, default=defaults.val_window,
        help="validation targets: the bars just before the test window (per block)",
    )  # fmt: skip
    group.add_argument(
        "--val-blocks", type=int, default=defaults.val_blocks, metavar="K",
        help="rolling origin: K blocks of --val-window targets spread back through history, "
        "the last just before the test window (1: one contiguous window)",
    )  # fmt: skip
    group.add_argument(
        "--val-step", type=int, default=None, metavar="S",
        help="bars between block starts, at least --val-window (default: --val-window, "
        "adjacent blocks); only with --val-blocks 2 or more",
    )  # fmt: skip
    group.add_argument(
        "--test-window", type=int, default=defaults.test_window,
        help="test targets: the last bars, scored once per winner",
    )  # fmt: skip
    group.add_argument(
        "--min-context", type=int, default=defaults.min_context,
        help="bars every forecast must have as context",
    )  # fmt: skip
    group.add_argument(
        "--horizon", type=int, default=None,
        help="steps of each forecast path, every step scored (default: the task's; trading: "
        + ", ".join(f"{s.title} {s.default_horizon('trading')}" for s in specs()) + ")",
    )  # fmt: skip
    _task_args(parser)


def _task_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("forecast task (part of the study's identity)")
    group.add_argument(
        "--task", choices=sorted(TASKS), default=DEFAULT_TASK,
        help="trading: what the trading code forecasts with each model (the series it feeds "
        "it, its context and path length; all four price columns); levels: close levels, one "
        "step (studies made before tasks existed)",
    )  # fmt: skip
    group.add_argument(
        "--columns", metavar="COLS",
        help="price columns scored with one setting, e.g. close,high (default: trading "
        "close,high,low,open; levels close)",
    )  # fmt: skip
    group.add_argument(
        "--path-score", choices=["mean", "last"], default="mean",
        help="objective over a path: the mean over its steps, or its last step",
    )  # fmt: skip


def _model_args(parser: argparse.ArgumentParser, *, symbols: str) -> None:
    parser.add_argument("--model", required=True, choices=sorted(names()), help="model")
    if symbols == "many":
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--symbols", nargs="+", metavar="SYMBOL", help="tickers to run")
        group.add_argument("--all", action="store_true", help="every <SYMBOL>.csv in --data-dir")
    else:
        parser.add_argument("--symbol", required=True, help="ticker (<data-dir>/<SYMBOL>.csv)")
    parser.add_argument(
        "--data-dir",
        help="folder of <SYMBOL>.csv files (default: the folder the study recorded at launch, "
        "else trainingdata)",
    )
    parser.add_argument(
        "--checkpoint",
        help="model: a folder with config.json + model.safetensors, or a hub repo id (default: "
        "the study's, else the published "
        + ", ".join(f"{s.default_checkpoint} ({s.title})" for s in specs()) + ")",
    )  # fmt: skip
    extra: dict[str, SourceKey] = {}
    for s in specs():
        for key in s.extra_sources:
            extra.setdefault(key.name, key)  # a key two models read: the first one's help
    for key in extra.values():
        parser.add_argument(f"--{key.name.replace('_', '-')}", dest=key.name, help=key.help)
    parser.add_argument(
        "--device", default="cpu", type=argtypes.device, help="torch device: cpu, cuda, cuda:1, ..."
    )
    _cache_args(parser)


def _cache_args(parser: argparse.ArgumentParser) -> None:
    from objectives.disk_cache import CACHE_DIR_ENV, CACHE_SIZE_ENV, DEFAULT_MAX_BYTES

    group = parser.add_argument_group("stage-1 cache on disk (shared by studies and processes)")
    group.add_argument(
        "--cache-dir", metavar="DIR",
        help=f"folder of the models' forward passes, reused by every study, period and worker "
        f"on this machine; none turns it off (default: ${CACHE_DIR_ENV}, else "
        "$XDG_CACHE_HOME/kronos-toto-optimise or ~/.cache/kronos-toto-optimise)",
    )  # fmt: skip
    group.add_argument(
        "--cache-size", metavar="SIZE", type=argtypes.size,
        help=f"bound of the folder, e.g. 20G or 500M; the entries used longest ago are deleted "
        f"beyond it (default: ${CACHE_SIZE_ENV}, else {DEFAULT_MAX_BYTES >> 30}G)",
    )  # fmt: skip


def _storage_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage",
        help="database URL (default: $OPTIMISE_STORAGE, else sqlite:///studies.db); prefer the "
        "environment variable for URLs with a password",
    )


def _store_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", default=os.environ.get("HYPERPARAM_ROOT") or "store",
        help="folder of the JSON store ($HYPERPARAM_ROOT, the trading code's root, when set)",
    )  # fmt: skip


def _publish_args(parser: argparse.ArgumentParser, *, promote: bool) -> None:
    group = parser.add_argument_group("what an export may replace")
    group.add_argument(
        "--replace-foreign", action="store_true",
        help="replace records this project did not write (the trading code's own) in "
        "<model>/ and best/, keeping a copy in .replaced/ beside each",
    )  # fmt: skip
    if promote:
        group.add_argument(
            "--promote", action="store_true",
            help="make the named study's record the live <model>/<SYMBOL>.json even where the "
            "live one is of other windows, task or metric (an experiment is otherwise written "
            "to <model>/studies/ only)",
        )  # fmt: skip


def _finalise_args(parser: argparse.ArgumentParser) -> None:
    from studies.confirm import DEFAULT_CANDIDATES, DEFAULT_DRAWS

    group = parser.add_argument_group("finalisation")
    group.add_argument(
        "--metric", default=None, choices=METRIC_NAMES,
        help="validation metric the study optimises (part of the study's identity; default: "
        "the task's, trading return_mae averaged over the columns, levels price_mae)",
    )  # fmt: skip
    group.add_argument(
        "--seed", type=argtypes.seed, default=0, action=_Given,
        help="study seed (a resumed study keeps its own, with a warning when it differs)",
    )  # fmt: skip
    group.add_argument(
        "--confirm-candidates", type=int, default=DEFAULT_CANDIDATES,
        help="best distinct configurations re-scored on fresh seeds before export",
    )  # fmt: skip
    group.add_argument(
        "--confirm-draws", type=int, default=DEFAULT_DRAWS,
        help="fresh seed sets per candidate; the winner is the lowest mean",
    )  # fmt: skip
    group.add_argument(
        "--no-default-comparison", action="store_true",
        help="do not score the trading code's default settings beside the winner (the "
        "record's vs_default and the defaults' forecasts): two evaluations at the defaults' "
        "samples, hours for a 7-step path of a base-size sampling model on a CPU",
    )  # fmt: skip
    group.add_argument(
        "--select", choices=["best", "default-if-insignificant"], default="best",
        help="what to export: the confirmed winner (best), or the trading code's default "
        "settings when the winner's validation edge over them is not significant (paired "
        "DM test, p < 0.05), said in metadata.selection; not part of the study's identity",
    )  # fmt: skip


class _Given(argparse.Action):
    """Store the value and record that the option was given (``args.<dest>_given``), so that a
    default can be told from a value asked for (a resumed study's ``--seed``)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        setattr(namespace, f"{self.dest}_given", True)


def _leaderboard_args(parser: argparse.ArgumentParser, *, instead_of: str) -> None:
    from optimise.leaderboard import FORMATS

    group = parser.add_argument_group(
        "leaderboard",
        f"--top N prints each study's N best distinct settings instead of {instead_of}. It only "
        "reads the database: nothing is confirmed, test-scored or written to the store, "
        "whether or not the study is finalised. Settings the last finalisation confirmed come "
        "first, by their confirmed mean (rank 1 is the exported winner); the rest follow by "
        "their first-pass value (column ranked_by: confirmed or first_pass); the study's "
        "direction is respected (direction_accuracy is maximised). Each row has every metric "
        "the trial recorded, the live latency where known (the winner), the trial number and "
        "the config in the trading code's keys.",
    )
    group.add_argument("--top", type=argtypes.top, metavar="N", help="settings per study")
    group.add_argument(
        "--format", choices=FORMATS, help="with --top: aligned text, CSV or JSON (default: table)"
    )
    group.add_argument("--out", metavar="FILE", help="with --top: write to FILE, not stdout")


def build_parser() -> argparse.ArgumentParser:
    examples = _examples()
    parser = Parser(prog="optimise", description=_description(), epilog=examples["optimise"])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    launch = commands.add_parser(
        "launch", help="run or resume studies, then confirm, test-score and export",
        description="Run or resume one study per symbol until it has --n-trials finished "
        "trials (re-running the same command resumes; several workers may run it together), "
        "then confirm the best configurations, score the winner once on the test window and "
        "export it. Everything is checked before a study starts.",
        epilog=examples["launch"],
    )  # fmt: skip
    _model_args(launch, symbols="many")
    _storage_arg(launch)
    _store_arg(launch)
    _publish_args(launch, promote=False)
    launch.add_argument(
        "--n-trials", type=int, default=100, help="the study's total of finished trials"
    )
    launch.add_argument(
        "--timeout", type=float, help="stop this run after SECONDS per study (resumable)"
    )
    _windows(launch)
    _finalise_args(launch)
    workers = launch.add_argument_group("workers")
    workers.add_argument("--heartbeat", type=int, default=10, help="heartbeat interval, seconds")
    workers.add_argument(
        "--grace", type=int, default=60,
        help="seconds of silence before another host's trial or finaliser counts as dead",
    )  # fmt: skip
    workers.add_argument("--no-progress", action="store_true", help="no progress bar")
    launch.add_argument(
        "--prune",
        choices=["auto", "on", "off"],
        default="auto",
        help="report the running MAE every 5 validation windows and stop trials worse than the "
        f"median (auto: {_titles([s for s in specs() if s.prune_by_default]) or 'none'} only)",
    )
    launch.add_argument(
        "--no-warm-start",
        action="store_true",
        help="do not queue the winners of this model's studies on other symbols first",
    )
    launch.add_argument(
        "--no-refresh",
        action="store_true",
        help="refuse data with bars appended since the study began, as for edited data, "
        "instead of starting the next period's study",
    )

    status = commands.add_parser(
        "status", help="one line per study",
        description="One line per study in the database, in 100 columns: per objective (its "
        "unit and direction named above the table) the finished trials (+N running), the best "
        "first-pass and the confirmed (± standard error) validation value, the naive "
        "forecast's, the test value scored once and its naive value, the trials that made "
        "non-positive price forecasts (<=0) and whether the study's record is live; then, on "
        "stderr and each once, a warning per winner with impossible forecasts, per winner that "
        "loses to the naive forecast, and per winner whose test edge over naive is not "
        "significant at 5%. --wide adds trials by state, the task, the test's price skill and "
        "paired-test (DM-HLN) p-values, the export path and every test metric; --json prints "
        "every field for scripts.",
        epilog=examples["status"],
    )  # fmt: skip
    _storage_arg(status)
    status.add_argument(
        "--store",
        help="the JSON store whose live records the live column shows (default: the store each "
        "study was exported to)",
    )
    _leaderboard_args(status, instead_of="the summary")
    status.add_argument("--model", choices=sorted(names()), help="only this model's studies")
    status.add_argument(
        "--symbols", nargs="+", metavar="SYMBOL", help="only these symbols' studies"
    )
    view = status.add_argument_group("view (not with --top)")
    shape = view.add_mutually_exclusive_group()
    shape.add_argument(
        "--wide", action="store_true",
        help="every column (trials by state, task, p-values, export path) and every test metric",
    )  # fmt: skip
    shape.add_argument(
        "--json", action="store_true", help="a JSON list, one object per study, every field"
    )
    view.add_argument(
        "--watch", type=argtypes.seconds, metavar="N",
        help="print the table again every N seconds until Ctrl-C (a running sweep)",
    )  # fmt: skip

    export = commands.add_parser(
        "export", help="finalise if needed and (re)write the store",
        description="Make sure each study's current best configurations are confirmed and the "
        "winner test-scored (exactly once, whoever asks), then write the store. Takes the "
        "checkpoint and data folder the study recorded unless given; never creates a study.",
        epilog=examples["export"],
    )  # fmt: skip
    _model_args(export, symbols="many")
    _storage_arg(export)
    _store_arg(export)
    _publish_args(export, promote=True)
    _windows(export)
    _finalise_args(export)
    export.add_argument(
        "--force", action="store_true",
        help="publish again even where the study's record is current (the same round and "
        "trials, the store's files as they would be written); without it such a study is "
        "named in one line and nothing is loaded or rewritten",
    )  # fmt: skip
    _leaderboard_args(export, instead_of="exporting (the named studies: --symbols with the "
                      "windows and task flags, or --all)")  # fmt: skip

    forecast = commands.add_parser(
        "forecast", help="one-step forecasts with chosen or exported settings",
        description="One-step close forecasts for the last K bars and the next, unseen one (or "
        "for a study's validation or test window), with the exported winner or settings given "
        "as --param NAME=VALUE. With --window validation and --seed <study seed> it reproduces "
        "a trial's stored val_forecasts bit for bit.",
        epilog=examples["forecast"],
    )  # fmt: skip
    _model_args(forecast, symbols="one")
    source = forecast.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-store", action="store_true", help="use the exported winner")
    source.add_argument(
        "--param", action="append", metavar="NAME=VALUE",
        help="one setting (repeat), e.g. num_samples=1024, aggregate=trimmed_mean_0.10",
    )  # fmt: skip
    _store_arg(forecast)
    _storage_arg(forecast)
    forecast.add_argument("--last", type=int, default=5, help="also forecast the last K bars")
    forecast.add_argument(
        "--window", choices=["validation", "test"],
        help="forecast a study's validation or test targets instead of the last K bars",
    )  # fmt: skip
    _windows(forecast)
    forecast.add_argument("--seed", type=argtypes.seed, default=0, help="seed set: the study seed")
    forecast.add_argument("--json", action="store_true", help="print JSON rows")

    dashboard = commands.add_parser(
        "dashboard", help="optuna-dashboard on the same database",
        description="Serve optuna-dashboard on the studies' database. It binds 127.0.0.1 unless "
        "told otherwise; --read-only refuses its write routes (delete study, tell, notes).",
        epilog=examples["dashboard"],
    )  # fmt: skip
    _storage_arg(dashboard)
    dashboard.add_argument("--host", default="127.0.0.1", help="address to bind")
    dashboard.add_argument("--port", type=int, default=8080, help="TCP port")
    dashboard.add_argument(
        "--artifacts",
        help="folder of the winners' pictures (default: the <store>/.artifacts the studies "
        "recorded)",
    )
    dashboard.add_argument(
        "--read-only", action="store_true",
        help="refuse the dashboard's write routes (delete study, tell, notes, artifacts)",
    )  # fmt: skip

    cache = commands.add_parser(
        "cache", help="the stage-1 cache on disk: info, clear",
        description="The folder where the models' forward passes are kept for every study, "
        "period and worker on this machine (--cache-dir on launch, export and forecast).",
        epilog=examples["cache"],
    )  # fmt: skip
    cache_commands = cache.add_subparsers(dest="cache_command", required=True, parser_class=Parser)
    for name, text in (
        ("info", "The folder, its entries and bytes, and the bound."),
        ("clear", "Delete every entry."),
    ):
        _cache_args(cache_commands.add_parser(name, help=text.lower(), description=text))

    checkpoint = commands.add_parser(
        "checkpoint", help="checkpoint tools",
        description="Checkpoint tools.", epilog=examples["init"],
    )  # fmt: skip
    checkpoint_commands = checkpoint.add_subparsers(
        dest="checkpoint_command", required=True, parser_class=Parser
    )
    tools: dict[str, tuple[str, CheckpointTool]] = {
        s.name: (s.title, s.checkpoints) for s in specs() if s.checkpoints is not None
    }
    layouts: dict[str, list[str]] = {}
    for title, tool in tools.values():
        layouts.setdefault(tool.layout, []).append(title)
    init = checkpoint_commands.add_parser(
        "init", help="write a randomly initialised checkpoint",
        description="Write a randomly initialised checkpoint in the published layout ("
        + "; ".join(f"{', '.join(titles)}: {layout}" for layout, titles in layouts.items())
        + "). Its "
        "forecasts are meaningless; its code paths and costs are real (tests, quick start, "
        "benchmarks).",
        epilog=examples["init"],
    )  # fmt: skip
    init.add_argument("--arch", required=True, choices=sorted(tools), help="architecture")
    init.add_argument(
        "--preset", default="tiny",
        help="tiny (seconds on a CPU) or base (the published base shapes)",
    )  # fmt: skip
    init.add_argument("--seed", type=argtypes.seed, default=0, help="weights' random seed")
    init.add_argument("--force", action="store_true", help="replace an existing OUT")
    init.add_argument("out", metavar="OUT", help="folder to write")
    return parser
