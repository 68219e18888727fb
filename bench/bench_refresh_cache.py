"""Stage-1 passes of a refresh with and without the disk cache (docs/design-notes.md, "A
stage-1 cache on disk").

Per mode (``disk``: a fresh ``--cache-dir``; ``none``: ``--cache-dir none``), in one process:
launch a study on the bundled AAPL bars less the last ``--appended`` rows, then the same
command on all of them (bars appended: the next period's study), then a second study of the
same symbol with another metric. Each launch's stage-1 passes (forward passes of the search,
confirmation and test scoring; the live-latency timing always runs its own) and wall time.

    .venv/bin/python bench/bench_refresh_cache.py --model toto --n-trials 30
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import optimise.setup  # noqa: E402
from optimise.cli import main  # noqa: E402

CHECKPOINTS = {
    "toto": ROOT / "tests/fixtures/toto/tiny",
    "kronos": ROOT / "tests/fixtures/kronos/checkpoint",
}


def launch(backends: list, *args: object) -> tuple[float, int, dict[str, int]]:
    """``optimise launch ARGS`` in this process: wall seconds, stage-1 passes, disk counters."""
    before = len(backends)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["launch", *map(str, args)]) == 0
    wall = time.perf_counter() - start
    made = backends[before:]
    counts: dict[str, int] = {}
    for backend in made:
        disk = getattr(backend, "stage1_disk", None)
        for key, value in (disk.cache.counters() if disk else {}).items():
            counts[key] = counts.get(key, 0) + value
    return wall, sum(b.passes for b in made), counts


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toto", choices=sorted(CHECKPOINTS))
    parser.add_argument("--n-trials", type=int, default=30)
    parser.add_argument("--appended", type=int, default=1)
    parser.add_argument("--modes", nargs="+", default=["none", "disk"], choices=["none", "disk"])
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[])
    args = parser.parse_args()
    backends: list = []
    loader = optimise.setup.load_backend

    def recording(*a, **k):  # noqa: ANN002, ANN003, ANN202
        backends.append(loader(*a, **k))
        return backends[-1]

    optimise.setup.load_backend = recording
    lines = (ROOT / "trainingdata" / "AAPL.csv").read_text().splitlines(keepends=True)
    rows = ["| mode | launch | wall s | stage-1 passes | disk hits | disk misses |",
            "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for mode in args.modes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            data = folder / "data"
            data.mkdir()
            cache = "none" if mode == "none" else folder / "cache"
            common = [
                "--model", args.model, "--checkpoint", CHECKPOINTS[args.model], "--symbols",
                "AAPL", "--data-dir", data, "--n-trials", args.n_trials, "--no-progress",
                "--storage", f"sqlite:///{folder / 'studies.db'}", "--store", folder / "store",
                "--cache-dir", cache, *args.extra,
            ]  # fmt: skip
            (data / "AAPL.csv").write_text("".join(lines[: len(lines) - args.appended]))
            steps = [("first period", common)]
            steps.append(("refresh (bars appended)", common))
            steps.append(("other metric, same data", [*common, "--metric", "crps"]))
            for n, (name, step) in enumerate(steps):
                if n == 1:
                    (data / "AAPL.csv").write_text("".join(lines))
                wall, passes, counts = launch(backends, *step)
                rows.append(
                    f"| {mode} | {name} | {wall:.1f} | {passes} | {counts.get('hits', '-')} | "
                    f"{counts.get('misses', '-')} |"
                )
                print(rows[-1], flush=True)
    print("\n".join(rows))


if __name__ == "__main__":
    main_bench()
