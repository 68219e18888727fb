"""Write Toto parity fixtures from the reference implementation (``toto-ts==0.2.0``).

Run with the reference virtualenv (never a dependency of the project)::

    /work/refvenv/bin/python scripts/make_toto_fixtures.py

Writes into ``tests/fixtures/toto/``:

* ``tiny/``: a random checkpoint of our ``tiny`` preset in the published format (fused keys),
  written by our code and loaded into the reference ``Toto`` with its own loader;
* ``parity.safetensors``: for contexts of several lengths (shorter than a patch, not a
  multiple of 64, a multiple of 64, longer than a context cap of 256), the context and the
  reference's next-patch mixture (weights, df, loc, scale: ``(64, k)``) and scaler loc/scale;
* ``samples.safetensors``: two price series and 20,000 reference forecaster samples of the
  next close for each (``TotoForecaster.forecast``, prediction length 1).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.simplefilter("ignore")

from toto.data.util.dataset import MaskedTimeseries, pad_array  # noqa: E402
from toto.inference.forecaster import TotoForecaster  # noqa: E402
from toto.model.toto import Toto  # noqa: E402

from models.toto import write_random_checkpoint  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "toto"
SEED = 0
CAP = 256
LENGTHS = (10, 100, 128, 300)  # 300 is cut to the last CAP values
SAMPLE_LENGTHS = (150, 400)
NUM_SAMPLES = 20_000


def price_series(length: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.tensor(100.0 * np.exp(np.cumsum(0.02 * rng.standard_normal(length))))


def reference_next_patch(model: Toto, context: torch.Tensor) -> dict[str, torch.Tensor]:
    backbone = model.model
    patch = backbone.patch_embed.patch_size
    series = pad_array(context.float()[None, None], patch)  # (1, 1, T)
    mask = pad_array(torch.ones(1, 1, len(context), dtype=torch.bool), patch)
    with torch.no_grad():
        out = backbone(series, mask, torch.zeros_like(series, dtype=torch.int))
    mixture = out.distribution
    components = mixture.component_distribution
    last = slice(-patch, None)
    return {
        "weights": mixture.mixture_distribution.probs[0, 0, last],
        "df": components.df[0, 0, last],
        "loc": components.loc[0, 0, last],
        "scale": components.scale[0, 0, last],
        "scaler_loc": out.loc[0, 0, -1:],
        "scaler_scale": out.scale[0, 0, -1:],
    }


def reference_samples(model: Toto, context: torch.Tensor) -> torch.Tensor:
    series = context.float()[None]  # (1, L)
    inputs = MaskedTimeseries(
        series=series,
        padding_mask=torch.ones_like(series, dtype=torch.bool),
        id_mask=torch.zeros_like(series),
        timestamp_seconds=torch.zeros_like(series),
        time_interval_seconds=torch.full((1,), 86_400),
    )
    torch.manual_seed(SEED)
    forecast = TotoForecaster(model.model).forecast(
        inputs, prediction_length=1, num_samples=NUM_SAMPLES, samples_per_batch=1000
    )
    return forecast.samples[0, 0, 0]  # (NUM_SAMPLES,)


def main() -> None:
    folder = OUT / "tiny"
    write_random_checkpoint(folder, "tiny", SEED)
    model = Toto.load_from_checkpoint(str(folder), map_location="cpu").eval()

    tensors: dict[str, torch.Tensor] = {}
    for length in LENGTHS:
        full = price_series(length, seed=length)
        context = full[-CAP:]
        tensors[f"len{length}.series"] = full.float()
        for name, value in reference_next_patch(model, context).items():
            tensors[f"len{length}.{name}"] = value.contiguous()
    save_file(tensors, str(OUT / "parity.safetensors"), metadata={"cap": str(CAP)})

    samples: dict[str, torch.Tensor] = {}
    for length in SAMPLE_LENGTHS:
        series = price_series(length, seed=1000 + length)
        samples[f"len{length}.series"] = series.float()
        samples[f"len{length}.samples"] = reference_samples(model, series).contiguous()
    save_file(samples, str(OUT / "samples.safetensors"))
    (OUT / "README.md").write_text(
        "Written by `scripts/make_toto_fixtures.py` from toto-ts 0.2.0; do not edit.\n\n"
        + json.dumps({"seed": SEED, "cap": CAP, "lengths": LENGTHS, "samples": NUM_SAMPLES})
        + "\n"
    )


if __name__ == "__main__":
    main()
