"""Supernet: declarative space, importance reordering, sliced forward, extraction, sandwich training."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

import numpy as np
import optuna
import pytest
import torch
import transformers

from nas.spec import SearchSpaceSpec
from core.types import SubnetConfig
from search_spaces.bert.extract import count_parameters, extract_standalone, save_standalone
from search_spaces.bert.importance import apply_order, reorder_by_importance
from search_spaces.bert.space import BertSpace, UniformBertSpace
from search_spaces.bert.supernet import SlicedSubnet, sliced_forward

BASE = SimpleNamespace(num_hidden_layers=4, num_attention_heads=4, intermediate_size=64, hidden_size=32, vocab_size=100)


@pytest.fixture(scope="module")
def model() -> transformers.BertForQuestionAnswering:
    torch.manual_seed(0)
    cfg = transformers.BertConfig(
        vocab_size=2048, hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=64,
    )
    return transformers.BertForQuestionAnswering(cfg).eval()


@pytest.fixture(scope="module")
def inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 100, (3, 24), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 15:] = 0
    types = torch.zeros_like(ids)
    types[:, 10:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


SUBNETS = [
    SubnetConfig((0, 1, 2, 3), (4,) * 4, (64,) * 4),  # the whole model
    SubnetConfig((0, 3), (4, 4), (32, 32)),  # uniform, every head: plain BERT
    SubnetConfig((0, 2), (2, 2), (16, 16)),  # uniform, fewer heads: hwnas class
    SubnetConfig((1, 2, 3), (1, 3, 4), (48, 16, 64)),  # per-layer widths
    SubnetConfig((0, 1, 3), (2, 1, 2), (16, 32, 8), hidden=16),  # smaller hidden size
]


# -- space ---------------------------------------------------------------------------------------


def test_spec_accepts_ranges_and_keeps_old_specs() -> None:
    old = SearchSpaceSpec(layers=[4, 2], heads=[6, 12], ffn=[384])
    assert old.layers == [2, 4] and old.per_layer is False and old.hidden is None and old.size() == 4
    new = SearchSpaceSpec.model_validate(
        {"layers": {"min": 2, "max": 6, "step": 2}, "heads": [2, 4], "ffn": {"min": 16, "max": 64, "step": 16}, "per_layer": True}
    )
    assert new.layers == [2, 4, 6] and new.ffn == [16, 32, 48, 64]
    for bad in ({"layers": {"min": 3, "max": 1}}, {"heads": {"min": 1, "max": 4, "step": 0}}, {"ffn": {"max": 4}}, {"heads": [0]}):
        with pytest.raises(ValueError):
            SearchSpaceSpec.model_validate({"layers": [2], "heads": [2], "ffn": [16], **bad})


def test_space_checks_bounds_against_the_base_and_names_the_field() -> None:
    spec = {"layers": [2, 4], "heads": [2, 4], "ffn": [16, 64]}
    BertSpace.from_spec(spec, BASE)
    for change, field in (
        ({"layers": [5]}, "search_space.layers"),
        ({"heads": [8]}, "search_space.heads"),
        ({"ffn": [128]}, "search_space.ffn"),
        ({"hidden": [64]}, "search_space.hidden"),
        ({"hidden": [12]}, "search_space.hidden"),  # not a multiple of the head size (8)
        ({"layer_selection": "middle"}, "search_space.layer_selection"),
    ):
        with pytest.raises(ValueError, match=field.replace(".", r"\.")):
            BertSpace.from_spec(spec | change, BASE)
    # The job-facing entry point (coordinator, submission) builds the same space.
    assert isinstance(UniformBertSpace.from_spec(SearchSpaceSpec(**spec), BASE), BertSpace)


def test_narrowing_a_supernet_space() -> None:
    outer = BertSpace.from_spec({"layers": [1, 2, 4], "heads": [1, 2, 4], "ffn": [16, 32, 64], "per_layer": True}, BASE)
    BertSpace.from_spec({"layers": [2, 4], "heads": [2], "ffn": [32, 64]}, BASE).check_within(outer)
    with pytest.raises(ValueError, match="search_space.heads"):
        BertSpace.from_spec({"layers": [2], "heads": [3], "ffn": [32]}, BASE).check_within(outer)


def test_per_layer_sampling_and_stable_encoding() -> None:
    space = BertSpace.from_spec(
        {"layers": [2, 3], "heads": [1, 2, 4], "ffn": [16, 64], "hidden": [16, 32], "per_layer": True, "layer_selection": "search"},
        BASE,
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        sub = space.sample(trial)
        assert space.contains(sub)
        assert len(sub.heads) == trial.params["layers"] and all(f"heads_{i}" in trial.params for i in sub.layers)
        seen.add(sub.encoding())
        study.tell(trial, 0.0)
    assert len(seen) > 20
    assert any(not s.endswith("/H16") for s in seen) and any(s.endswith("/H16") for s in seen)
    sub = SubnetConfig((0, 2), (2, 4), (16, 64), hidden=16)
    assert sub.encoding() == "L0:2x16-2:4x64/H16"
    assert SubnetConfig.from_dict(json.loads(json.dumps(sub.to_dict()))) == sub
    assert SubnetConfig((0,), (2,), (16,)).encoding() == "L0:2x16", "encodings without hidden are unchanged"
    rng = random.Random(0)
    assert all(space.contains(space.random_subnet(rng)) for _ in range(50))
    assert space.size() == 2 * sum(
        {2: 6, 3: 4}[n] * 6**n for n in (2, 3)
    )


def test_parameters_and_macs(model) -> None:  # type: ignore[no-untyped-def]
    space = BertSpace.from_spec({"layers": [1, 4], "heads": [1, 4], "ffn": [8, 64], "per_layer": True}, model.config)
    for sub in SUBNETS:
        assert space.parameters(sub) == count_parameters(extract_standalone(model, sub)), sub
    assert space.parameters(SUBNETS[0]) == count_parameters(model)
    full, small = space.macs(SUBNETS[0], 128), space.macs(SUBNETS[2], 128)
    h, s = 32, 128
    assert full == 4 * (3 * s * h * h + 2 * s * s * h + s * h * h + 2 * s * h * 64) + s * h * 2
    assert small < full and space.macs(SUBNETS[0], 256) > 2 * full


# -- importance reordering -----------------------------------------------------------------------


def _logits(m, inputs):  # type: ignore[no-untyped-def]
    with torch.no_grad():
        out = m(**inputs)
    return out.start_logits, out.end_logits


def test_reordering_keeps_the_function_and_puts_important_units_first(model, inputs) -> None:  # type: ignore[no-untyped-def]
    import copy

    before = _logits(model, inputs)
    permuted = copy.deepcopy(model)
    g = torch.Generator().manual_seed(0)
    apply_order(permuted, [torch.randperm(4, generator=g) for _ in range(4)], [torch.randperm(64, generator=g) for _ in range(4)])
    assert not torch.equal(permuted.bert.encoder.layer[0].intermediate.dense.weight, model.bert.encoder.layer[0].intermediate.dense.weight)
    after = _logits(permuted, inputs)
    assert torch.allclose(before[0], after[0], atol=1e-5) and torch.allclose(before[1], after[1], atol=1e-5)

    batch = {
        **{k: v.numpy() for k, v in inputs.items()},
        "start_positions": np.array([3, 5, 12]),
        "end_positions": np.array([4, 9, 13]),
    }
    reordered = copy.deepcopy(model)
    orders = reorder_by_importance(reordered, [batch, batch])
    assert sorted(orders["heads"][0]) == list(range(4)) and sorted(orders["ffn"][2]) == list(range(64))
    again = _logits(reordered, inputs)
    assert torch.allclose(before[0], again[0], atol=1e-5) and torch.allclose(before[1], again[1], atol=1e-5)
    # After reordering, the importance scores are non-increasing along each layer.
    from search_spaces.bert.importance import compute_importance

    heads, ffn = compute_importance(reordered, [batch, batch])
    for h, f in zip(heads, ffn):
        assert torch.all(h[:-1] >= h[1:] - 1e-6) and torch.all(f[:-1] >= f[1:] - 1e-6)


# -- sliced forward and extraction -------------------------------------------------------------


def test_full_slice_is_the_hf_model(model, inputs) -> None:  # type: ignore[no-untyped-def]
    ref = _logits(model, inputs)
    with torch.no_grad():
        start, end = sliced_forward(model, SUBNETS[0], **inputs)
    assert (start - ref[0]).abs().max() < 1e-5 and (end - ref[1]).abs().max() < 1e-5


@pytest.mark.parametrize("sub", SUBNETS, ids=lambda s: s.encoding())
def test_extracted_model_equals_sliced_forward_and_reloads(model, inputs, sub, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with torch.no_grad():
        start, end = sliced_forward(model, sub, **inputs)
    small = extract_standalone(model, sub)
    plain = sub.uniform and sub.heads[0] == 4 and sub.hidden is None
    assert type(small).__name__ == ("BertForQuestionAnswering" if plain else "HwnasBertForQuestionAnswering")
    got = _logits(small, inputs)
    assert (got[0] - start).abs().max() < 1e-4 and (got[1] - end).abs().max() < 1e-4
    save_standalone(small, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    if not plain:
        assert (tmp_path / "modeling_hwnas_bert.py").is_file()
        assert config["auto_map"]["AutoModelForQuestionAnswering"] == "modeling_hwnas_bert.HwnasBertForQuestionAnswering"
    loaded = transformers.AutoModelForQuestionAnswering.from_pretrained(tmp_path, trust_remote_code=True).eval()
    if not plain:  # loaded from the directory's own file, not from hwnas's package
        assert type(loaded).__module__ != "search_spaces.bert.modeling_hwnas_bert"
    again = _logits(loaded, inputs)
    assert (again[0] - start).abs().max() < 1e-4 and (again[1] - end).abs().max() < 1e-4


def test_per_layer_model_converts_to_openvino(model, inputs) -> None:  # type: ignore[no-untyped-def]
    import openvino as ov

    from workers.export import to_openvino

    sub = SUBNETS[4]
    small = extract_standalone(model, sub)
    compiled = ov.Core().compile_model(to_openvino(small, seq_len=24), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    out = compiled({k: v.numpy() for k, v in inputs.items()})
    ref = _logits(small, inputs)
    assert np.abs(out["start_logits"] - ref[0].numpy()).max() < 1e-3
    assert np.abs(out["end_logits"] - ref[1].numpy()).max() < 1e-3


def test_sliced_subnet_rejects_what_the_supernet_lacks(model) -> None:  # type: ignore[no-untyped-def]
    for bad in (SubnetConfig((0, 4), (1, 1), (8, 8)), SubnetConfig((0,), (5,), (8,)), SubnetConfig((0,), (1,), (65,)),
                SubnetConfig((0,), (1,), (8,), hidden=48)):
        with pytest.raises(ValueError):
            SlicedSubnet(model, bad)


# -- sandwich training ------------------------------------------------------------------------


def _features(n: int = 24, seq: int = 16):  # type: ignore[no-untyped-def]
    from core.qa.features import TrainFeatures

    rng = np.random.default_rng(0)
    ids = rng.integers(5, 100, (n, seq)).astype(np.int64)
    fields = {f.name for f in __import__("dataclasses").fields(TrainFeatures)}
    kwargs = {
        "input_ids": ids,
        "attention_mask": np.ones_like(ids),
        "token_type_ids": np.zeros_like(ids),
        "start_positions": rng.integers(1, seq, n).astype(np.int64),
        "end_positions": rng.integers(1, seq, n).astype(np.int64),
    }
    return TrainFeatures(**{k: v for k, v in kwargs.items() if k in fields})


def test_sandwich_training_trains_every_width_and_resumes(model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import copy

    from search_spaces.bert.training import Sandwich, TrainSettings, train_qa

    space = BertSpace.from_spec({"layers": [2, 4], "heads": [1, 2, 4], "ffn": [16, 64], "per_layer": True}, model.config)
    feats = _features()
    soft = (np.random.default_rng(1).normal(size=(24, 16)).astype(np.float32),) * 2
    settings = TrainSettings(max_steps=6, batch_size=4, learning_rate=1e-3, seed=3)
    whole = copy.deepcopy(model)
    stats = train_qa(whole, feats, settings, soft_targets=soft, sandwich=Sandwich(space, 2))
    assert stats.steps == 6 and np.isfinite(stats.final_loss)
    # The smallest subnet's slice changed; units outside every subnet (layer 1, 2 stay kept by 'spread' 4) too.
    w0 = model.bert.encoder.layer[0].attention.self.query.weight[:8]
    assert not torch.equal(whole.bert.encoder.layer[0].attention.self.query.weight[:8], w0)

    class Stop(Exception):
        pass

    def stop_at(step, total, loss):  # type: ignore[no-untyped-def]
        if step == 4:
            raise Stop

    part = copy.deepcopy(model)
    with pytest.raises(Stop):
        train_qa(part, feats, settings, soft_targets=soft, sandwich=Sandwich(space, 2), checkpoint_dir=tmp_path, checkpoint_every=2, on_step=stop_at)
    resumed = copy.deepcopy(model)
    stats2 = train_qa(resumed, feats, settings, soft_targets=soft, sandwich=Sandwich(space, 2), checkpoint_dir=tmp_path, checkpoint_every=2)
    assert stats2.resumed_from_step == 4 and stats2.steps == 6
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
    from search_spaces.bert.training import CheckpointMismatchError

    with pytest.raises(CheckpointMismatchError, match="sandwich"):
        train_qa(copy.deepcopy(model), feats, settings, soft_targets=soft, sandwich=Sandwich(space, 1), checkpoint_dir=tmp_path, checkpoint_every=2)
