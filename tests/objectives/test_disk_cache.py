"""The stage-1 cache on disk: bit-identical hits in another process, refreshes that hit the old
windows, concurrent writers, the LRU bound, bad files as misses, and ``optimise cache``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from objectives.bars import Bars, load_bars
from objectives.disk_cache import (
    CACHE_DIR_ENV,
    FORMAT,
    DiskCache,
    Stage1Disk,
    default_dir,
    pack,
    parse_size,
    unpack,
)
from objectives.evaluator import load_backend
from objectives.forecasts import Forecast
from objectives.kronos.stages import Stage1
from objectives.tasks import LEVELS, Task
from tests.conftest import REPO, SAMPLE_DATA, run_cli

FIXTURES = REPO / "tests" / "fixtures"
CHECKPOINTS = {"toto": FIXTURES / "toto" / "tiny", "kronos": FIXTURES / "kronos" / "checkpoint"}
TRADING = Task("trading", ("close", "high", "low", "open"))
SETTINGS = {
    "toto": {"num_samples": 64, "aggregate": "trimmed_mean_0.10"},
    "kronos": {
        "temperature": 1.0, "top_k": 0, "top_p": 0.95, "sample_count": 4, "max_context": 32,
        "clip": 2.0,
    },
}  # fmt: skip
HORIZON = {"toto": 1, "kronos": 7}
TARGETS = {"toto": [581, 590, 600], "kronos": [590, 600]}
#: stage-1 entries of the trading task's forecast from TARGETS: Toto one per column
ENTRIES = {"toto": 4 * len(TARGETS["toto"]), "kronos": len(TARGETS["kronos"])}

#: run in a fresh process: the same forecasts with the same cache folder, written to OUT
SECOND_PROCESS = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import numpy as np
    from objectives.bars import load_bars
    from objectives.disk_cache import DiskCache
    from objectives.evaluator import load_backend
    from objectives.tasks import Task

    root, out, data = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    plan = json.loads(sys.argv[4])
    bars = load_bars(data, "AAPL")
    task = Task("trading", ("close", "high", "low", "open"))
    arrays, counts = {}, {}
    for model, (checkpoint, horizon, targets, settings) in plan.items():
        cache = DiskCache(root)
        backend = load_backend(model, checkpoint=checkpoint, disk_cache=cache)
        forecast = backend.evaluator(bars, task, horizon).forecast(np.array(targets), settings, 7)
        arrays[f"{model}.points"] = forecast.points
        for w, draws in enumerate(forecast.draws):
            arrays[f"{model}.draws{w}"], arrays[f"{model}.weights{w}"] = draws.values, draws.weights
        counts[model] = {"passes": backend.passes, **cache.counters()}
    np.savez(out / "forecasts.npz", **arrays)
    (out / "counts.json").write_text(json.dumps(counts))
    """
)


def flat(forecast: Forecast) -> dict[str, np.ndarray]:
    """A forecast's numbers: the points and every window's draws and weights."""
    out = {"points": forecast.points}
    for w, draws in enumerate(forecast.draws):
        out[f"draws{w}"], out[f"weights{w}"] = draws.values, draws.weights
    return out


@pytest.fixture(scope="module")
def aapl() -> Bars:
    return load_bars(SAMPLE_DATA, "AAPL")


def test_a_hit_in_a_second_process_is_bit_identical_to_a_recomputation(
    aapl: Bars, tmp_path: Path
) -> None:
    root, out = tmp_path / "cache", tmp_path / "out"
    out.mkdir()
    computed = {}
    for model in ("toto", "kronos"):
        cache = DiskCache(root)
        backend = load_backend(model, checkpoint=str(CHECKPOINTS[model]), disk_cache=cache)
        evaluator = backend.evaluator(aapl, TRADING, HORIZON[model])
        forecast = evaluator.forecast(np.array(TARGETS[model]), SETTINGS[model], 7)
        computed[model] = flat(forecast)  # every window computed (and written)
        assert backend.passes > 0 and cache.writes == ENTRIES[model] and cache.hits == 0
    plan = {
        m: [str(CHECKPOINTS[m]), HORIZON[m], TARGETS[m], SETTINGS[m]] for m in ("toto", "kronos")
    }
    done = subprocess.run(
        [sys.executable, "-c", SECOND_PROCESS, str(root), str(out), str(SAMPLE_DATA),
         json.dumps(plan)],
        env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=120, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    counts = json.loads((out / "counts.json").read_text())
    with np.load(out / "forecasts.npz") as data:
        second = dict(data)
    for model in ("toto", "kronos"):
        assert counts[model]["passes"] == 0, counts  # every window came from the folder
        assert counts[model]["hits"] == ENTRIES[model] and counts[model]["misses"] == 0
        for name, value in computed[model].items():
            stored = second[f"{model}.{name}"]
            assert stored.dtype == value.dtype and np.array_equal(stored, value), (model, name)


def test_a_kronos_stage1_comes_back_with_its_dtypes_strides_and_devices(aapl: Bars) -> None:
    from models.kronos.layers import KV
    from objectives.kronos.stages import StepContext

    types = {"Stage1": Stage1, "StepContext": StepContext, "KV": KV}
    backend = load_backend("kronos", checkpoint=str(CHECKPOINTS["kronos"]))
    evaluator = backend.evaluator(aapl, TRADING, 7)
    settings = backend.space.from_config(SETTINGS["kronos"])
    window = evaluator._windows([590], settings)[0]
    tensors, tree = pack(window, types)
    back = unpack(tensors, json.loads(json.dumps(tree)), types)
    assert isinstance(back, Stage1) and sorted(back.steps) == sorted(window.steps)

    def leaves(value: object) -> list[object]:
        if isinstance(value, (torch.Tensor, np.ndarray)):
            return [value]
        if isinstance(value, (list, tuple)):
            return [x for v in value for x in leaves(v)]
        if isinstance(value, dict):
            return [x for k in sorted(value) for x in leaves(value[k])]
        if hasattr(value, "__dataclass_fields__"):
            return [x for f in value.__dataclass_fields__ for x in leaves(getattr(value, f))]
        return []

    before, after = leaves(window), leaves(back)
    assert len(before) == len(after) > 40
    for a, b in zip(before, after, strict=True):
        assert type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape
        if isinstance(a, torch.Tensor):
            assert a.stride() == b.stride() and a.device == b.device and torch.equal(a, b)
        else:
            assert np.array_equal(a, b)


@pytest.mark.parametrize("model", ["toto", "kronos"])
def test_bars_appended_still_hit_the_old_windows(model: str, aapl: Bars, tmp_path: Path) -> None:
    """A refresh: the data's fingerprint changes, the rows before each old window do not."""
    old, new = aapl.head(595), aapl
    assert old.fingerprint() != new.fingerprint()
    targets = np.array([585, 594])  # the old data's last windows; 595 is new to both
    settings, cache = SETTINGS[model], DiskCache(tmp_path)

    def forecast(bars: Bars, targets: np.ndarray, task: Task, horizon: int) -> Forecast:
        backend = load_backend(model, checkpoint=str(CHECKPOINTS[model]), disk_cache=cache)
        return backend.evaluator(bars, task, horizon).forecast(targets, settings, 3)

    cold = forecast(old, targets, LEVELS, 1)
    assert cold.passes == len(targets) and cache.writes == len(targets)
    warm = forecast(new, np.array([*targets, 595]), LEVELS, 1)
    assert warm.passes == 1 and cache.hits == len(targets)  # only the new window is computed
    assert np.array_equal(warm.points[:-1], cold.points)
    # trading: Toto reads the whole history of returns (per column); Kronos, 7-step paths
    horizon, entries = HORIZON[model], len(TRADING.columns) if model == "toto" else 1
    first = forecast(old, targets[-1:], TRADING, horizon)
    hits = cache.hits
    again = forecast(new, targets[-1:], TRADING, horizon)
    assert first.passes > 0 and again.passes == 0 and cache.hits == hits + entries
    assert np.array_equal(again.points, first.points)


def test_another_checkpoint_or_setting_is_another_key(aapl: Bars, tmp_path: Path) -> None:
    cache = DiskCache(tmp_path)
    backend = load_backend("toto", checkpoint=str(CHECKPOINTS["toto"]), disk_cache=cache)
    evaluator = backend.evaluator(aapl, LEVELS)
    evaluator.forecast(np.array([590]), {**SETTINGS["toto"], "max_context": 64}, 0)
    evaluator.forecast(np.array([590]), {**SETTINGS["toto"], "max_context": 128}, 0)
    assert cache.writes == 2
    other = load_backend("toto", checkpoint=str(CHECKPOINTS["toto"]), disk_cache=cache)
    with torch.no_grad():
        next(other.model.parameters()).add_(1e-3)  # other weights under the same path
    other.evaluator(aapl, LEVELS).forecast(np.array([590]), SETTINGS["toto"], 0)
    assert other.passes == 1 and cache.hits == 0


# -- the folder itself ---------------------------------------------------------------------


def counting(value: torch.Tensor) -> tuple[list[int], Callable[[], torch.Tensor]]:
    calls: list[int] = []

    def compute() -> torch.Tensor:
        calls.append(1)
        return value.clone()

    return calls, compute


def store(root: Path, max_bytes: int = 1 << 30) -> Stage1Disk:
    return Stage1Disk(DiskCache(root, max_bytes), "test", lambda: "weights", "cpu")


def test_the_oldest_entries_go_beyond_the_bound_and_a_hit_counts_as_use(tmp_path: Path) -> None:
    value = torch.arange(1024, dtype=torch.float32)  # 4 KiB
    disk = store(tmp_path)
    disk.get_or_compute(["a"], lambda: value)
    entry = disk.cache.info().bytes
    disk = store(tmp_path, max_bytes=int(2.5 * entry))  # room for two entries
    disk.get_or_compute(["b"], lambda: value)
    assert disk.cache.info().entries == 2 and disk.cache.evictions == 0
    disk.get_or_compute(["a"], lambda: value)  # a hit: "a" is now the newest
    assert disk.cache.hits == 1
    disk.get_or_compute(["c"], lambda: value)
    assert disk.cache.evictions == 1
    kept = {p.name for p in tmp_path.rglob("*.safetensors")}
    assert kept == {f"{disk.key(['a'])}.safetensors", f"{disk.key(['c'])}.safetensors"}
    disk.get_or_compute(["d"], lambda: value)
    kept = {p.name for p in tmp_path.rglob("*.safetensors")}
    assert kept == {f"{disk.key(['c'])}.safetensors", f"{disk.key(['d'])}.safetensors"}
    assert disk.cache.info().bytes <= disk.cache.max_bytes
    big = torch.zeros(4 * 1024)  # larger than the bound: computed, never written
    assert torch.equal(disk.get_or_compute(["big"], lambda: big), big)
    assert not disk.cache.path(disk.key(["big"])).exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "foreign", "bad tree"])
def test_a_bad_file_is_a_miss_and_is_replaced(damage: str, tmp_path: Path) -> None:
    value = torch.linspace(0, 1, 300, dtype=torch.float64)
    disk = store(tmp_path)
    calls, compute = counting(value)
    disk.get_or_compute(["k"], compute)
    path = disk.cache.path(disk.key(["k"]))
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) - 100])
    elif damage == "garbage":
        path.write_bytes(os.urandom(len(data)))
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "foreign":  # a valid safetensors file, not an entry of ours
        from safetensors.torch import save_file

        save_file({"x": value}, str(path), metadata={"format": "pt"})
    else:  # the right format and key, a tree that names no tensor
        from safetensors.torch import save_file

        meta = {"format": FORMAT, "key": disk.key(["k"]), "tree": '{"tensor": "9"}'}
        save_file({"x": value}, str(path), metadata=meta)
    again = store(tmp_path)
    assert torch.equal(again.get_or_compute(["k"], compute), value)
    assert len(calls) == 2 and again.cache.bad == 1 and again.cache.hits == 0
    assert again.cache.writes == 1  # replaced
    third = store(tmp_path)
    assert torch.equal(third.get_or_compute(["k"], compute), value) and len(calls) == 2


def test_a_folder_that_cannot_be_written_only_turns_writing_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    disk = store(blocker / "cache")
    calls, compute = counting(torch.ones(3))
    for _ in range(3):
        assert torch.equal(disk.get_or_compute(["k"], compute), torch.ones(3))
    assert len(calls) == 3 and not disk.cache.writable and disk.cache.writes == 0
    assert sum("cannot write" in r.message for r in caplog.records) == 1  # one warning


#: one of two processes writing the same keys at once, each reading back what it wrote
WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import torch
    from objectives.disk_cache import DiskCache, Stage1Disk

    disk = Stage1Disk(DiskCache(Path(sys.argv[1])), "test", lambda: "weights", "cpu")
    def fail():
        raise AssertionError("a miss after a write")
    for r in range(int(sys.argv[2])):
        for k in range(8):
            value = torch.full((2000 + k,), float(k), dtype=torch.float64)
            assert disk.put([k], value), "a write failed"
            assert torch.equal(disk.get_or_compute([k], fail), value), "read back wrong"
    print("ok", disk.cache.writes, disk.cache.hits, disk.cache.bad)
    """
)


def test_concurrent_writers_of_the_same_keys_leave_a_readable_folder(tmp_path: Path) -> None:
    """Two processes writing the same keys: both succeed, every read is whole, nothing is left
    half written, and the folder reads back afterwards."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-c", WRITER, str(tmp_path), "40"]
    writers = [
        subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for _ in range(2)
    ]  # fmt: skip
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
        assert out.split() == ["ok", "320", "320", "0"]
    assert not list(tmp_path.rglob("*.tmp"))
    disk = store(tmp_path)
    for k in range(8):
        value = torch.full((2000 + k,), float(k), dtype=torch.float64)
        assert torch.equal(disk.get_or_compute([k], lambda: pytest.fail("a miss")), value)
    assert disk.cache.info().entries == 8


# -- the command line and the defaults -------------------------------------------------------


def test_cache_info_and_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "cache"
    disk = store(root)
    for k in range(3):
        disk.get_or_compute([k], lambda: torch.zeros(100))
    size = disk.cache.info().bytes
    capsys.readouterr()
    assert run_cli("cache", "info", "--cache-dir", root, "--cache-size", "1G") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"stage-1 cache: {root}"
    assert out[1:] == ["entries: 3", f"bytes: {size} ({size / 1024:.3g} KiB)",
                       f"bound: {1 << 30} (1 GiB)"]  # fmt: skip
    assert run_cli("cache", "clear", "--cache-dir", root) == 0
    line = capsys.readouterr().out
    assert line == f"stage-1 cache: removed 3 entries ({size / 1024:.3g} KiB) from {root}\n"
    assert run_cli("cache", "info", "--cache-dir", root) == 0
    assert "entries: 0\n" in capsys.readouterr().out
    assert run_cli("cache", "clear", "--cache-dir", "none") == 0
    assert capsys.readouterr().out.startswith("stage-1 cache: off")
    with pytest.raises(SystemExit) as refused:
        run_cli("cache", "info", "--cache-size", "lots")
    assert refused.value.code == 2
    assert "--cache-size" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        run_cli("cache")
    assert refused.value.code == 2


def test_the_default_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_dir() == Path(os.environ[CACHE_DIR_ENV])  # tests never use the user's
    monkeypatch.setenv(CACHE_DIR_ENV, "none")
    assert default_dir() is None
    monkeypatch.delenv(CACHE_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", "/x/cache")
    assert default_dir() == Path("/x/cache/kronos-toto-optimise")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_dir() == Path.home() / ".cache" / "kronos-toto-optimise"
    assert parse_size("20G") == 20 << 30 and parse_size("1.5k") == 1536
    assert parse_size("500MiB") == 500 << 20 and parse_size("123") == 123
