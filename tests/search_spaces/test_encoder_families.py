"""The generic encoder families (``search_spaces.encoder``) beyond the conformance suite: DeBERTa-v2's
unshared relative-position projections, where the sliced view's gradients go, one forward at a time,
the ``hwnas_sliced`` class loading with transformers alone, configs under DistilBERT's names, export, and
each family's base model directory (its own tokenizer, ``tests.families``) through every step."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import transformers

from core.model_inputs import model_input_names
from core.types import SubnetConfig
from search_spaces import family_for, family_of, full_subnet, space_for
from search_spaces.base_models import read_config

SMALL = {"vocab_size": 128, "hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 64}
PER_LAYER = SubnetConfig((1, 2, 3), (1, 3, 4), (48, 16, 64))


def _model(model_type: str, **fields: Any) -> Any:
    torch.manual_seed(0)
    cfg = transformers.AutoConfig.for_model(model_type, **fields)
    return transformers.AutoModelForQuestionAnswering.from_config(cfg).eval()


def _inputs(token_types: bool = True) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(5, 128, (2, 18), generator=g)
    mask = torch.ones_like(ids)
    mask[0, 11:] = 0
    out = {"input_ids": ids, "attention_mask": mask}
    return {**out, "token_type_ids": torch.zeros_like(ids)} if token_types else out


def _start(model: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).start_logits


@pytest.fixture(scope="module")
def roberta() -> Any:
    return _model("roberta", **SMALL, max_position_embeddings=66, type_vocab_size=1)


@pytest.mark.parametrize("share_att_key", [False, True])
def test_deberta_relative_position_projections_slice_and_permute_with_the_heads(share_att_key: bool) -> None:
    """Without ``share_att_key`` DeBERTa-v2 has per-head ``pos_key_proj`` / ``pos_query_proj``: they are cut
    and permuted with Q/K/V; with it, the relative terms reuse ``key_proj`` / ``query_proj``."""
    family = family_of("deberta-v2")
    model = _model("deberta-v2", **SMALL, max_position_embeddings=64, relative_attention=True, pos_att_type=["p2c", "c2p"],
                   share_att_key=share_att_key, position_buckets=-1 if not share_att_key else 16, max_relative_positions=-1)  # fmt: skip
    att = model.deberta.encoder.layer[0].attention.self
    assert hasattr(att, "pos_key_proj") is (not share_att_key)
    inputs = _inputs()
    small = family.extract_subnet(model, PER_LAYER)
    layer = small.model.deberta.encoder.layer[0].attention.self  # kept layer 1: one head of 8
    assert layer.query_proj.out_features == 8 and layer.num_attention_heads == 1 and layer.all_head_size == 8
    if not share_att_key:
        assert layer.pos_key_proj.out_features == layer.pos_query_proj.out_features == 8
    torch.testing.assert_close(_start(small, inputs), _start(family.sliced(model, PER_LAYER), inputs), atol=1e-5, rtol=1e-4)
    g = torch.Generator().manual_seed(4)
    batch = {**inputs, "start_positions": torch.randint(0, 11, (2,), generator=g), "end_positions": torch.randint(0, 11, (2,), generator=g)}
    reference = _start(model, inputs)
    before = att.pos_key_proj.weight.clone() if not share_att_key else None
    family.reorder_by_importance(model, [batch])
    torch.testing.assert_close(_start(model, inputs), reference, atol=1e-5, rtol=1e-4)
    if before is not None:
        assert not torch.equal(before, att.pos_key_proj.weight)  # permuted with its heads


def test_sliced_view_trains_only_the_kept_units(roberta: Any) -> None:
    family = family_of("roberta")
    sub = SubnetConfig((0, 2), (2, 3), (16, 48))
    roberta.zero_grad(set_to_none=True)
    out = family.sliced(roberta, sub)(**_inputs(False), start_positions=torch.tensor([1, 2]), end_positions=torch.tensor([3, 4]))
    out.loss.backward()
    layers = roberta.roberta.encoder.layer
    assert all(p.grad is None for i in (1, 3) for p in layers[i].parameters())  # dropped layers: untouched
    for index, heads, ffn in zip(sub.layers, sub.heads, sub.ffn):
        layer = layers[index]
        keep = heads * 8
        attn_out, query = layer.attention.output.dense, layer.attention.self.query
        assert attn_out.weight.grad[:, keep:].abs().max() == 0 and attn_out.weight.grad[:, :keep].abs().max() > 0
        assert query.weight.grad[keep:].abs().max() == 0 and query.weight.grad[:keep].abs().max() > 0
        ffn_in, ffn_out = layer.intermediate.dense, layer.output.dense
        assert ffn_in.weight.grad[ffn:].abs().max() == 0 and ffn_out.weight.grad[:, ffn:].abs().max() == 0
        assert ffn_out.weight.grad[:, :ffn].abs().max() > 0
    roberta.zero_grad(set_to_none=True)


def test_sliced_views_of_one_supernet_run_one_forward_at_a_time(roberta: Any) -> None:
    family = family_of("roberta")
    subs = [SubnetConfig((0, 3), (1, 1), (16, 16)), PER_LAYER, family.full_subnet(roberta.config)]
    inputs = _inputs(False)
    expected = [_start(family.extract_subnet(roberta, s), inputs) for s in subs]
    got: dict[int, list[torch.Tensor]] = {i: [] for i in range(len(subs))}

    def run(i: int) -> None:
        view = family.sliced(roberta, subs[i])
        for _ in range(4):
            got[i].append(_start(view, inputs))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(subs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, exp in enumerate(expected):
        for out in got[i]:
            torch.testing.assert_close(out, exp, atol=1e-5, rtol=1e-4)
    assert len(roberta.roberta.encoder.layer) == 4


def test_hwnas_sliced_loads_with_transformers_alone(roberta: Any, tmp_path: Path) -> None:
    """The saved directory is self-contained: a fresh Python that cannot import hwnas loads it (remote code)."""
    family = family_of("roberta")
    small = family.extract_standalone(roberta, PER_LAYER)
    assert not any(t.is_meta for t in (*small.parameters(), *small.buffers()))
    family.save_standalone(small, tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model_type"] == "hwnas_sliced" and cfg["base_model_type"] == "roberta"
    assert cfg["layer_heads"] == [1, 3, 4] and cfg["layer_ffn"] == [48, 16, 64] and cfg["hwnas_head_size"] == 8
    assert cfg["auto_map"]["AutoModelForQuestionAnswering"] == "modeling_hwnas_sliced.HwnasSlicedForQuestionAnswering"
    assert cfg["hwnas_subnet"] == PER_LAYER.to_dict() and (tmp_path / "modeling_hwnas_sliced.py").is_file()
    inputs = _inputs(False)
    torch.save(inputs, tmp_path / "inputs.pt")
    torch.save(_start(small, inputs), tmp_path / "expected.pt")
    code = (
        "import sys\n"
        "for name in ('search_spaces', 'core', 'nas', 'workers'): sys.modules[name] = None  # hwnas is not importable\n"
        "import torch, transformers\n"
        f"d = {str(tmp_path)!r}\n"
        "m = transformers.AutoModelForQuestionAnswering.from_pretrained(d, trust_remote_code=True).eval()\n"
        "inputs = torch.load(d + '/inputs.pt')\n"
        "with torch.no_grad(): out = m(**inputs).start_logits\n"
        "torch.testing.assert_close(out, torch.load(d + '/expected.pt'), atol=1e-5, rtol=1e-4)\n"
        "assert type(m).__name__ == 'HwnasSlicedForQuestionAnswering' and type(m.model).__name__ == 'RobertaForQuestionAnswering'\n"
    )
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HF_HOME": str(tmp_path / "hf")}  # remote code is cached under HF_HOME
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, env=env)


def test_distilbert_configs_read_under_their_own_names(tmp_path: Path) -> None:
    family = family_of("distilbert")
    model = _model("distilbert", vocab_size=128, dim=32, n_layers=3, n_heads=4, hidden_dim=64, max_position_embeddings=64)
    model.save_pretrained(tmp_path)
    raw = json.loads((tmp_path / "config.json").read_text())
    assert "n_layers" in raw and "num_hidden_layers" not in raw
    cfg = read_config(tmp_path)  # BERT's names are added as aliases
    assert (cfg.num_hidden_layers, cfg.num_attention_heads, cfg.intermediate_size, cfg.hidden_size) == (3, 4, 64, 32)
    assert full_subnet(cfg) == full_subnet(raw) == SubnetConfig((0, 1, 2), (4,) * 3, (64,) * 3)
    assert family.default_choices(raw) == {"layers": [2, 3], "heads": [1, 2, 4], "ffn": [32, 64]}
    space = space_for({"layers": [2, 3], "heads": [2, 4], "ffn": [32, 64], "per_layer": True}, raw)
    space.check_base(raw)
    space.check_base(model.config)
    # what ``load_supernet_space`` rebuilds from supernet.json: BERT's names only
    base = space.to_dict()["base"]
    recorded = SimpleNamespace(model_type="distilbert", num_hidden_layers=base["layers"], num_attention_heads=base["heads"],
                               intermediate_size=base["ffn"], hidden_size=base["hidden"], attention_head_size=base["head_size"])  # fmt: skip
    assert space_for(space.to_dict(), recorded).to_dict() == space.to_dict()
    with pytest.raises(ValueError, match="heads"):
        space_for({"layers": [2], "heads": [8], "ffn": [64]}, raw)
    small = family.extract_subnet(model, SubnetConfig((0, 2), (4, 4), (32, 32)))
    assert type(small).__name__ == "DistilBertForQuestionAnswering" and (small.config.n_layers, small.config.hidden_dim) == (2, 32)
    assert model_input_names(small) == ("input_ids", "attention_mask")
    # the tokenizer's and a trainer's batches may carry token types: the sliced view and the wrapper drop them
    inputs, sub = _inputs(True), SubnetConfig((0, 2), (1, 4), (16, 64))
    wrapped = family.extract_subnet(model, sub)
    assert type(wrapped).__name__ == "HwnasSlicedForQuestionAnswering" and model_input_names(wrapped) == ("input_ids", "attention_mask")
    torch.testing.assert_close(_start(family.sliced(model, sub), inputs), _start(wrapped, inputs), atol=1e-5, rtol=1e-4)


def test_per_layer_deberta_exports_and_converts_to_openvino_with_its_own_inputs() -> None:
    """The most involved anatomy (relative positions, buckets, shared keys), per-layer widths: ``torch.export``
    (no TorchScript) and OpenVINO's conversion both run the sliced modules and compute the same logits."""
    import numpy as np
    import openvino as ov

    family = family_of("deberta-v2")
    model = _model("deberta-v2", **SMALL, max_position_embeddings=64, relative_attention=True, position_buckets=16,
                   pos_att_type=["p2c", "c2p"], share_att_key=True, position_biased_input=False, type_vocab_size=0)  # fmt: skip
    small = family.extract_standalone(model, PER_LAYER)
    names = model_input_names(small)
    assert names == ("input_ids", "attention_mask")  # DeBERTa-v3 has no token types (type_vocab_size 0)

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = small

        def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = self.model(**dict(zip(names, args)))
            return out.start_logits, out.end_logits

    inputs = _inputs(True)
    args = tuple(inputs[n] for n in names)
    expected = _start(small, inputs)
    exported = torch.export.export(Logits(), args)
    torch.testing.assert_close(exported.module()(*args)[0], expected, atol=1e-5, rtol=1e-4)
    with torch.no_grad():
        ov_model = ov.convert_model(Logits(), example_input=args)
    result = ov.compile_model(ov_model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})([a.numpy() for a in args])[0]
    np.testing.assert_allclose(result, expected.numpy(), atol=1e-4)


SQUAD_TRAIN = Path(__file__).resolve().parents[3] / "shared" / "data" / "squad" / "squad-v1.1-train-head.json"


@pytest.mark.parametrize("name", ["roberta", "xlm-roberta", "distilbert", "electra", "deberta-v2"])
def test_a_base_model_directory_with_its_tokenizer_goes_through_every_step(name: str, tmp_path: Path) -> None:
    """What a job does with a base model directory (``tests.families``: the family's own tokenizer): read its
    config, find its family, reorder it on tokenizer batches, cut a per-layer subnet, save it with the tokenizer,
    load it back -- the sliced view, the cut and the loaded model agree."""
    if not SQUAD_TRAIN.is_file():
        pytest.skip(f"no SQuAD slice at {SQUAD_TRAIN}")
    from tests.families import tiny_family_model

    base = tiny_family_model(name, tmp_path / "base", SQUAD_TRAIN, hidden=32, ffn=64)
    family = family_for(read_config(base))
    assert family.name == name
    tok = transformers.AutoTokenizer.from_pretrained(base)
    model = transformers.AutoModelForQuestionAnswering.from_pretrained(base).eval()
    enc = tok(["Who wrote it?", "When?"], ["It was written long ago by a monk.", "In 1850, or so."], padding=True, return_tensors="pt")
    inputs = {k: enc[k] for k in model_input_names(model, tok)}
    batch = {**dict(enc), "start_positions": torch.tensor([1, 2]), "end_positions": torch.tensor([3, 4])}  # all the tokenizer gives
    reference = _start(model, inputs)
    family.reorder_by_importance(model, [batch])
    torch.testing.assert_close(_start(model, inputs), reference, atol=1e-5, rtol=1e-4)
    small = family.extract_standalone(model, PER_LAYER)
    family.save_standalone(small, tmp_path / "sub", tok)
    loaded = transformers.AutoModelForQuestionAnswering.from_pretrained(tmp_path / "sub", trust_remote_code=True).eval()
    assert model_input_names(loaded, transformers.AutoTokenizer.from_pretrained(tmp_path / "sub")) == tuple(inputs)
    expected = _start(family.sliced(model, PER_LAYER), inputs)
    for m in (small, loaded):
        torch.testing.assert_close(_start(m, inputs), expected, atol=1e-5, rtol=1e-4)
