"""Issue 21, item 3: a checkpoint's config is checked against sane bounds and against the
shapes in its weights file's header before any model is built or any weight read; a mismatch
is one line naming the config key (``num_layers`` 10**6 used to grow to 5 GB, ``embed_dim``
10**6 to try to allocate 12 TB)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from safetensors.torch import load_file

import models.kronos.loading as kronos_loading
import models.toto.loading as toto_loading
from models import checkpoint
from models.exceptions import CheckpointError
from models.kronos import load_kronos, load_tokenizer
from models.kronos import write_random_checkpoint as write_kronos
from models.toto import load_model
from models.toto import write_random_checkpoint as write_toto


def forbid_building(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, fail the test if a model is constructed or a weight tensor is read."""

    def built(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a model was built or weights read before the config was checked")

    for module, name in (
        (toto_loading, "TotoModel"),
        (kronos_loading, "Kronos"),
        (kronos_loading, "KronosTokenizer"),
        (checkpoint, "read_weights"),
    ):
        monkeypatch.setattr(module, name, built)


def edit_config(folder: Path, **changes: Any) -> None:
    file = folder / "config.json"
    file.write_text(json.dumps({**json.loads(file.read_text()), **changes}))


def refused(load: Any, folder: Path, match: str) -> str:
    with pytest.raises(CheckpointError, match=match) as info:
        load(folder)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_the_header_gives_every_shape_without_reading_a_tensor(tmp_path: Path) -> None:
    write_toto(tmp_path, "tiny", seed=0)
    shapes = checkpoint.read_shapes(tmp_path)
    tensors = load_file(str(tmp_path / "model.safetensors"))
    assert shapes == {key: tuple(value.shape) for key, value in tensors.items()}


TOTO = {
    "num_layers 10**6": ({"num_layers": 10**6}, r"num_layers must be an integer from 1 to 1024"),
    "embed_dim 10**6": ({"embed_dim": 10**6}, r"embed_dim must be an integer from 1 to 65536"),
    "no heads": ({"num_heads": 0}, r"num_heads must be an integer from 1"),
    "layers as text": ({"num_layers": "2"}, r"num_layers must be an integer .* \(got '2'\)"),
    "more layers than the file": (
        {"num_layers": 4},
        r"config\.json: num_layers 4 does not fit model\.safetensors, which holds 2 layers",
    ),
    "another width": (
        {"embed_dim": 64},
        r"embed_dim 64 does not fit model\.safetensors: wrong shape "
        r"model\.patch_embed\.projection\.weight \(32, 64\) != \(64, 64\)",
    ),
    "another patch": ({"patch_size": 32, "stride": 32}, r"patch_size 32 does not fit"),
    "another feed-forward": ({"mlp_hidden_dim": 128}, r"mlp_hidden_dim 128 does not fit"),
    "more mixture components": (
        {"output_distribution_kwargs": {"k_components": 16}},
        r"output_distribution_kwargs\.k_components 16 does not fit",
    ),
}


@pytest.mark.parametrize("case", list(TOTO))
def test_a_toto_config_that_does_not_fit_is_refused_before_a_model_is_built(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    changes, match = TOTO[case]
    write_toto(tmp_path, "tiny", seed=0)
    edit_config(tmp_path, **changes)
    forbid_building(monkeypatch)
    refused(load_model, tmp_path, match)


KRONOS = {
    "model: s1_bits 40": ("model", {"s1_bits": 40, "s2_bits": 40}, r"s1_bits must be .* 1 to 20"),
    "model: n_layers 10**6": ("model", {"n_layers": 10**6}, r"n_layers must be .* 1 to 1024"),
    "model: d_model 10**6": ("model", {"d_model": 10**6}, r"d_model must be .* 1 to 65536"),
    "model: more layers": (
        "model",
        {"n_layers": 3},
        r"model/config\.json: n_layers 3 does not fit model\.safetensors, which holds 2 layers",
    ),
    "model: wider": (
        "model",
        {"d_model": 64},
        r"d_model 64 does not fit model\.safetensors: wrong shape embedding\.emb_s1\.weight",
    ),
    "model: other bits": ("model", {"s1_bits": 7, "s2_bits": 7}, r"s1_bits 7 does not fit"),
    "tokenizer: group_size 10**8": (
        "tokenizer",
        {"group_size": 10**8},
        r"tokenizer/config\.json: group_size must be an integer from 1 to 40",
    ),
    "tokenizer: more encoder layers": (
        "tokenizer",
        {"n_enc_layers": 5},
        r"n_enc_layers 5 does not fit model\.safetensors, which holds 1 layers encoder\.<i> "
        r"\(4 expected\)",
    ),
    "tokenizer: other input width": ("tokenizer", {"d_in": 7}, r"d_in 7 does not fit"),
    "tokenizer: other feed-forward": ("tokenizer", {"ff_dim": 128}, r"ff_dim 128 does not fit"),
}


@pytest.mark.parametrize("case", list(KRONOS))
def test_a_kronos_config_that_does_not_fit_is_refused_before_a_model_is_built(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    part, changes, match = KRONOS[case]
    write_kronos(tmp_path, "tiny", seed=0)
    edit_config(tmp_path / part, **changes)
    forbid_building(monkeypatch)
    if part == "tokenizer":
        refused(load_tokenizer, tmp_path / "tokenizer", match)
    else:
        refused(load_kronos, tmp_path, match)


def test_fitting_checkpoints_still_load(tmp_path: Path) -> None:
    write_toto(tmp_path / "toto", "tiny", seed=0)
    write_kronos(tmp_path / "kronos", "tiny", seed=0)
    load_model(tmp_path / "toto")
    load_kronos(tmp_path / "kronos")
