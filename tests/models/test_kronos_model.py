"""Parity of our Kronos tokenizer and predictor with kronos-model-arch 0.1.0 (tiny preset).

Fixtures: ``scripts/make_kronos_fixtures.py`` (run with the reference virtualenv).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.exceptions import CheckpointError
from models.kronos import (
    PRESETS,
    PredictorConfig,
    TokenizerConfig,
    load_kronos,
    load_predictor,
    random_models,
    write_random_checkpoint,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kronos"
CASES = ("longer", "shorter", "novolume")
TOL = {"rtol": 1e-5, "atol": 1e-5}


@pytest.fixture(scope="module")
def parity() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "parity.npz") as data:
        return dict(data)


@pytest.fixture(scope="module")
def kronos():
    return load_kronos(FIXTURES / "checkpoint")


def case(parity: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    prefix = f"{name}__"
    return {k.removeprefix(prefix): v for k, v in parity.items() if k.startswith(prefix)}


@pytest.mark.parametrize("name", CASES)
def test_tokenizer_indices_equal_the_reference(parity, kronos, name):
    c = case(parity, name)
    s1, s2 = kronos.tokenizer.encode(torch.from_numpy(c["x"])[None])
    np.testing.assert_array_equal(s1[0].numpy(), c["s1"])
    np.testing.assert_array_equal(s2[0].numpy(), c["s2"])


@pytest.mark.parametrize("name", CASES)
def test_decoded_bars_match_the_reference(parity, kronos, name):
    c = case(parity, name)
    s1, s2 = torch.from_numpy(c["s1"])[None], torch.from_numpy(c["s2"])[None]
    with torch.no_grad():
        decoded = kronos.tokenizer.decode(s1, s2)[0]
    np.testing.assert_allclose(decoded.numpy(), c["decoded"], **TOL)


@pytest.mark.parametrize("name", CASES)
def test_s1_logits_match_the_reference_at_every_position(parity, kronos, name):
    c = case(parity, name)
    mc = int(c["settings"][0])
    s1, s2 = torch.from_numpy(c["s1"])[None, -mc:], torch.from_numpy(c["s2"])[None, -mc:]
    with torch.no_grad():
        hidden = kronos.predictor.hidden(s1, s2, torch.from_numpy(c["stamp"])[None, -mc:])
        logits = kronos.predictor.s1_logits(hidden)[0]
    np.testing.assert_allclose(logits.numpy(), c["s1_logits"], **TOL)


@pytest.mark.parametrize("name", CASES)
def test_s2_logits_given_s1_match_the_reference(parity, kronos, name):
    c = case(parity, name)
    mc = int(c["settings"][0])
    p = kronos.predictor
    s1, s2 = torch.from_numpy(c["s1"])[None, -mc:], torch.from_numpy(c["s2"])[None, -mc:]
    with torch.no_grad():
        hidden = p.hidden(s1, s2, torch.from_numpy(c["stamp"])[None, -mc:])
        cand = torch.from_numpy(c["cand_s1"])[None]  # (1, 4) alternatives
        logits = p.s2_logits(hidden[:, -1], p.dependency_kv(hidden), cand)[0]
    np.testing.assert_allclose(logits.numpy(), c["s2_logits"], **TOL)


@pytest.mark.parametrize("name", CASES)
def test_a_new_token_decoded_from_the_cached_prefix_matches_the_reference(parity, kronos, name):
    c = case(parity, name)
    mc, n = int(c["settings"][0]), len(c["s1"])
    keep = min(n + 1, mc) - 1  # tokens before the new one in upstream's decoded window
    s1 = torch.from_numpy(c["s1"])[None, n - keep :]
    s2 = torch.from_numpy(c["s2"])[None, n - keep :]
    with torch.no_grad():
        prefix = kronos.tokenizer.decode_prefix(s1, s2)
        bars = kronos.tokenizer.decode_next(
            prefix, torch.from_numpy(c["cand_s1"])[None], torch.from_numpy(c["cand_s2"])[None]
        )[0]
    np.testing.assert_allclose(bars.numpy(), c["next_bars"], **TOL)


def test_base_configs_build_from_a_seed_and_run_one_forward_pass():
    predictor, tokenizer = random_models("base", seed=0)
    assert sum(p.numel() for p in predictor.parameters()) > 90_000_000
    x = torch.randn(1, 12, 6)
    stamp = torch.zeros(1, 12, 5)
    with torch.no_grad():
        s1, s2 = tokenizer.encode(x)
        hidden = predictor.hidden(s1, s2, stamp)
        s2_logits = predictor.s2_logits(hidden[:, -1], predictor.dependency_kv(hidden), s1[:, -3:])
        bars = tokenizer.decode_next(tokenizer.decode_prefix(s1, s2), s1[:, -2:], s2[:, -2:])
    assert s1.shape == s2.shape == (1, 12) and int(s1.max()) < 1024
    assert hidden.shape == (1, 12, 832)
    assert predictor.s1_logits(hidden[:, -1]).shape == (1, 1024)
    assert s2_logits.shape == (1, 3, 1024)
    assert bars.shape == (1, 2, 6) and torch.isfinite(bars).all()


def test_the_base_preset_is_the_published_configuration():
    tokenizer, predictor = PRESETS["base"]
    assert (tokenizer.d_model, tokenizer.n_heads, tokenizer.ff_dim) == (256, 4, 512)
    assert (tokenizer.n_enc_layers, tokenizer.n_dec_layers, tokenizer.group_size) == (4, 4, 4)
    assert (predictor.d_model, predictor.n_heads, predictor.n_layers) == (832, 16, 12)
    assert (predictor.ff_dim, predictor.s1_bits, predictor.s2_bits) == (2048, 10, 10)


def test_a_written_random_checkpoint_reloads_to_the_same_weights(tmp_path):
    write_random_checkpoint(tmp_path, "tiny", seed=3)
    loaded = load_kronos(tmp_path)
    predictor, tokenizer = random_models("tiny", seed=3)
    for ours, fresh in ((loaded.predictor, predictor), (loaded.tokenizer, tokenizer)):
        for key, value in fresh.state_dict().items():
            torch.testing.assert_close(ours.state_dict()[key], value, rtol=0, atol=0)
    assert loaded.checkpoint_id == str((tmp_path / "model").resolve())


def test_unknown_config_keys_are_ignored_and_missing_ones_named():
    config = PredictorConfig.from_dict({**PRESETS["tiny"][1].to_dict(), "new_key": 1})
    assert config == PRESETS["tiny"][1]
    raw = PRESETS["tiny"][0].to_dict()
    del raw["d_model"]
    with pytest.raises(CheckpointError, match="lacks d_model"):
        TokenizerConfig.from_dict(raw)


def test_a_checkpoint_with_a_missing_weight_names_the_key(tmp_path):
    write_random_checkpoint(tmp_path, "tiny", seed=0)
    from safetensors.torch import load_file, save_file

    file = tmp_path / "model" / "model.safetensors"
    tensors = load_file(str(file))
    del tensors["head.proj_s2.weight"]
    tensors["extra.weight"] = torch.zeros(2)
    save_file(tensors, str(file))
    with pytest.raises(CheckpointError, match=r"missing \['head.proj_s2.weight'\].*extra.weight"):
        load_predictor(tmp_path / "model")


def test_a_checkpoint_with_a_wrong_shape_names_the_shapes(tmp_path):
    write_random_checkpoint(tmp_path, "tiny", seed=0)
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    (tmp_path / "model" / "config.json").write_text(json.dumps({**config, "ff_dim": 48}))
    with pytest.raises(CheckpointError, match=r"wrong shape.*\(64, 32\) != \(48, 32\)"):
        load_predictor(tmp_path / "model")


def test_a_tokenizer_with_other_bits_than_the_model_is_refused(tmp_path):
    write_random_checkpoint(tmp_path / "tiny", "tiny", seed=0)
    predictor, _ = random_models("tiny", seed=0)
    config = {**PRESETS["tiny"][0].to_dict(), "s1_bits": 5, "s2_bits": 5}
    from models.checkpoint import write
    from models.kronos import KronosTokenizer

    write(tmp_path / "tok5", config, KronosTokenizer(TokenizerConfig(**config)).state_dict())
    with pytest.raises(CheckpointError, match="--tokenizer"):
        load_kronos(tmp_path / "tiny", tmp_path / "tok5")


def test_a_missing_checkpoint_folder_says_what_to_do(tmp_path):
    with pytest.raises(CheckpointError, match="neither an existing folder nor a hub repo id"):
        load_kronos(tmp_path / "nothing" / "here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="config.json is missing"):
        load_predictor(tmp_path / "empty")
