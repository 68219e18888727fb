"""Make the Kronos parity fixtures in ``tests/fixtures/kronos/`` from the reference package.

Run with the reference virtualenv (``kronos-model-arch==0.1.0``), never the project's::

    /work/refvenv/bin/python scripts/make_kronos_fixtures.py [--data ../shared/data/BTCUSD.csv]

It writes a random tiny checkpoint with our ``write_random_checkpoint``, loads it into the
reference ``KronosTokenizer`` / ``Kronos`` (``from_pretrained``, strict), and saves the inputs
(a few hundred real BTCUSD rows) and the reference outputs: tokenizer indices, decoded bars,
s1 logits, s2 logits given s1, decoded next bars, greedy ``KronosPredictor.predict`` forecasts
and the filtered sampling distributions of ``sample_from_logits``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model import Kronos, KronosPredictor, KronosTokenizer  # noqa: E402  (reference package)
from model.kronos import sample_from_logits, top_k_top_p_filtering  # noqa: E402

from models.kronos import write_random_checkpoint  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "kronos"
SEED = 7
PRICE_COLS = ["open", "high", "low", "close"]
# model-level cases: (name, first row, context rows, max_context, clip, with volume)
CASES = [
    ("longer", 1000, 80, 64, 1.85, True),
    ("shorter", 1500, 100, 128, 5.0, True),
    ("novolume", 1800, 64, 64, 0.5, False),
]
# evaluator-level: the first EVAL_ROWS rows, targets, (max_context, clip) settings
EVAL_ROWS = 300
EVAL_TARGETS = np.arange(280, 286)
EVAL_SETTINGS = [(64, 1.85), (300, 3.0)]
# sampling distributions: (temperature, top_k, top_p)
SAMPLING = [(1.0, 0, 0.9), (0.7, 5, 0.5), (1.3, 0, 0.6), (0.152, 20, 0.83), (1.0, 0, 1.0)]
DRAWS = 20000


def reference_normalise(df: pd.DataFrame, clip: float) -> tuple[np.ndarray, ...]:
    """The lines of ``KronosPredictor.predict`` that build and z-score its input."""
    df = df.copy()
    if "volume" not in df.columns:
        df["volume"] = 0.0
        df["amount"] = 0.0
    if "amount" not in df.columns:
        df["amount"] = df["volume"] * df[PRICE_COLS].mean(axis=1)
    x = df[PRICE_COLS + ["volume", "amount"]].values.astype(np.float32)
    mean, std = np.mean(x, axis=0), np.std(x, axis=0)
    x = np.clip((x - mean) / (std + 1e-5), -clip, clip)
    return x, mean, std


def stamps(ts: pd.Series) -> np.ndarray:
    return np.column_stack(
        [ts.dt.minute, ts.dt.hour, ts.dt.day_of_week, ts.dt.day, ts.dt.month]
    ).astype(np.float32)


def frame(rows: pd.DataFrame, with_volume: bool) -> pd.DataFrame:
    cols = PRICE_COLS + (["volume"] if with_volume else [])
    return rows[cols].reset_index(drop=True)


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "BTCUSD.csv"))
    args = parser.parse_args()
    raw = pd.read_csv(args.data)
    raw["timestamp"] = pd.to_datetime(raw["timestamp"], utc=True).dt.tz_localize(None)

    ckpt = OUT / "checkpoint"
    write_random_checkpoint(ckpt, "tiny", SEED)
    tok = KronosTokenizer.from_pretrained(str(ckpt / "tokenizer"), strict=True).eval()
    model = Kronos.from_pretrained(str(ckpt / "model"), strict=True).eval()
    v1, v2 = 2**model.s1_bits, 2**model.s2_bits
    out: dict[str, np.ndarray] = {}

    for name, start, length, mc, clip, with_volume in CASES:
        rows = raw.iloc[start : start + length + 1]
        df = frame(rows.iloc[:length], with_volume)
        ts = rows["timestamp"].reset_index(drop=True)
        x, _, _ = reference_normalise(df, clip)
        x_stamp = stamps(ts[:length])
        s1, s2 = tok.encode(torch.from_numpy(x)[None], half=True)  # (1, L) each
        decoded = tok.decode([s1, s2], half=True)[0]  # (L, 6)
        w = min(length, mc)
        logits, context = model.decode_s1(
            s1[:, -w:], s2[:, -w:], torch.from_numpy(x_stamp[-w:])[None]
        )
        cand1 = torch.tensor([int(logits[0, -1].argmax()), 0, v1 - 1, 17 % v1])
        cand2 = torch.tensor([3, 0, v2 - 1, 9 % v2])
        s2_logits = model.decode_s2(context.repeat(len(cand1), 1, 1), cand1[:, None])[:, -1]
        full1 = torch.cat([s1.repeat(len(cand1), 1), cand1[:, None]], dim=1)[:, -mc:]
        full2 = torch.cat([s2.repeat(len(cand2), 1), cand2[:, None]], dim=1)[:, -mc:]
        next_bars = tok.decode([full1, full2], half=True)[:, -1]  # (4, 6)
        predictor = KronosPredictor(model, tok, device="cpu", max_context=mc, clip=clip)
        greedy = predictor.predict(
            df, ts[:length], ts[length:], pred_len=1, T=0.5, top_k=1, top_p=0.9,
            sample_count=4, verbose=False,
        ).values[0]  # fmt: skip
        prices = rows[PRICE_COLS].to_numpy()[:length]
        volume = rows["volume"].to_numpy()[:length] if with_volume else np.full(length, np.nan)
        arrays = {
            "prices": prices, "volume": volume,
            "timestamps": ts.to_numpy().astype("datetime64[ns]").astype(np.int64),
            "settings": np.array([mc, clip, float(with_volume)]), "x": x, "stamp": x_stamp,
            "s1": s1[0].numpy(), "s2": s2[0].numpy(), "decoded": decoded.numpy(),
            "s1_logits": logits[0].numpy(), "cand_s1": cand1.numpy(), "cand_s2": cand2.numpy(),
            "s2_logits": s2_logits.numpy(), "next_bars": next_bars.numpy(), "greedy": greedy,
        }  # fmt: skip
        out.update({f"{name}__{k}": np.asarray(v) for k, v in arrays.items()})

    rows = raw.iloc[:EVAL_ROWS]
    out["eval__prices"] = rows[PRICE_COLS].to_numpy()
    out["eval__volume"] = rows["volume"].to_numpy()
    out["eval__timestamps"] = rows["timestamp"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    out["eval__targets"] = EVAL_TARGETS
    out["eval__settings"] = np.array(EVAL_SETTINGS, dtype=np.float64)
    forecasts = []
    for mc, clip in EVAL_SETTINGS:
        predictor = KronosPredictor(model, tok, device="cpu", max_context=512, clip=clip)
        predictor.max_context = mc
        bars = []
        for i in EVAL_TARGETS:
            ctx = rows.iloc[max(0, i - mc) : i]
            ts = rows["timestamp"].iloc[max(0, i - mc) : i + 1].reset_index(drop=True)
            pred = predictor.predict(
                frame(ctx, True), ts[:-1], ts[-1:], pred_len=1, T=1.0, top_k=1, top_p=1.0,
                sample_count=3, verbose=False,
            )  # fmt: skip
            bars.append(pred.values[0])
        forecasts.append(np.stack(bars))
    out["eval__greedy"] = np.stack(forecasts)  # (settings, targets, 6)

    logits = torch.from_numpy(out["longer__s1_logits"][-1]).float()  # (V1,)
    out["sampling__logits"] = logits.numpy()
    out["sampling__settings"] = np.array(SAMPLING, dtype=np.float64)
    probs, counts = [], []
    torch.manual_seed(SEED)
    for temperature, top_k, top_p in SAMPLING:
        filtered = (logits / temperature)[None].clone()
        if top_k > 0 or top_p < 1.0:  # as sample_from_logits does
            filtered = top_k_top_p_filtering(filtered, top_k, top_p)
        probs.append(torch.softmax(filtered, dim=-1)[0].numpy())
        draws = sample_from_logits(
            logits[None].repeat(DRAWS, 1), temperature=temperature, top_k=top_k, top_p=top_p
        )
        counts.append(np.bincount(draws[:, 0].numpy(), minlength=len(logits)))
    out["sampling__probs"] = np.stack(probs)
    out["sampling__counts"] = np.stack(counts)

    # numpy's stubs match **kwds against allow_pickle: bool as well as the arrays
    np.savez_compressed(OUT / "parity.npz", **out)  # type: ignore[arg-type]
    print(f"wrote {OUT / 'parity.npz'} and {ckpt}")


if __name__ == "__main__":
    main()
