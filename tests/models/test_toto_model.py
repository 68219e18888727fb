"""Toto: parity with toto-ts 0.2.0 on committed fixtures, the base config, and loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from models.exceptions import CheckpointError
from models.toto import (
    PRESETS,
    TotoConfig,
    TotoModel,
    left_pad,
    load_model,
    random_model,
    write_random_checkpoint,
)
from models.toto.loading import write_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "toto"
TINY = FIXTURES / "tiny"
PARITY = load_file(str(FIXTURES / "parity.safetensors"))
CAP = 256  # the context cap the fixture script applied
LENGTHS = sorted({int(k.split(".")[0][3:]) for k in PARITY})
FIELDS = ("weights", "df", "loc", "scale")


@pytest.fixture(scope="module")
def tiny() -> TotoModel:
    return load_model(TINY)


def forward(model: TotoModel, contexts: list[torch.Tensor]):
    series, mask = left_pad(contexts, model.config.patch_size)
    return model(series, mask)


def test_fixture_covers_short_unaligned_aligned_and_capped_contexts() -> None:
    assert min(LENGTHS) < 64 and any(n % 64 for n in LENGTHS) and max(LENGTHS) > CAP


@pytest.mark.parametrize("length", LENGTHS)
def test_next_patch_matches_the_reference_within_1e_5(tiny: TotoModel, length: int) -> None:
    context = PARITY[f"len{length}.series"][-CAP:]
    out = forward(tiny, [context])
    for index, name in enumerate(FIELDS):
        ours = out.mixture[index][0, 0]  # (patch, k)
        torch.testing.assert_close(ours, PARITY[f"len{length}.{name}"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.loc[0], PARITY[f"len{length}.scaler_loc"], atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(
        out.scale[0], PARITY[f"len{length}.scaler_scale"], atol=1e-5, rtol=1e-6
    )


def test_contexts_of_equal_padded_length_give_the_same_result_batched(tiny: TotoModel) -> None:
    contexts = [PARITY["len100.series"], PARITY["len128.series"], PARITY["len100.series"][:70]]
    batched = forward(tiny, contexts)
    for row, context in enumerate(contexts):
        alone = forward(tiny, [context])
        for a, b in zip(batched.mixture, alone.mixture, strict=True):
            torch.testing.assert_close(a[row], b[0], atol=1e-5, rtol=5e-5)  # float32 rounding


def test_left_pad_puts_zeros_and_a_false_mask_on_the_left() -> None:
    series, mask = left_pad([torch.arange(1.0, 4.0)], 64)
    assert series.shape == mask.shape == (1, 1, 64)
    assert mask.sum() == 3 and bool(mask[0, 0, -3:].all())
    assert series[0, 0, -3:].tolist() == [1.0, 2.0, 3.0] and series[0, 0, :-3].abs().sum() == 0


def test_base_preset_is_the_published_toto_open_base_config() -> None:
    base = PRESETS["base"]
    published = {
        "patch_size": 64,
        "stride": 64,
        "embed_dim": 768,
        "num_layers": 12,
        "num_heads": 12,
        "mlp_hidden_dim": 3072,
        "spacewise_every_n_layers": 12,
        "output_distribution_kwargs": {"k_components": 24},
        "scaler_cls": "<class 'model.scaler.CausalPatchStdMeanScaler'>",
        "output_distribution_classes": ["<class 'model.distribution.MixtureOfStudentTsOutput'>"],
    }
    assert {k: base.to_dict()[k] for k in published} == published
    assert [base.layer_is_spacewise(i) for i in range(12)] == [False] * 11 + [True]


def test_base_config_builds_from_a_seed_and_runs_a_forward_pass() -> None:
    model = random_model(PRESETS["base"], seed=3)
    assert sum(p.numel() for p in model.parameters()) > 150_000_000
    out = forward(model, [torch.linspace(10.0, 20.0, 80)])
    assert all(t.shape == (1, 1, 64, 24) for t in out.mixture)
    assert out.loc.shape == out.scale.shape == (1, 1)
    assert all(bool(t.isfinite().all()) for t in out.mixture)
    torch.testing.assert_close(out.mixture.weights.sum(-1), torch.ones(1, 1, 64))


def test_fused_and_unfused_feed_forward_keys_load_the_same_weights(tmp_path: Path) -> None:
    model = random_model(PRESETS["tiny"], seed=7)
    write_model(model, tmp_path / "fused", fused=True)
    write_model(model, tmp_path / "unfused", fused=False)
    fused_keys = load_file(str(tmp_path / "fused" / "model.safetensors"))
    unfused_keys = load_file(str(tmp_path / "unfused" / "model.safetensors"))
    assert "model.transformer.layers.0.mlp.0.w12.weight" in fused_keys
    assert "model.transformer.layers.0.mlp.2.weight" in unfused_keys
    a, b = load_model(tmp_path / "fused"), load_model(tmp_path / "unfused")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)


def test_written_checkpoint_has_published_keys_and_reloads_identically(tmp_path: Path) -> None:
    write_random_checkpoint(tmp_path, "tiny", seed=0)
    assert (
        load_file(str(tmp_path / "model.safetensors")).keys()
        == load_file(str(TINY / "model.safetensors")).keys()
    )
    config = json.loads((tmp_path / "config.json").read_text())
    assert TotoConfig.from_dict(config) == PRESETS["tiny"]
    reloaded, original = load_model(tmp_path), random_model(PRESETS["tiny"], seed=0)
    for key, value in original.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key


def test_unknown_config_keys_are_ignored_and_rotary_constants_skipped(tmp_path: Path) -> None:
    write_random_checkpoint(tmp_path, "tiny", seed=1)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "transformers_version": "4.49"}))
    tensors = load_file(str(tmp_path / "model.safetensors"))
    tensors["model.transformer.rotary_emb.freqs"] = torch.ones(8)
    save_file(tensors, str(tmp_path / "model.safetensors"))
    load_model(tmp_path)


def test_bf16_runs_and_stays_close_to_fp32(tiny: TotoModel) -> None:
    low = load_model(TINY, dtype=torch.bfloat16)
    context = PARITY["len100.series"]
    a, b = forward(tiny, [context]), forward(low, [context.bfloat16()])
    assert b.mixture.loc.dtype == torch.bfloat16
    torch.testing.assert_close(b.mixture.loc.float(), a.mixture.loc, atol=0.1, rtol=0.05)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(tiny: TotoModel) -> None:
    gpu = load_model(TINY, device="cuda")
    context = PARITY["len300.series"][-CAP:]
    series, mask = left_pad([context], 64)
    out = gpu(series.cuda(), mask.cuda())
    torch.testing.assert_close(out.mixture.loc.cpu(), forward(tiny, [context]).mixture.loc)


def broken_copy(tmp_path: Path, edit) -> Path:
    write_random_checkpoint(tmp_path, "tiny", seed=2)
    tensors = load_file(str(tmp_path / "model.safetensors"))
    edit(tensors)
    save_file(tensors, str(tmp_path / "model.safetensors"))
    return tmp_path


def test_a_missing_tensor_is_named(tmp_path: Path) -> None:
    folder = broken_copy(tmp_path, lambda t: t.pop("model.unembed.bias"))
    with pytest.raises(CheckpointError, match="missing.*unembed.bias"):
        load_model(folder)


def test_a_wrong_shape_is_named(tmp_path: Path) -> None:
    def shrink(tensors: dict) -> None:
        tensors["model.output_distribution.df.weight"] = torch.zeros(3, 32)

    with pytest.raises(CheckpointError, match=r"wrong shape.*head\.df\.weight \(3, 32\)"):
        load_model(broken_copy(tmp_path, shrink))


def test_an_unexpected_tensor_is_named(tmp_path: Path) -> None:
    folder = broken_copy(tmp_path, lambda t: t.update({"model.extra.weight": torch.zeros(1)}))
    with pytest.raises(CheckpointError, match="unexpected.*model.extra.weight"):
        load_model(folder)


def test_fused_and_unfused_copies_of_one_tensor_are_refused(tmp_path: Path) -> None:
    def both(tensors: dict) -> None:
        key = "model.transformer.layers.0.mlp.0.w12.weight"
        tensors["model.transformer.layers.0.mlp.0.weight"] = tensors[key].clone()

    with pytest.raises(CheckpointError, match="fused and unfused"):
        load_model(broken_copy(tmp_path, both))


def test_missing_files_say_which(tmp_path: Path) -> None:
    write_random_checkpoint(tmp_path, "tiny", seed=2)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors is missing"):
        load_model(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json is missing"):
        load_model(tmp_path)


def test_an_unsupported_config_is_refused(tmp_path: Path) -> None:
    write_random_checkpoint(tmp_path, "tiny", seed=2)
    config = json.loads((tmp_path / "config.json").read_text())
    config["scaler_cls"] = "<class 'model.scaler.StdMeanScaler'>"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="not supported"):
        load_model(tmp_path)


def test_unknown_preset_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown Toto preset"):
        write_random_checkpoint(tmp_path, "huge", seed=0)
