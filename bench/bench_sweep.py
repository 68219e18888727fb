"""A sweep and its refresh (issue 24 item 5): ``launch --all`` over many symbols, then the same
command after one real bar is appended to every CSV.

Symbols are made from the real series (``../shared/data/{BTCUSD,ETHUSD}.csv`` and the bundled
``trainingdata/{AAPL,GOOG,IBM,MSFT}.csv``) by slicing each into disjoint stretches of
``--length + 1`` consecutive rows: the first ``--length`` rows are the symbol's CSV, the last
one (the stretch's next real row) is held back and appended before the refresh. The default
length is the longest that gives 100 stretches; ``--n-symbols`` runs that many of them, spread
evenly over the list (every source), so a smaller run is a subset of the full one, with the
same per-symbol data. ``--min-context`` is whatever history the length leaves before the
first validation target.

Per model, in this process (``optimise launch`` called in-process, as
``bench_refresh_cache.py`` does; a fresh backend per launch, so only the disk cache carries
over): the fresh sweep (one SQLite database, a fresh ``--cache-dir``), then the refresh with
the same command. Each sweep's wall time, stage-1 forward passes (the launch's backend:
search, confirmation, test scoring, defaults, picture band; the live-latency timing's own
uncached passes are counted apart), disk-cache counters, trials run, time per trial inside
the model (``evaluate``) and outside it, and where the rest of the launch goes
(finalisation's parts). The refresh is checked: every symbol has a new period study
(``<name>@<period>``) with ``--n-trials`` finished trials run in that sweep, and its record is
the live one in the store (the previous one kept in ``history/``).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_sweep.py --n-symbols 3 --n-trials 200 \
        --extra "kronos=--horizon 1" --out docs/bench-sweep.json      # docs/bench-sweep.md
    .venv/bin/python bench/bench_sweep.py   # the full run: 100 symbols x 200 trials x 2 models
    .venv/bin/python bench/bench_sweep.py --listing-cost sqlite:///studies.db
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SOURCES = {
    "BTCUSD": ROOT.parent / "shared" / "data" / "BTCUSD.csv",
    "ETHUSD": ROOT.parent / "shared" / "data" / "ETHUSD.csv",
    **{s: ROOT / "trainingdata" / f"{s}.csv" for s in ("AAPL", "GOOG", "IBM", "MSFT")},
}
PRESETS = {"toto": "base", "kronos": "tiny"}
SLICED = 100  # the symbol count: the default length is the longest giving this many
VAL, TEST = 20, 20  # the launch's default windows


# --- the symbols: disjoint stretches of the real series -------------------------------------


@dataclass(frozen=True)
class Stretch:
    """One made-up symbol: ``rows`` consecutive data lines of ``source`` from data row
    ``start`` (0 = the line after the header), and ``held``, the next real line."""

    symbol: str
    source: str
    start: int
    rows: tuple[str, ...]
    held: str

    @property
    def stop(self) -> int:
        """One past the last data row the stretch takes (``held`` included)."""
        return self.start + len(self.rows) + 1


def longest_length(row_counts: Sequence[int], n: int) -> int:
    """The longest ``length`` such that stretches of ``length + 1`` rows give ``n`` symbols."""
    best = 0
    for length in range(1, max(row_counts)):
        if sum(count // (length + 1) for count in row_counts) >= n:
            best = length
    if best == 0:
        raise ValueError(f"the series cannot make {n} stretches of 2 rows or more")
    return best


def slice_stretches(sources: dict[str, list[str]], length: int) -> list[Stretch]:
    """Every disjoint stretch of ``length + 1`` rows, source by source, oldest first."""
    out = []
    for source, lines in sources.items():
        for k in range(len(lines) // (length + 1)):
            start = k * (length + 1)
            rows = tuple(lines[start : start + length])
            out.append(Stretch(f"{source}_{k:02d}", source, start, rows, lines[start + length]))
    return out


def spread(stretches: Sequence[Stretch], n: int) -> list[Stretch]:
    """``n`` of ``stretches``, evenly spaced over the list (so over every source)."""
    if not 1 <= n <= len(stretches):
        raise ValueError(f"{n} symbols asked, {len(stretches)} stretches of this length")
    step = len(stretches) / n
    return [stretches[int(i * step)] for i in range(n)]


def read_sources(paths: dict[str, Path]) -> tuple[str, dict[str, list[str]]]:
    """The common header and each source's data lines (no line ends)."""
    header = None
    sources = {}
    for name, path in paths.items():
        first, *lines = path.read_text().splitlines()
        if header is not None and first != header:
            raise ValueError(f"{path}: header {first!r}, expected {header!r}")
        header = first
        sources[name] = [line for line in lines if line.strip()]
    assert header is not None
    return header, sources


def write_symbols(folder: Path, header: str, stretches: Sequence[Stretch]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for s in stretches:
        (folder / f"{s.symbol}.csv").write_text("\n".join([header, *s.rows]) + "\n")


def append_held(folder: Path, stretches: Sequence[Stretch]) -> None:
    """Append each stretch's held-back row (its next real bar) to its CSV."""
    for s in stretches:
        path = folder / f"{s.symbol}.csv"
        text = path.read_text()
        assert text.endswith("\n")
        path.write_text(text + s.held + "\n")


# --- measuring a launch in this process -----------------------------------------------------

PHASES = {
    "load": "load data and model (contexts)",
    "refresh_check": "refresh check (chain listing, previous candidates, history copy)",
    "open": "open study (warm-start scan, queue)",
    "trials": "trials (run_study)",
    "finalise": "finalisation (all)",
    "confirm": "confirmation",
    "first_and_test": "winner's first pass again + test scoring",
    "defaults": "trading defaults' scoring",
    "band": "picture band (quantiles)",
    "latency": "latency (live, uncached)",
    "render": "picture (render)",
    "trial": "whole trial (objective + tell)",
    "take": "take (lock, recovery, counts, ask, owner)",
    "model": "model (evaluate: stage 1 misses + stage 2 + metrics)",
}


class Recorder:
    """Backends the launches load (stage-1 passes, disk counters), the uncached ones the
    latency timing makes, and seconds per part."""

    def __init__(self) -> None:
        from bench_trial_cost import Meter

        self.meter = Meter()
        self.backends: list[Any] = []
        self.live: list[Any] = []
        self._patched: set[type] = set()

    def install(self) -> None:
        import objectives.evaluator as evaluator_module
        import optimise.commands as commands
        import optimise.setup as setup
        import studies.finalise as finalise
        import studies.objective as objective_module
        import studies.publish as publish
        import studies.worker as worker

        loader = setup.load_backend

        def recording(*a: Any, **k: Any) -> Any:
            backend = loader(*a, **k)
            self.backends.append(backend)
            self._patch_uncached(type(backend))
            return backend

        setup.load_backend = recording
        wrap, p = self.meter.wrap, PHASES
        commands.contexts = wrap(p["load"], commands.contexts)
        commands._refresh = wrap(p["refresh_check"], commands._refresh)
        commands.open_study = wrap(p["open"], commands.open_study)
        commands.run_study = wrap(p["trials"], commands.run_study)
        commands.finalise = wrap(p["finalise"], commands.finalise)
        finalise.confirm = wrap(p["confirm"], finalise.confirm)
        finalise.evaluate = wrap(p["first_and_test"], finalise.evaluate)
        finalise._score_default = wrap(p["defaults"], finalise._score_default)
        finalise.forecast_data = wrap(p["band"], finalise.forecast_data)
        finalise.live_latency = wrap(p["latency"], finalise.live_latency)
        publish.render = wrap(p["render"], publish.render)
        worker._run_trial = wrap(p["trial"], worker._run_trial)
        worker._take_trial = wrap(p["take"], worker._take_trial)
        objective_module.evaluate = wrap(p["model"], evaluator_module.evaluate)

    def _patch_uncached(self, cls: type) -> None:
        if cls in self._patched:
            return
        self._patched.add(cls)
        uncached = cls.uncached

        def recorded(backend: Any) -> Any:
            live = uncached(backend)
            self.live.append(live)
            return live

        cls.uncached = recorded  # type: ignore[method-assign]

    def launch(self, argv: list[str], log: Path) -> dict[str, Any]:
        """``optimise launch ARGV`` in this process, its output to ``log``: what it cost."""
        from optimise.cli import main

        made, live = len(self.backends), len(self.live)
        gc.collect()  # no engine of an earlier launch or read-back left open (see reading)
        self.meter.seconds.clear()
        self.meter.counting = True
        started = time.perf_counter()
        with log.open("w") as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            status = main(["launch", *argv])
        wall = time.perf_counter() - started
        self.meter.counting = False
        assert status == 0, f"launch exited {status}: see {log}"
        disk: dict[str, int] = {}
        for backend in self.backends[made:]:
            cache = getattr(backend, "stage1_disk", None)
            for key, value in (cache.cache.counters() if cache else {}).items():
                disk[key] = disk.get(key, 0) + value
        return {
            "wall_s": round(wall, 2),
            "stage1_passes": sum(b.passes for b in self.backends[made:]),
            "latency_passes": sum(b.passes for b in self.live[live:]),
            "disk_cache": disk,
            "seconds": {k: round(v, 2) for k, v in sorted(self.meter.seconds.items())},
        }


# --- what a sweep did, read back from the database and the store ----------------------------


@contextlib.contextmanager
def reading(url: str) -> Iterator[Any]:
    """An Optuna storage on ``url`` whose connections are closed on exit.

    Not left to the garbage collector: the next launch's ``Database.open`` reads the file's
    header with a plain ``open``/``close``, which drops every POSIX lock this process holds on
    it (SQLite's included); a reader in another process that closes then takes itself for the
    last connection and deletes the WAL under the open ones (seen once: "disk I/O error" and
    the WAL's last trials lost, with a ``sqlite3`` shell reading the database during a run).
    """
    import optuna

    storage = optuna.storages.RDBStorage(url)
    try:
        yield storage
    finally:
        storage.engine.dispose()


def studies_of(url: str) -> dict[str, dict[str, Any]]:
    """Per study: its symbol, trial counts by state, duplicates and queued trials."""
    import optuna

    out = {}
    with reading(url) as storage:
        for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            trials = study.get_trials(deepcopy=False)
            states: dict[str, int] = {}
            for t in trials:
                states[t.state.name] = states.get(t.state.name, 0) + 1
            out[summary.study_name] = {
                "symbol": summary.user_attrs.get("symbol"),
                "states": states,
                "finished": states.get("COMPLETE", 0) + states.get("PRUNED", 0),
                "duplicates": sum("duplicate_of" in t.user_attrs for t in trials),
                "queued": sum("source" in t.user_attrs for t in trials),
            }
    return out


def check_sweep(
    url: str, store: Path, model: str, symbols: list[str], n_trials: int, before: set[str],
    refresh: bool,
) -> dict[str, Any]:  # fmt: skip
    """The studies this sweep made (one per symbol, new, with ``n_trials`` finished trials),
    each symbol's live record theirs; for a refresh, period studies with the last record kept
    in history. Raises ``AssertionError`` on any miss; returns the sweep's trial counts."""
    now = studies_of(url)
    made = {name: s for name, s in now.items() if name not in before}
    by_symbol = {s["symbol"]: name for name, s in made.items()}
    assert sorted(by_symbol) == sorted(symbols), f"new studies: {sorted(made)}"
    assert len(made) == len(symbols), f"more than one new study per symbol: {sorted(made)}"
    totals = {"trials_run": 0, "complete": 0, "pruned": 0, "failed": 0, "duplicates": 0,
              "queued": 0}  # fmt: skip
    for symbol, name in by_symbol.items():
        s = made[name]
        assert ("@" in name) == refresh, f"{name}: {'not ' if refresh else ''}a period study"
        assert s["finished"] == n_trials, f"{name}: {s['finished']} finished, not {n_trials}"
        record = json.loads((store / model / f"{symbol}.json").read_text())
        meta = record["metadata"]
        assert meta["study_name"] == name, f"{symbol}: live record is {meta['study_name']}"
        complete = s["states"].get("COMPLETE", 0)
        assert meta.get("complete_trials") == complete, f"{symbol}: record not of the last round"
        if refresh:
            kept = list((store / model / "history" / symbol).glob("*.json"))
            assert len(kept) == 1, f"{symbol}: history holds {kept}"
        totals["trials_run"] += sum(s["states"].values())
        totals["complete"] += complete
        totals["pruned"] += s["states"].get("PRUNED", 0)
        totals["failed"] += s["states"].get("FAIL", 0)
        assert not s["states"].get("FAIL"), f"{name}: failed trials {s['states']}"
        totals["duplicates"] += s["duplicates"]
        totals["queued"] += s["queued"]
    totals["studies"] = sorted(made)
    if refresh:
        previous = {now[n]["symbol"]: n for n in before if now[n]["symbol"] in by_symbol}
        totals["reuse"] = settings_reused(url, [(previous[s], by_symbol[s]) for s in symbols])
    return totals


def settings_reused(url: str, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """How much of the refresh's trial work was settings the previous period had scored
    (what a cache of per-window forecasts across periods could reuse: a window's forecast
    depends on its rows, the settings and a seed from the study seed and the target row, so
    the 19 validation windows the periods share would give the same numbers)."""
    import optuna

    out = {"evaluated": 0, "seen_before": 0, "model_s": 0.0, "model_s_seen_before": 0.0}
    with reading(url) as storage:

        def scored(name: str) -> list[Any]:
            study = optuna.load_study(study_name=name, storage=storage)
            return [
                t
                for t in study.get_trials(deepcopy=False)
                if "config" in t.user_attrs and "duplicate_of" not in t.user_attrs
                and t.state.name in ("COMPLETE", "PRUNED")
            ]  # fmt: skip

        for old, new in pairs:
            known = {json.dumps(t.user_attrs["config"], sort_keys=True) for t in scored(old)}
            for t in scored(new):
                cost = float(t.user_attrs.get("trial_cost_s", 0.0))
                seen = json.dumps(t.user_attrs["config"], sort_keys=True) in known
                out["evaluated"] += 1
                out["seen_before"] += seen
                out["model_s"] += cost
                out["model_s_seen_before"] += cost if seen else 0.0
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}


# --- the bench -------------------------------------------------------------------------------


def checkpoint(folder: Path, model: str, preset: str) -> Path:
    out = folder / f"{model}-{preset}"
    if not (out / "config.json").exists() and not (out / "model").exists():
        command = [sys.executable, "-m", "optimise", "checkpoint", "init", "--arch", model,
                   "--preset", preset, str(out)]  # fmt: skip
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return out


def run_model(
    recorder: Recorder, args: argparse.Namespace, model: str, work: Path,
    header: str, stretches: list[Stretch], min_context: int, save: Callable[[], None],
) -> dict[str, Any]:  # fmt: skip
    preset = PRESETS[model] if model not in args.preset else args.preset[model]
    ckpt = checkpoint(work, model, preset)
    folder = work / model
    data = folder / "data"
    write_symbols(data, header, stretches)
    url = f"sqlite:///{folder / 'studies.db'}"
    store = folder / "store"
    argv = [
        "--model", model, "--checkpoint", str(ckpt), "--all", "--data-dir", str(data),
        "--n-trials", str(args.n_trials), "--storage", url, "--store", str(store),
        "--cache-dir", str(folder / "cache"), "--no-progress", "--min-context",
        str(min_context), *(["--task", args.task] if args.task else []), *args.extra.get(model, []),
    ]  # fmt: skip
    symbols = [s.symbol for s in stretches]
    result: dict[str, Any] = {"model": model, "preset": preset, "argv": argv}
    args.results.append(result)
    for sweep in ("fresh", "refresh"):
        if sweep == "refresh":
            append_held(data, stretches)
        before = set(studies_of(url)) if (folder / "studies.db").exists() else set()
        print(f"{model} {sweep}: {len(symbols)} symbols x {args.n_trials} trials ...", flush=True)
        load_before = os.getloadavg()
        measured = recorder.launch(argv, folder / f"{sweep}.log")
        measured["load_avg_before_after"] = [load_before, os.getloadavg()]
        result[sweep] = measured
        save()  # the measurement, before anything reads the database back
        measured.update(
            check_sweep(url, store, model, symbols, args.n_trials, before, sweep == "refresh")
        )
        save()
        print(f"  {summary_line(measured)}", flush=True)
    return result


def per_trial(m: dict[str, Any]) -> tuple[float, float]:
    """(inside, outside) the model, ms per trial run: ``evaluate`` in the objective, and the
    rest of the trial (take, suggest, duplicate check, attrs, tell)."""
    seconds = m["seconds"]
    whole = seconds.get(PHASES["trial"], 0.0) + seconds.get(PHASES["take"], 0.0)
    model = seconds.get(PHASES["model"], 0.0)
    n = max(m["trials_run"], 1)
    return 1000 * model / n, 1000 * (whole - model) / n


def summary_line(m: dict[str, Any]) -> str:
    inside, outside = per_trial(m)
    return (
        f"wall {m['wall_s']:.1f} s, stage-1 passes {m['stage1_passes']}, trials "
        f"{m['trials_run']}, per trial {inside:.0f} ms model / {outside:.0f} ms outside"
    )


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| model | sweep | wall s | stage-1 passes | latency passes | disk hits / misses | "
        "trials run (dup.) | model ms/trial | outside ms/trial | trials s | finalisation s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        for sweep in ("fresh", "refresh"):
            m = r[sweep]
            inside, outside = per_trial(m)
            disk = m["disk_cache"]
            s = m["seconds"]
            rows.append(
                f"| {r['model']} {r['preset']} | {sweep} | {m['wall_s']:.1f} | "
                f"{m['stage1_passes']} | {m['latency_passes']} | {disk.get('hits', 0)} / "
                f"{disk.get('misses', 0)} | {m['trials_run']} ({m['duplicates']}) | "
                f"{inside:.0f} | {outside:.0f} | {s.get(PHASES['trials'], 0):.1f} | "
                f"{s.get(PHASES['finalise'], 0):.1f} |"
            )
    rows += ["", "| model | passes refresh/fresh (goal <= 10%) | with latency passes | "
             "wall refresh/fresh (goal <= 25%) | trials phase | finalisation |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for r in results:
        ratio = r["ratios"]
        rows.append(
            f"| {r['model']} {r['preset']} | {100 * ratio['passes']:.1f}% "
            f"{'met' if ratio['passes'] <= 0.10 else 'missed'} | "
            f"{100 * ratio['passes_with_latency']:.1f}% | {100 * ratio['wall']:.1f}% "
            f"{'met' if ratio['wall'] <= 0.25 else 'missed'} | "
            f"{100 * ratio['trials_phase']:.0f}% | {100 * ratio['finalisation']:.0f}% |"
        )
    rows += ["", "| model | sweep | " + " | ".join(PHASES[k] for k in PHASE_COLUMNS) + " |",
             "| --- | --- |" + " ---: |" * len(PHASE_COLUMNS)]  # fmt: skip
    for r in results:
        for sweep in ("fresh", "refresh"):
            s = r[sweep]["seconds"]
            cells = " | ".join(f"{s.get(PHASES[k], 0.0):.1f}" for k in PHASE_COLUMNS)
            rows.append(f"| {r['model']} {r['preset']} | {sweep} | {cells} |")
    return "\n".join(rows)


PHASE_COLUMNS = (
    "load", "refresh_check", "open", "trials", "confirm", "first_and_test", "defaults", "band",
    "latency", "render", "finalise",
)  # fmt: skip


def listing_cost(url: str) -> dict[str, Any]:
    """What one listing of the database's studies costs (``optuna.get_all_study_summaries``,
    which reads every trial of every study; a launch lists them to find a symbol's periods and
    again for warm starts), and one study's trials read whole (what a warm start does per
    study it considers), on the database at ``url``."""
    import optuna

    with reading(url) as storage:
        started = time.perf_counter()
        summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
        listing = time.perf_counter() - started
        loads = []
        for summary in summaries:
            started = time.perf_counter()
            optuna.load_study(study_name=summary.study_name, storage=storage).trials  # noqa: B018
            loads.append(time.perf_counter() - started)
    trials = sum(s.n_trials for s in summaries)
    return {
        "studies": len(summaries),
        "trials": trials,
        "listing_s": round(listing, 3),
        "listing_ms_per_study": round(1000 * listing / max(len(summaries), 1), 1),
        "load_trials_ms_per_study": round(1000 * sum(loads) / max(len(loads), 1), 1),
    }


def parse_extra(items: list[str]) -> dict[str, list[str]]:
    """``--extra MODEL=ARGS``: more launch flags for one model (``kronos=--horizon 1``)."""
    out: dict[str, list[str]] = {}
    for item in items:
        model, _, flags = item.partition("=")
        out.setdefault(model, []).extend(flags.split())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="toto,kronos")
    parser.add_argument(
        "--preset",
        action="append",
        default=[],
        metavar="MODEL=PRESET",
        help="checkpoint preset per model (default toto=base, kronos=tiny)",
    )
    parser.add_argument("--n-symbols", type=int, default=SLICED)
    parser.add_argument(
        "--length",
        type=int,
        help="rows per fresh CSV (default: the longest "
        f"giving {SLICED} disjoint stretches, each with its held-back row)",
    )
    parser.add_argument("--n-trials", type=int, default=200)
    parser.add_argument("--task", help="launch --task (default: the launch's)")
    parser.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="MODEL=FLAGS",
        help="more launch flags for one model, e.g. 'kronos=--horizon 1'",
    )
    parser.add_argument("--work", type=Path, help="folder to keep (default: a temporary one)")
    parser.add_argument("--out", type=Path, help="write the results as JSON")
    parser.add_argument(
        "--listing-cost", metavar="URL", help="only time listing the studies of the database at URL"
    )
    args = parser.parse_args()
    if args.listing_cost:
        print(json.dumps(listing_cost(args.listing_cost)))
        return
    args.preset = dict(p.split("=", 1) for p in args.preset)
    args.extra = parse_extra(args.extra)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    header, sources = read_sources(SOURCES)
    length = args.length or longest_length([len(v) for v in sources.values()], SLICED)
    stretches = spread(slice_stretches(sources, length), args.n_symbols)
    recorder = Recorder()
    recorder.install()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    work.mkdir(parents=True, exist_ok=True)
    import torch

    results: list[dict[str, Any]] = []
    args.results = results
    out = {
        "command": " ".join(["bench/bench_sweep.py", *sys.argv[1:]]),
        "symbols": [s.symbol for s in stretches],
        "stretch": {"length": length, "held_back": 1, "sources": {k: len(v) for k, v in
                                                                   sources.items()}},
        "n_trials": args.n_trials,
        "host": {"cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
                 "torch_threads": torch.get_num_threads(),
                 "omp_num_threads": os.environ.get("OMP_NUM_THREADS")},
        "work": str(work),
        "results": results,
    }  # fmt: skip

    def save() -> None:
        if args.out:
            args.out.write_text(json.dumps(out, indent=1) + "\n")

    for model in args.models.split(","):
        horizon = _horizon(model, args)
        min_context = length - VAL - TEST - 2 * (horizon - 1)
        assert min_context >= 1, f"{length} rows leave no history at horizon {horizon}"
        result = run_model(recorder, args, model, work, header, stretches, min_context, save)
        result.update(length=length, min_context=min_context, horizon=horizon)
        fresh, refresh = result["fresh"], result["refresh"]
        result["ratios"] = {
            "passes": refresh["stage1_passes"] / max(fresh["stage1_passes"], 1),
            "passes_with_latency": (refresh["stage1_passes"] + refresh["latency_passes"])
            / max(fresh["stage1_passes"] + fresh["latency_passes"], 1),
            "wall": refresh["wall_s"] / fresh["wall_s"],
            "trials_phase": _phase(refresh, "trials") / max(_phase(fresh, "trials"), 1e-9),
            "finalisation": _phase(refresh, "finalise") / max(_phase(fresh, "finalise"), 1e-9),
        }
        save()
    print(table(results))


def _phase(measured: dict[str, Any], key: str) -> float:
    return float(measured["seconds"].get(PHASES[key], 0.0))


def _horizon(model: str, args: argparse.Namespace) -> int:
    """The launch's horizon for ``model`` (``--horizon`` in its extra flags, else the task's
    default), to place the windows in ``--length`` rows."""
    from objectives.tasks import TASKS, Task, parse_columns, resolve_horizon

    flags = args.extra.get(model, [])
    if "--horizon" in flags:
        return int(flags[flags.index("--horizon") + 1])
    name = args.task or "trading"
    assert name in TASKS
    return resolve_horizon(Task(name, parse_columns(None, name), "mean"), model, None)


if __name__ == "__main__":
    main()
