"""Uniform BERT search space and subnet extraction on a tiny random model."""

from __future__ import annotations

from types import SimpleNamespace

import optuna
import pytest
import torch
import transformers

from core.types import SubnetConfig
from search_spaces.bert.extract import count_parameters, extract_subnet
from search_spaces.bert.space import UniformBertSpace, kept_layers


@pytest.fixture(scope="module")
def model() -> transformers.BertForQuestionAnswering:
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=500, hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=128)
    return transformers.BertForQuestionAnswering(cfg).eval()


def test_kept_layers_spread_over_depth() -> None:
    assert kept_layers(6, 6) == (0, 1, 2, 3, 4, 5)
    assert kept_layers(6, 3) == (0, 2, 5)
    assert kept_layers(6, 2) == (0, 5)
    assert kept_layers(6, 1) == (0,)
    with pytest.raises(ValueError):
        kept_layers(6, 7)


def test_space_rejects_what_the_base_cannot_host() -> None:
    base = SimpleNamespace(num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
    UniformBertSpace(layers=[2, 6], heads=[12], ffn=[1536], base_layers=6).check_base(base)
    for kw, word in (({"layers": [8]}, "layers"), ({"heads": [16]}, "heads"), ({"ffn": [3072]}, "ffn")):
        args = {"layers": [2], "heads": [6], "ffn": [384]} | kw
        with pytest.raises(ValueError, match=word):
            UniformBertSpace(**args, base_layers=6).check_base(base)


def test_sampling_goes_through_optuna() -> None:
    space = UniformBertSpace(layers=[1, 2], heads=[2, 4], ffn=[32, 64], base_layers=4)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(20):
        trial = study.ask()
        sub = space.sample(trial)
        assert set(trial.params) == {"layers", "heads", "ffn"}
        assert sub.num_layers == trial.params["layers"] and set(sub.heads) == {trial.params["heads"]}
        seen.add(sub.encoding())
        study.tell(trial, [0.0, 1.0])
    assert len(seen) > 1 and space.size() == 8


def test_full_subnet_is_the_model(model) -> None:  # type: ignore[no-untyped-def]
    x = torch.randint(0, 500, (2, 16))
    full = extract_subnet(model, SubnetConfig((0, 1, 2, 3), (4,) * 4, (128,) * 4))
    with torch.no_grad():
        assert torch.equal(full(input_ids=x).start_logits, model(input_ids=x).start_logits)


def test_sliced_weights_are_the_leading_heads_and_neurons(model) -> None:  # type: ignore[no-untyped-def]
    sub = extract_subnet(model, SubnetConfig((1, 3), (2, 2), (32, 32)))
    head = 64 // 4
    src, dst = model.bert.encoder.layer[3], sub.bert.encoder.layer[1]
    assert torch.equal(dst.attention.self.query.weight, src.attention.self.query.weight[: 2 * head])
    assert torch.equal(dst.attention.output.dense.weight, src.attention.output.dense.weight[:, : 2 * head])
    assert torch.equal(dst.intermediate.dense.weight, src.intermediate.dense.weight[:32])
    assert torch.equal(dst.output.dense.weight, src.output.dense.weight[:, :32])
    assert count_parameters(sub) < count_parameters(model)
    assert sub.config.num_hidden_layers == 2 and sub.config.hwnas_subnet["layers"] == [1, 3]
    with torch.no_grad():
        out = sub(input_ids=torch.randint(0, 500, (1, 8)))
    assert out.start_logits.shape == (1, 8)
    assert model.config.num_hidden_layers == 4, "the source model is left untouched"


def test_subnet_config_validates() -> None:
    with pytest.raises(ValueError):
        SubnetConfig((1, 0), (2, 2), (3, 3))
    with pytest.raises(ValueError):
        SubnetConfig((0,), (2, 2), (3,))
    s = SubnetConfig((0, 2), (2, 2), (8, 8))
    assert SubnetConfig.from_dict(s.to_dict()) == s and s.digest() == SubnetConfig((0, 2), (2, 2), (8, 8)).digest()


@pytest.mark.parametrize("layer_selection", ["spread", "search"])
@pytest.mark.parametrize("per_layer", [True, False])
def test_anchor_trials_replay_through_optuna(per_layer: bool, layer_selection: str) -> None:
    """Each anchor's parameters, enqueued, make ``sample`` return exactly that subnet; the first is the largest."""
    from search_spaces.bert.space import BertSpace

    base = SimpleNamespace(num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536, hidden_size=384)
    space = BertSpace.from_spec(
        {"layers": [2, 4, 6], "heads": [4, 8, 12], "ffn": {"min": 256, "max": 1536, "step": 256},
         "hidden": [256, 384], "per_layer": per_layer, "layer_selection": layer_selection},
        base,
    )
    anchors = space.anchors(6)
    assert anchors[0] == space.largest() and len(anchors) == 6 and len(set(anchors)) == 6
    assert all(a.uniform and space.contains(a) for a in anchors)
    assert space.anchors(0) == [] and space.anchors(2) == anchors[:2]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for a in anchors:
        study.enqueue_trial(space.params_of(a))
    assert [space.sample(study.ask()) for _ in anchors] == anchors
    with pytest.raises(ValueError, match="not in the search space"):
        space.params_of(SubnetConfig((0, 1, 2), (12,) * 3, (1536,) * 3))
