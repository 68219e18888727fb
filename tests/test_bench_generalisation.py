"""The pure parts of bench/bench_generalisation.py: sign test, regret, protocol tags and the
period cut (no model runs)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

from objectives.bars import load_bars
from objectives.windows import WindowSpec, split

REPO = Path(__file__).resolve().parents[1]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_generalisation", REPO / "bench" / "bench_generalisation.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = _bench()


def test_sign_test_matches_the_binomial() -> None:
    assert bench.sign_test(0, 0) == 1.0
    assert bench.sign_test(3, 3) == 1.0
    assert bench.sign_test(5, 0) == pytest.approx(2 / 32)
    assert bench.sign_test(0, 5) == pytest.approx(2 / 32)
    # 9 of 10: P(X <= 1) = 11 / 1024, two-sided
    assert bench.sign_test(9, 1) == pytest.approx(22 / 1024)
    assert bench.sign_test(6, 0) < 0.05 < bench.sign_test(5, 0)


def test_compare_counts_ties_apart() -> None:
    out = bench.compare([1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 1.0, 5.0])
    assert (out["wins"], out["losses"], out["ties"]) == (2, 1, 1)
    assert out["p"] == pytest.approx(bench.sign_test(2, 1))


def test_relative_regret() -> None:
    assert bench.relative_regret(1.1, 1.0) == pytest.approx(0.1)
    assert bench.relative_regret(1.0, 1.0) == 0.0
    assert bench.relative_regret(0.0, 0.0) == 0.0
    assert bench.relative_regret(1.0, 0.0) == math.inf


@pytest.mark.parametrize("tag", ["v20", "v60", "v120", "v20x3s116"])
def test_protocol_tags_round_trip(tag: str) -> None:
    proto = bench.Protocol.parse(tag)
    assert proto.tag == tag
    spec = WindowSpec(val_window=proto.window, val_blocks=proto.blocks, val_step=proto.step)
    assert spec.protocol.tag == tag


def test_protocol_flags() -> None:
    assert bench.Protocol.parse("v60").flags() == ["--val-window", "60"]
    assert bench.Protocol.parse("v20x3s116").flags() == [
        "--val-window", "20", "--val-blocks", "3", "--val-step", "116"
    ]  # fmt: skip
    with pytest.raises(ValueError):
        bench.Protocol.parse("20")


@pytest.mark.parametrize("period", range(6))
@pytest.mark.parametrize("tag", ["v20", "v120", "v20x3s116"])
def test_period_cut_never_leaks_bars_past_its_end(tmp_path: Path, period: int, tag: str) -> None:
    source = REPO / "trainingdata" / "AAPL.csv"
    rows = source.read_text().splitlines()[1:]
    drop = period * 20
    end = bench.truncate_csv(source, tmp_path / "AAPL.csv", drop)
    kept = (tmp_path / "AAPL.csv").read_text().splitlines()
    assert kept[0] == source.read_text().splitlines()[0]
    assert kept[1:] == rows[: len(rows) - drop]  # a prefix, byte for byte
    assert end == rows[len(rows) - drop - 1].split(",")[0]
    assert all(line.split(",")[0] <= end for line in kept[1:])
    # the study's windows lie inside the cut: its test window is the last 20 kept bars,
    # the next period's test window the 20 bars after them
    bars = load_bars(tmp_path, "AAPL")
    proto = bench.Protocol.parse(tag)
    spec = WindowSpec(val_window=proto.window, val_blocks=proto.blocks, val_step=proto.step)
    windows = split(len(bars.close), spec)
    assert windows.test_end == len(rows) - drop
    assert windows.validation_end <= windows.test[0]


def test_period_cut_refuses_to_drop_everything(tmp_path: Path) -> None:
    source = REPO / "trainingdata" / "AAPL.csv"
    with pytest.raises(ValueError):
        bench.truncate_csv(source, tmp_path / "AAPL.csv", 600)


def _row(symbol: str, period: int, protocol: str, best: float, default: float) -> dict:
    chosen = "winner" if best < default else "default"
    return {
        "preset": "tiny", "model": "toto", "symbol": symbol, "period": period,
        "protocol": protocol, "dii_chosen": chosen, "wall_s": 2.0,
        "test": {"best": best, "default-if-insignificant": best if chosen == "winner" else default,
                 "default": default, "grid_best": default, "naive": 0.5,
                 "grid_hindsight": min(best, default)},
    }  # fmt: skip


def test_summary_and_table_of_rows() -> None:
    rows = [_row(s, p, "v20", 0.9, 1.0) for s in ("A", "B", "C") for p in range(2)]
    rows += [_row(s, p, "v60", 1.1, 1.0) for s in ("A", "B", "C") for p in range(2)]
    arms = {(s["protocol"], s["select"]): s for s in bench.summary(rows)}
    assert arms["v20", "best"]["vs_default"] == {"wins": 6, "losses": 0, "ties": 0, "p": 2 / 64}
    assert arms["v60", "best"]["mean_regret"] == pytest.approx(0.1)
    assert arms["v60", "default-if-insignificant"]["vs_default"]["ties"] == 6
    pairs = {(p["a"], p["b"]): p for p in bench.head_to_head(rows)}
    assert pairs[("v20", "best"), ("v60", "best")]["wins"] == 6
    text = bench.table(rows)
    assert "| tiny | toto | v20 | best | 6 (3 x 2) | 6-0-0 (p 0.031) |" in text
