"""Which validation protocol and selection rule generalise: walk-forward over periods.

For each (preset, model, symbol, period, protocol): the symbol's CSV is cut to end at the
period's end (period ``p`` drops the last ``p * --period-step`` bars) into a temporary data
folder, one ``optimise launch`` study runs on it (``--select best``; the search never reads
the last ``--test-window`` bars, its test window), and the exported winner's test loss (the
task's objective) is compared with the trading code's default, the grid's best (the grid
setting of ``trading-grids.json`` with the lowest confirmed validation loss under the same
protocol) and naive, all on that test window with the study seed. ``default-if-insignificant``
is that rule (:func:`studies.selection.choose`) applied to the same record: the default's test
loss where it exports the default. Regret is relative to the best grid setting in hindsight
(the lowest test loss of any grid setting).

    python bench/bench_generalisation.py --models toto --presets tiny --n-trials 20 \\
        --out docs/bench-generalisation.json
    python bench/bench_generalisation.py --table docs/bench-generalisation.json

Protocols are written as study tags: ``v20`` (20 contiguous bars), ``v20x3s116`` (3 blocks of
20, a block start every 116 bars: 252 bars from the first target to the last). Rows are merged
into ``--out`` as each finishes (a row replaces one of its key), so a run can be resumed or
extended with other flags.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_search import grid_configs  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SYMBOLS = {"AAPL": ROOT / "trainingdata", "GOOG": ROOT / "trainingdata",
           "IBM": ROOT / "trainingdata", "MSFT": ROOT / "trainingdata",
           "BTCUSD": SHARED, "ETHUSD": SHARED}  # fmt: skip
PROTOCOLS = "v20,v60,v120,v20x3s116"
SELECT_RULES = ("best", "default-if-insignificant")


@dataclass(frozen=True)
class Protocol:
    """A validation protocol as its study tag: ``v60`` or ``v20x3s116``."""

    window: int
    blocks: int = 1
    step: int | None = None

    @classmethod
    def parse(cls, tag: str) -> Protocol:
        match = re.fullmatch(r"v(\d+)(?:x(\d+)s(\d+))?", tag)
        if not match:
            raise ValueError(f"protocol {tag!r}: write v<window> or v<window>x<blocks>s<step>")
        window, blocks, step = match.groups()
        if blocks is None:
            return cls(int(window))
        return cls(int(window), int(blocks), int(step))

    @property
    def tag(self) -> str:
        if self.blocks == 1:
            return f"v{self.window}"
        return f"v{self.window}x{self.blocks}s{self.step}"

    def flags(self) -> list[str]:
        """The ``optimise launch`` flags of this protocol."""
        out = ["--val-window", str(self.window)]
        if self.blocks > 1:
            out += ["--val-blocks", str(self.blocks), "--val-step", str(self.step)]
        return out


# ----------------------------------------------------------------------------- pure parts


def truncate_csv(source: Path, target: Path, drop: int) -> str:
    """Write ``source`` less its last ``drop`` bars to ``target``; the last timestamp kept.
    The header is kept and the rows are copied byte for byte, in order."""
    lines = source.read_text().splitlines(keepends=True)
    header, rows = lines[0], [line for line in lines[1:] if line.strip()]
    if drop < 0 or drop >= len(rows):
        raise ValueError(f"{source.name}: cannot drop {drop} of {len(rows)} bars")
    kept = rows[: len(rows) - drop]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(header + "".join(kept))
    return kept[-1].split(",", 1)[0]


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test p-value of ``wins`` against ``losses`` (ties left out)."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def relative_regret(loss: float, best: float) -> float:
    """``(loss - best) / best``: how much worse than the best in hindsight (0 when equal)."""
    if best == 0:
        return 0.0 if loss == best else math.inf
    return (loss - best) / best


def compare(ours: list[float], theirs: list[float]) -> dict[str, float]:
    """Wins (strictly lower loss), losses, ties and the sign test of ``ours`` vs ``theirs``."""
    wins = sum(a < b for a, b in zip(ours, theirs, strict=True))
    losses = sum(a > b for a, b in zip(ours, theirs, strict=True))
    return {"wins": wins, "losses": losses, "ties": len(ours) - wins - losses,
            "p": sign_test(wins, losses)}  # fmt: skip


# ----------------------------------------------------------------------------- running


def launch(work: Path, model: str, checkpoint: Path, data: Path, symbol: str, proto: Protocol,
           args: argparse.Namespace, tag: str) -> tuple[dict, float]:  # fmt: skip
    """One ``optimise launch`` study; its exported record (as JSON) and wall seconds."""
    store = work / f"store-{tag}-{proto.tag}"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(args.threads))
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "optimise", "launch", "--model", model, "--checkpoint",
         str(checkpoint), "--symbols", symbol, "--data-dir", str(data), "--n-trials",
         str(args.n_trials), "--storage", f"sqlite:///{work / f'{tag}.db'}", "--store",
         str(store), "--no-progress", "--seed", str(args.seed), "--device", args.device,
         "--cache-dir", str(work / "cache"), "--select", "best", "--test-window",
         str(args.test_window), *proto.flags()],
        cwd=ROOT, check=True, capture_output=True, env=env,
    )  # fmt: skip
    wall = time.perf_counter() - started
    return json.loads((store / model / f"{symbol}.json").read_text()), wall


def score_test(ctx, configs: list[dict]) -> list[float]:
    """Each config's objective on the test window under the study seed."""
    from objectives.evaluator import evaluate

    space = ctx.backend.space
    return [
        evaluate(
            ctx.test_evaluator, ctx.bars, ctx.windows.test, space.from_config(c), ctx.seed
        ).metrics.value(ctx.metric)  # fmt: skip
        for c in configs
    ]


def grid_choice(ctx, configs: list[dict], confirm: int = 5, draws: int = 8) -> int:
    """Index of the grid setting a grid search picks on ``ctx``'s validation: the ``confirm``
    best first passes (study seed) re-scored on ``draws`` fresh seed sets, the lowest mean;
    ``confirm`` 1: the best first pass."""
    from objectives.evaluator import evaluate
    from studies.confirm import confirmation_seeds

    space, targets = ctx.backend.space, ctx.windows.validation

    def loss(config: dict, seed: int) -> float:
        scored = evaluate(ctx.search_evaluator, ctx.bars, targets, space.from_config(config),
                          seed)  # fmt: skip
        return scored.metrics.value(ctx.metric)

    first = sorted(range(len(configs)), key=lambda i: loss(configs[i], ctx.seed))[:confirm]
    if len(first) == 1:
        return first[0]
    seeds = confirmation_seeds(ctx.seed, draws)
    return min(first, key=lambda i: float(np.mean([loss(configs[i], s) for s in seeds])))


def _key(row: dict) -> tuple:
    return row["preset"], row["model"], row["symbol"], row["period"], row["protocol"]


def bench(args: argparse.Namespace) -> None:
    """Run the matrix, period-major (so a stopped run covers every protocol evenly)."""
    from objectives.bars import load_bars
    from objectives.evaluator import load_backend
    from objectives.tasks import TASKS, TRADING, resolve_horizon
    from objectives.windows import WindowSpec
    from storage.record import Record
    from studies.context import StudyContext
    from studies.selection import choose

    out_path = Path(args.out)
    rows: list[dict] = json.loads(out_path.read_text()) if out_path.exists() else []
    grids = json.loads((SHARED / "trading-grids.json").read_text())
    protocols = [Protocol.parse(t) for t in args.protocols.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-generalisation-"))
    metric = TASKS["trading"].metric
    for preset in args.presets.split(","):
        for model in args.models.split(","):
            checkpoint = work / f"{model}-{preset}"
            init = ["checkpoint", "init", "--arch", model, "--preset", preset, str(checkpoint)]
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            subprocess.run([sys.executable, "-m", "optimise", *init], cwd=ROOT, check=True,
                           env=env, capture_output=True)  # fmt: skip
            backend = load_backend(model, checkpoint=str(checkpoint), device=args.device)
            horizon = resolve_horizon(TRADING, model, None)
            configs = grid_configs(model, grids)
            default = backend.space.trading_default().to_config()
            for period in range(args.periods):
                for symbol in args.symbols.split(","):
                    tag = f"{preset}-{model}-p{period}"
                    data = work / f"data-p{period}"
                    source = SYMBOLS[symbol] / f"{symbol}.csv"
                    drop = period * args.period_step
                    end = truncate_csv(source, data / f"{symbol}.csv", drop)
                    bars = load_bars(data, symbol)

                    def context(proto: Protocol, bars=bars, backend=backend,
                                horizon=horizon) -> StudyContext:  # fmt: skip
                        spec = WindowSpec(val_window=proto.window, test_window=args.test_window,
                                          horizon=horizon, val_blocks=proto.blocks,
                                          val_step=proto.step)  # fmt: skip
                        return StudyContext(backend, bars, spec, metric, args.seed, task=TRADING)

                    test_ctx = context(protocols[0])
                    grid_test = score_test(test_ctx, configs)
                    default_test = score_test(test_ctx, [default])[0]
                    for proto in protocols:
                        cell = (preset, model, symbol, period, proto.tag)
                        if args.skip_done and any(_key(r) == cell for r in rows):
                            continue
                        record, wall = launch(work, model, checkpoint, data, symbol, proto, args,
                                              tag)  # fmt: skip
                        parsed = Record.from_json(json.dumps(record).encode(), "record")
                        winner_test = record["test"]["metrics"][metric]
                        naive_test = record["test"]["naive_metrics"][metric]
                        chosen, _, p_value = choose(parsed)
                        settings = {k: v for k, v in record["config"].items() if k != "name"}
                        rescored = score_test(test_ctx, [settings])[0]
                        pick = grid_choice(context(proto), configs, args.grid_confirm,
                                           args.grid_draws)  # fmt: skip
                        row = {
                            "preset": preset, "model": model, "symbol": symbol,
                            "period": period, "period_end": end, "protocol": proto.tag,
                            "study": record["metadata"]["study_name"],
                            "n_trials": args.n_trials, "metric": metric,
                            "winner": settings,
                            "test": {
                                "best": winner_test,
                                "default-if-insignificant": (
                                    default_test if chosen == "default" else winner_test),
                                "default": default_test, "grid_best": grid_test[pick],
                                "naive": naive_test, "grid_hindsight": min(grid_test),
                            },
                            "winner_test_rescored": rescored,
                            "dii_chosen": chosen, "dii_p_value": p_value,
                            "grid_pick": configs[pick], "grid_confirm": args.grid_confirm,
                            "grid_draws": args.grid_draws, "wall_s": round(wall, 1),
                            "threads": args.threads, "device": args.device,
                        }  # fmt: skip
                        rows = [r for r in rows if _key(r) != _key(row)] + [row]
                        rows.sort(key=lambda r: (r["preset"], r["model"], r["period"],
                                                 r["symbol"], r["protocol"]))  # fmt: skip
                        out_path.write_text(json.dumps(rows, indent=1) + "\n")
                        print(json.dumps(row), flush=True)


# ----------------------------------------------------------------------------- the table


def summary(rows: list[dict]) -> list[dict]:
    """Per (preset, model, protocol, select rule): comparisons, regret and wall time."""
    out = []
    groups = sorted({(r["preset"], r["model"], r["protocol"]) for r in rows},
                    key=lambda g: (g[0], g[1], *_arm_order((g[2], "best"))))  # fmt: skip
    for preset, model, proto in groups:
        sub = [r for r in rows if (r["preset"], r["model"], r["protocol"]) == (preset, model,
                                                                                proto)]  # fmt: skip
        for rule in SELECT_RULES:
            ours = [r["test"][rule] for r in sub]
            regret = [relative_regret(r["test"][rule], r["test"]["grid_hindsight"]) for r in sub]
            out.append({
                "preset": preset, "model": model, "protocol": proto, "select": rule,
                "n": len(sub), "symbols": len({r["symbol"] for r in sub}),
                "periods": len({r["period"] for r in sub}),
                **{f"vs_{b}": compare(ours, [r["test"][b] for r in sub])
                   for b in ("default", "grid_best", "naive")},
                "mean_regret": float(np.mean(regret)), "median_regret": float(np.median(regret)),
                "mean_wall_s": float(np.mean([r["wall_s"] for r in sub])),
                "defaults_chosen": sum(r["dii_chosen"] == "default" for r in sub),
            })  # fmt: skip
    return out


def _arm_order(arm: tuple[str, str]) -> tuple[int, str, int]:
    """Protocols as in PROTOCOLS (others after, by tag), ``best`` before the other rule."""
    known = PROTOCOLS.split(",")
    index = known.index(arm[0]) if arm[0] in known else len(known)
    return index, arm[0], SELECT_RULES.index(arm[1])


def head_to_head(rows: list[dict]) -> list[dict]:
    """Pairs of (protocol, select rule) of one (preset, model) that share the protocol or the
    rule, on their common (symbol, period) cells: wins of the first, losses, sign test."""
    out = []
    for preset, model in sorted({(r["preset"], r["model"]) for r in rows}):
        cells: dict[tuple, dict] = {}
        for r in rows:
            if (r["preset"], r["model"]) == (preset, model):
                for rule in SELECT_RULES:
                    cells.setdefault((r["protocol"], rule), {})[(r["symbol"], r["period"])] = r[
                        "test"
                    ][rule]
        arms = sorted(cells, key=_arm_order)
        for i, a in enumerate(arms):
            for b in arms[i + 1 :]:
                if a[0] != b[0] and a[1] != b[1]:
                    continue
                common = sorted(set(cells[a]) & set(cells[b]))
                if not common:
                    continue
                result = compare([cells[a][c] for c in common], [cells[b][c] for c in common])
                out.append({"preset": preset, "model": model, "a": a, "b": b, **result})
    return out


def table(rows: list[dict]) -> str:
    """The docs tables: per arm, then the significant (p < 0.05) head-to-head pairs."""

    def wl(c: dict) -> str:
        return f"{c['wins']}-{c['losses']}-{c['ties']} (p {c['p']:.2g})"

    lines = [
        "| preset | model | protocol | select | cells (symbols x periods) | vs default: W-L-T "
        "(sign p) | vs grid's best | vs naive | mean / median regret vs grid in hindsight "
        "| defaults exported | mean study wall |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in summary(rows):
        lines.append(
            f"| {s['preset']} | {s['model']} | {s['protocol']} | {s['select']} "
            f"| {s['n']} ({s['symbols']} x {s['periods']}) | {wl(s['vs_default'])} "
            f"| {wl(s['vs_grid_best'])} | {wl(s['vs_naive'])} "
            f"| {s['mean_regret']:+.1%} / {s['median_regret']:+.1%} "
            f"| {s['defaults_chosen'] if s['select'] != 'best' else '-'} "
            f"| {s['mean_wall_s']:.1f} s |"
        )
    pairs = head_to_head(rows)
    lines += [
        "",
        "Head to head (A vs B on the same cells; W-L-T of A, two-sided sign test):",
        "",
        "| preset | model | A | B | W-L-T (sign p) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for p in pairs:
        lines.append(f"| {p['preset']} | {p['model']} | {' '.join(p['a'])} | {' '.join(p['b'])} "
                     f"| {wl(p)} |")  # fmt: skip
    significant = [p for p in pairs if p["p"] < 0.05]
    lines += ["", f"Pairs with sign-test p < 0.05: {len(significant)} of {len(pairs)}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="toto", help="comma-separated: toto, kronos")
    parser.add_argument("--presets", default="tiny", help="comma-separated: tiny, base")
    parser.add_argument("--symbols", default=",".join(SYMBOLS))
    parser.add_argument("--periods", type=int, default=6, help="walk-forward periods")
    parser.add_argument("--period-step", type=int, default=20, help="bars between periods")
    parser.add_argument("--protocols", default=PROTOCOLS, help="study tags, comma-separated")
    parser.add_argument("--n-trials", type=int, default=20)
    parser.add_argument("--test-window", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--grid-confirm",
        type=int,
        default=5,
        help="grid settings confirmed for the grid's best (1: best first pass)",
    )
    parser.add_argument("--grid-draws", type=int, default=8, help="fresh seed sets of each")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each launch")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU host")
    parser.add_argument("--out", default="docs/bench-generalisation.json")
    parser.add_argument(
        "--skip-done",
        action="store_true",
        help="skip cells --out already has (finish a stopped run)",
    )
    parser.add_argument("--table", help="print the docs tables of a results file and stop")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
        return
    bench(args)


if __name__ == "__main__":
    main()
