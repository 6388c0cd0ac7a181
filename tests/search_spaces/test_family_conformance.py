"""Conformance suite of the model-family registry (``search_spaces.FAMILIES``): every family passes it.

Each family is checked on a tiny random ``*ForQuestionAnswering`` built here from a small config of
its first ``model_type`` (``AutoConfig.for_model``; ``CONFIG_OVERRIDES`` for a family whose config
names the dimensions otherwise), so a new family is tested by adding its registry line. No downloads.
"""

from __future__ import annotations

import copy
import importlib
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import optuna
import pytest
import torch
import transformers

from core.types import SubnetConfig
from search_spaces import FAMILIES, JobSpace, ModelFamily, SearchSpace, UnsupportedModelType, family_for, family_of, full_subnet
from search_spaces.base_models import read_config

ROOT = Path(__file__).resolve().parents[2]
SMALL = {
    "vocab_size": 128, "hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 64,
    "max_position_embeddings": 64, "type_vocab_size": 2,
}  # fmt: skip
CONFIG_OVERRIDES: dict[str, dict[str, Any]] = {}  # family name -> config keys for a family that names them otherwise
# A job's search space (``nas.spec.SearchSpaceSpec`` fields) that every family hosts on SMALL
SPEC = {"layers": [2, 3, 4], "heads": [1, 2, 4], "ffn": {"min": 16, "max": 64, "step": 16}, "per_layer": True}
SUBNETS = [
    SubnetConfig((0, 3), (4, 4), (32, 32)),  # uniform, every head
    SubnetConfig((0, 2), (2, 2), (16, 16)),  # uniform, fewer heads
    SubnetConfig((1, 2, 3), (1, 3, 4), (48, 16, 64)),  # per-layer widths
]
NAMES = sorted(FAMILIES)


def _inputs(vocab: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, vocab, (3, 20), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0  # one padded row: the mask must be honoured
    types = torch.zeros_like(ids)
    types[:, 8:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def _logits(model: Any, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        out = model(**inputs)
    return out.start_logits, out.end_logits


@pytest.fixture(scope="module", params=NAMES)
def family(request: pytest.FixtureRequest) -> ModelFamily:
    return importlib.import_module(FAMILIES[request.param]).FAMILY


@pytest.fixture(scope="module")
def model(family: ModelFamily) -> Any:
    torch.manual_seed(0)
    cfg = transformers.AutoConfig.for_model(family.model_types[0], **{**SMALL, **CONFIG_OVERRIDES.get(family.name, {})})
    return transformers.AutoModelForQuestionAnswering.from_config(cfg).eval()


@pytest.fixture(scope="module")
def inputs(model: Any) -> dict[str, torch.Tensor]:
    return _inputs(model.config.vocab_size)


def test_registry_resolves_every_model_type_and_is_lazy(family: ModelFamily) -> None:
    assert isinstance(family, ModelFamily) and family.model_types
    assert FAMILIES[family.name]  # registered under its own name
    for model_type in family.model_types:
        assert family_of(model_type) is family
        assert family_for({"model_type": model_type}) is family
        assert family_for(SimpleNamespace(model_type=model_type)) is family
    with pytest.raises(UnsupportedModelType, match="'no-such-type'.*" + family.model_types[0]):
        family_of("no-such-type")
    code = (
        "import sys, search_spaces as s\n"
        "assert not any(m in sys.modules for m in s.FAMILIES.values()), 'a family was imported by the registry'\n"
        f"f = s.family_of({family.model_types[0]!r})\n"
        "assert 'torch' not in sys.modules, 'looking a family up loaded torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_space_samples_through_optuna_subnets_it_contains(family: ModelFamily, model: Any) -> None:
    from nas.spec import SearchSpaceSpec

    space = family.space(SearchSpaceSpec.model_validate(SPEC), model.config)
    assert isinstance(space, SearchSpace) and isinstance(space, JobSpace) and space.size() > 1
    space.check_base(model.config)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(25):
        trial = study.ask()
        sub = space.sample(trial)
        assert isinstance(sub, SubnetConfig) and trial.params  # every decision went through the trial
        assert space.contains(sub), sub
        seen.add(sub.encoding())
        study.tell(trial, [0.0, 1.0])
    assert len(seen) > 5
    assert not space.contains(SubnetConfig((0,), (4,), (64,)))  # one layer: not a choice of SPEC
    tiny = SimpleNamespace(**{**model.config.to_dict(), "num_hidden_layers": 2})
    with pytest.raises(ValueError, match="layers"):
        family.space(SPEC, tiny)  # the base cannot host 4 layers


def test_space_offers_what_the_stages_use(family: ModelFamily, model: Any) -> None:
    """Anchors, replayed params (refinement and retries enqueue them), the sandwich's members, a cache key."""
    import json
    import random

    from nas.spec import SearchSpaceSpec

    space = family.space(SearchSpaceSpec.model_validate(SPEC), model.config)
    members = [space.largest(), space.smallest(), *(space.random_subnet(random.Random(i)) for i in range(5)), *space.anchors(3)]
    assert all(space.contains(m) for m in members), members
    assert space.largest() != space.smallest() and len(space.anchors(3)) == 3
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for sub in members:
        study.enqueue_trial(space.params_of(sub))
        trial = study.ask()
        assert space.sample(trial) == sub  # the enqueued params draw the same subnet again
        study.tell(trial, 0.0)
    key = json.dumps(space.to_dict(), sort_keys=True)
    assert key == json.dumps(family.space(SearchSpaceSpec.model_validate(SPEC), model.config).to_dict(), sort_keys=True)


def test_default_choices_host_the_full_model(family: ModelFamily, model: Any) -> None:
    """What a job that leaves layers, heads and ffn out searches (``nas.spec_defaults``): the base fits in it."""
    cfg = model.config
    defaults = family.default_choices(cfg)
    assert set(defaults) == {"layers", "heads", "ffn"} and all(v == sorted(set(v)) for v in defaults.values())
    assert defaults == family.default_choices(cfg.to_dict())  # a dict config reads the same
    space = family.space(defaults, cfg)  # raises if the base could not host them
    assert space.contains(family.full_subnet(cfg)) and space.largest() == family.full_subnet(cfg)
    assert (max(defaults["layers"]), max(defaults["heads"]), max(defaults["ffn"])) == (
        cfg.num_hidden_layers, cfg.num_attention_heads, cfg.intermediate_size,
    )
    assert family.space({}, cfg).to_dict() == space.to_dict()  # a spec left unfilled builds the same space


def test_full_subnet_matches_the_config(family: ModelFamily, model: Any, tmp_path: Path) -> None:
    cfg = model.config
    full = family.full_subnet(cfg)
    n = cfg.num_hidden_layers
    assert full == SubnetConfig(tuple(range(n)), (cfg.num_attention_heads,) * n, (cfg.intermediate_size,) * n)
    assert full_subnet(cfg) == full and full_subnet(cfg.to_dict()) == full
    model.save_pretrained(tmp_path)
    assert full_subnet(read_config(tmp_path)) == full  # what the coordinator reads off a base model directory


def test_extract_subnet_counts_and_shapes(family: ModelFamily, model: Any, inputs: dict[str, torch.Tensor]) -> None:
    total = family.count_parameters(model)
    assert total == sum(p.numel() for p in model.parameters())
    same = family.extract_subnet(model, family.full_subnet(model.config))
    assert family.count_parameters(same) == total
    for a, b in zip(_logits(same, inputs), _logits(model, inputs)):
        torch.testing.assert_close(a, b)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    counts = []
    for sub in SUBNETS:
        small = family.extract_subnet(model, sub)
        counts.append(family.count_parameters(small))
        assert counts[-1] == sum(p.numel() for p in small.parameters()) < total
        start, end = _logits(small, inputs)
        assert start.shape == end.shape == inputs["input_ids"].shape and torch.isfinite(start).all()
    assert counts[1] < counts[0]  # fewer heads and neurons, fewer parameters
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the teacher is left untouched


def test_sliced_full_subnet_is_the_model(family: ModelFamily, model: Any, inputs: dict[str, torch.Tensor]) -> None:
    view = family.sliced(model, family.full_subnet(model.config))
    for a, b in zip(_logits(view, inputs), _logits(model, inputs)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("sub", SUBNETS, ids=lambda s: s.encoding())
def test_extract_standalone_computes_what_the_sliced_view_computes(
    family: ModelFamily, model: Any, inputs: dict[str, torch.Tensor], sub: SubnetConfig
) -> None:
    standalone = family.extract_standalone(model, sub)
    assert family.count_parameters(standalone) < family.count_parameters(model)
    for a, b in zip(_logits(standalone, inputs), _logits(family.sliced(model, sub), inputs)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_reorder_by_importance_keeps_the_full_models_outputs(family: ModelFamily, model: Any, inputs: dict[str, torch.Tensor]) -> None:
    reordered = copy.deepcopy(model)
    g = torch.Generator().manual_seed(2)
    batches = [
        {**_inputs(model.config.vocab_size), "start_positions": torch.randint(0, 20, (3,), generator=g),
         "end_positions": torch.randint(0, 20, (3,), generator=g)}
        for _ in range(2)
    ]  # fmt: skip
    orders = family.reorder_by_importance(reordered, batches)
    assert isinstance(orders, dict) and orders
    moved = [not torch.equal(a, b) for a, b in zip(model.parameters(), reordered.parameters())]
    assert any(moved), "nothing was permuted"
    reordered.eval()
    for a, b in zip(_logits(reordered, inputs), _logits(model, inputs)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)  # a permutation of heads and neurons: same function
