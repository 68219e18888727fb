"""The symbol-making part of bench/bench_sweep.py: disjoint stretches of the real series, the
held-back row is the stretch's next real row, a smaller run is a spread subset (no model runs)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from objectives.bars import load_bars
from objectives.windows import WindowSpec, split

REPO = Path(__file__).resolve().parents[1]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_sweep", REPO / "bench" / "bench_sweep.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _sources(bench: ModuleType) -> tuple[str, dict[str, list[str]]]:
    paths = {k: v for k, v in bench.SOURCES.items() if v.exists()}  # ../shared may be absent
    return bench.read_sources(paths)


def test_stretches_are_disjoint_and_hold_back_the_next_real_row() -> None:
    bench = _bench()
    _, sources = _sources(bench)
    length = bench.longest_length([len(v) for v in sources.values()], 10)
    stretches = bench.slice_stretches(sources, length)
    assert len(stretches) >= 10
    assert sum(len(v) // (length + 2) for v in sources.values()) < 10  # the longest
    taken: dict[str, set[int]] = {}
    for s in stretches:
        lines = sources[s.source]
        assert len(s.rows) == length
        assert list(s.rows) == lines[s.start : s.start + length]
        assert s.held == lines[s.start + length]  # the next real row
        rows = set(range(s.start, s.stop))
        assert not rows & taken.get(s.source, set()), s.symbol
        taken.setdefault(s.source, set()).update(rows)
    assert len({s.symbol for s in stretches}) == len(stretches)


def test_written_symbols_load_and_the_append_is_one_later_bar(tmp_path: Path) -> None:
    bench = _bench()
    header, sources = _sources(bench)
    length = 59
    stretches = bench.spread(bench.slice_stretches(sources, length), 3)
    assert len({s.source for s in stretches}) >= 2 or len(sources) == 1  # spread, not a prefix
    bench.write_symbols(tmp_path, header, stretches)
    spec = WindowSpec(min_context=length - 40)
    before = {s.symbol: load_bars(tmp_path, s.symbol) for s in stretches}
    for bars in before.values():
        assert len(bars) == length
        split(len(bars), spec)  # long enough for the launch's windows
    bench.append_held(tmp_path, stretches)
    for s in stretches:
        after = load_bars(tmp_path, s.symbol)
        assert len(after) == length + 1
        assert after.fingerprint(length) == before[s.symbol].fingerprint(length)  # only grew
        assert after.timestamps[-1] > before[s.symbol].timestamps[-1]
        assert (tmp_path / f"{s.symbol}.csv").read_text().splitlines()[-1] == s.held
