"""Conformance suite of the model-family registry (``search_spaces.FAMILIES``): every family passes it.

Each family is checked on a tiny random ``*ForQuestionAnswering`` built here from a small config of
its first ``model_type`` (``AutoConfig.for_model``; SMALL's dimensions under the family's own config
names, ``family.config_keys``, and ``CONFIG_OVERRIDES`` for what else a family needs), fed the inputs its
tokenizer gives (no ``token_type_ids`` for RoBERTa, XLM-R and DistilBERT), so a new family is tested by
adding its registry line (and, if need be, its overrides). No downloads.
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

from core.model_inputs import model_input_names
from core.types import SubnetConfig
from search_spaces import FAMILIES, JobSpace, ModelFamily, SearchSpace, UnsupportedModelType, family_for, family_of, full_subnet
from search_spaces.base_models import read_config

ROOT = Path(__file__).resolve().parents[2]
SMALL = {
    "vocab_size": 128, "hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 64,
    "max_position_embeddings": 64, "type_vocab_size": 2,
}  # fmt: skip
CONFIG_OVERRIDES: dict[str, dict[str, Any]] = {  # family name -> what else its config needs
    # positions start after the padding index (pad + 1): 64 positions need 66, as roberta-base's 514
    "roberta": {"max_position_embeddings": 66, "type_vocab_size": 1, "pad_token_id": 1},
    "xlm-roberta": {"max_position_embeddings": 66, "type_vocab_size": 1, "pad_token_id": 1},
    "distilbert": {"type_vocab_size": None},  # no token types at all
    "electra": {"embedding_size": 16},  # a narrower embedding, projected to the hidden size
    # DeBERTa-v3's attention: relative positions in buckets, c2p and p2c, shared key projections
    "deberta-v2": {"relative_attention": True, "position_buckets": 16, "pos_att_type": ["p2c", "c2p"], "share_att_key": True,
                   "norm_rel_ebd": "layer_norm", "position_biased_input": False, "max_relative_positions": -1, "type_vocab_size": 0},
}  # fmt: skip
NO_TOKEN_TYPES = {"roberta", "xlm-roberta", "distilbert"}  # families whose tokenizers give no token_type_ids
HIDDEN_SEARCHED = {"bert"}  # families whose space has a hidden-size dimension
# A job's search space (``nas.spec.SearchSpaceSpec`` fields) that every family hosts on SMALL
SPEC = {"layers": [2, 3, 4], "heads": [1, 2, 4], "ffn": {"min": 16, "max": 64, "step": 16}, "per_layer": True}
SUBNETS = [
    SubnetConfig((0, 3), (4, 4), (32, 32)),  # uniform, every head
    SubnetConfig((0, 2), (2, 2), (16, 16)),  # uniform, fewer heads
    SubnetConfig((1, 2, 3), (1, 3, 4), (48, 16, 64)),  # per-layer widths
]
NAMES = sorted(FAMILIES)


def _inputs(vocab: int, family: str = "bert") -> dict[str, torch.Tensor]:
    """A batch as the family's tokenizer gives it (token types only where it gives them)."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, vocab, (3, 20), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0  # one padded row: the mask must be honoured
    if family in NO_TOKEN_TYPES:
        return {"input_ids": ids, "attention_mask": mask}
    types = torch.zeros_like(ids)
    types[:, 8:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def _key(family: ModelFamily, bert_key: str) -> str:
    """The family's config field name of one of BERT's dimension fields."""
    return family.config_keys.get(bert_key, bert_key)


def _dim(family: ModelFamily, config: Any, bert_key: str) -> int:
    return int(getattr(config, _key(family, bert_key)))


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
    fields = {_key(family, k): v for k, v in SMALL.items()} | CONFIG_OVERRIDES.get(family.name, {})
    cfg = transformers.AutoConfig.for_model(family.model_types[0], **{k: v for k, v in fields.items() if v is not None})
    return transformers.AutoModelForQuestionAnswering.from_config(cfg).eval()


@pytest.fixture(scope="module")
def inputs(family: ModelFamily, model: Any) -> dict[str, torch.Tensor]:
    return _inputs(model.config.vocab_size, family.name)


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
    tiny = SimpleNamespace(**{**model.config.to_dict(), _key(family, "num_hidden_layers"): 2})
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
    assert (max(defaults["layers"]), max(defaults["heads"]), max(defaults["ffn"])) == tuple(
        _dim(family, cfg, k) for k in ("num_hidden_layers", "num_attention_heads", "intermediate_size")
    )
    assert family.space({}, cfg).to_dict() == space.to_dict()  # a spec left unfilled builds the same space


def test_full_subnet_matches_the_config(family: ModelFamily, model: Any, tmp_path: Path) -> None:
    cfg = model.config
    full = family.full_subnet(cfg)
    n, heads, ffn = (_dim(family, cfg, k) for k in ("num_hidden_layers", "num_attention_heads", "intermediate_size"))
    assert full == SubnetConfig(tuple(range(n)), (heads,) * n, (ffn,) * n)
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
    total, full_logits = family.count_parameters(model), _logits(model, inputs)
    sliced_logits = _logits(family.sliced(model, sub), inputs)
    for extract in (family.extract_standalone, family.extract_subnet):
        standalone = extract(model, sub)
        assert family.count_parameters(standalone) < total
        for a, b in zip(_logits(standalone, inputs), sliced_logits):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    # the view leaves the supernet as it was after its forward: every layer and weight, no hooks left
    assert family.count_parameters(model) == total
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in model.modules())
    for a, b in zip(_logits(model, inputs), full_logits):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


@pytest.mark.parametrize("sub", SUBNETS, ids=lambda s: s.encoding())
def test_saved_subnet_loads_with_auto_classes_and_computes_the_same(
    family: ModelFamily, model: Any, inputs: dict[str, torch.Tensor], sub: SubnetConfig, tmp_path: Path
) -> None:
    """extract -> ``save_standalone`` -> ``AutoModelForQuestionAnswering.from_pretrained``: the same logits.
    A uniform subnet that keeps every head stays the family's own class and config (no remote code)."""
    standalone = family.extract_standalone(model, sub)
    expected = _logits(standalone, inputs)
    family.save_standalone(standalone, tmp_path / "sub")
    own = sub.uniform and sub.heads[0] == _dim(family, model.config, "num_attention_heads")
    if own:
        loaded = transformers.AutoModelForQuestionAnswering.from_pretrained(tmp_path / "sub").eval()
        assert type(loaded).__name__ == type(model).__name__  # e.g. RobertaForQuestionAnswering
        assert type(loaded.config) is type(model.config) and family.modeling_files(loaded.config) == []
    else:
        loaded = transformers.AutoModelForQuestionAnswering.from_pretrained(tmp_path / "sub", trust_remote_code=True).eval()
        files = family.modeling_files(loaded.config)
        assert files and all((tmp_path / "sub" / f.name).is_file() for f in files)
        assert family.modeling_files(loaded.config.to_dict()) == files  # a config dict says the same
    assert family.count_parameters(loaded) == family.count_parameters(standalone)
    for a, b in zip(_logits(loaded, inputs), expected):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert model_input_names(loaded) == model_input_names(model)  # what an exporter traces it with


def test_space_refuses_hidden_unless_the_family_searches_it(family: ModelFamily, model: Any) -> None:
    from nas.spec import SearchSpaceSpec

    hidden = _dim(family, model.config, "hidden_size")
    spec = SearchSpaceSpec.model_validate({**SPEC, "hidden": [hidden // 2, hidden]})
    if family.name in HIDDEN_SEARCHED:
        assert family.space(spec, model.config).to_dict()["hidden"] == [hidden // 2, hidden]
        return
    with pytest.raises(ValueError, match=f"hidden.*bert only.*{family.name}"):
        family.space(spec, model.config)
    with pytest.raises(ValueError, match="hidden"):
        family.extract_subnet(model, SubnetConfig((0, 1), (4, 4), (32, 32), hidden=hidden // 2))


def test_unsupported_model_type_lists_every_family() -> None:
    with pytest.raises(UnsupportedModelType) as err:
        family_of("gpt2")
    assert "'gpt2'" in str(err.value)
    for name in ("bert", "roberta", "xlm-roberta", "distilbert", "electra", "deberta-v2"):
        assert name in FAMILIES and name in str(err.value)


def test_reorder_by_importance_keeps_the_full_models_outputs(family: ModelFamily, model: Any, inputs: dict[str, torch.Tensor]) -> None:
    reordered = copy.deepcopy(model)
    g = torch.Generator().manual_seed(2)
    batches = [
        {**_inputs(model.config.vocab_size, family.name), "start_positions": torch.randint(0, 20, (3,), generator=g),
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
    sub = SUBNETS[2]  # the reordered model is a supernet: its slices still agree with its extraction
    for a, b in zip(_logits(family.sliced(reordered, sub), inputs), _logits(family.extract_standalone(reordered, sub), inputs)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
