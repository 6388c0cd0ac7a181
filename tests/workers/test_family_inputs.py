"""Inputs follow the model: each family's IR has exactly the inputs its model takes, and every feeder
(OpenVINO and torch runners, NNCF calibration batches, benchmark inputs, training, teacher logits)
passes only those, from features that always carry all three arrays (``core.model_inputs``)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.model_inputs import QA_INPUTS, model_input_names, select_inputs
from tests.families import FAMILIES, tiny_family_model

SEQ = 48
EXPECTED = {
    "bert": QA_INPUTS,
    "electra": QA_INPUTS,
    "roberta": ("input_ids", "attention_mask"),  # one token type; its tokenizer gives none
    "xlm-roberta": ("input_ids", "attention_mask"),
    "distilbert": ("input_ids", "attention_mask"),  # its forward has no token_type_ids
    "deberta-v2": ("input_ids", "attention_mask"),  # DeBERTa-v3: type_vocab_size 0, although its tokenizer gives them
}


class PerFamily(dict):  # type: ignore[type-arg]
    def __init__(self, make: Any) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, family: str) -> Any:
        self[family] = value = self.make(family)
        return value


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, squad_files: tuple[str, str]) -> PerFamily:
    """Per family: its model directory, model, tokenizer, and train/eval windows of a few real questions."""
    import transformers

    from core.qa.features import prepare_eval_features, prepare_train_features
    from core.qa.squad import load_squad

    examples = load_squad(squad_files[0], limit=6)

    def make(family: str) -> dict[str, Any]:
        d = tiny_family_model(family, tmp_path_factory.mktemp(family), squad_files[0], hidden=32, layers=2, heads=2, ffn=64)
        tok = transformers.AutoTokenizer.from_pretrained(d)
        return {
            "dir": d,
            "model": transformers.AutoModelForQuestionAnswering.from_pretrained(d).eval(),
            "tokenizer": tok,
            "examples": examples,
            "train": prepare_train_features(examples, tok, max_seq_length=SEQ, doc_stride=16),
            "eval": prepare_eval_features(examples, tok, max_seq_length=SEQ, doc_stride=16),
        }

    return PerFamily(make)


def _ir(t: dict[str, Any]) -> Any:
    from workers.export import to_openvino

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings of transformers' mask helpers
        return to_openvino(t["model"], seq_len=SEQ, tokenizer=t["tokenizer"])


@pytest.mark.parametrize("family", FAMILIES)
def test_model_input_names_of_model_config_and_tokenizer(family: str, tiny: PerFamily) -> None:
    t = tiny[family]
    config = json.loads((t["dir"] / "config.json").read_text())
    assert model_input_names(t["model"], t["tokenizer"]) == EXPECTED[family]
    assert model_input_names(t["model"]) == EXPECTED[family]  # no tokenizer: the model alone decides
    assert model_input_names(config, t["tokenizer"]) == EXPECTED[family]  # a config.json: its transformers class


def test_model_input_names_unknown_class_and_declared_names() -> None:
    class Tok:
        model_input_names = ["input_ids", "attention_mask"]

    assert model_input_names({"model_type": "hwnas_bert", "type_vocab_size": 2}) == QA_INPUTS  # the tokenizer decides
    assert model_input_names({"model_type": "hwnas_bert"}, Tok()) == ("input_ids", "attention_mask")

    class Wrapper:  # a family's sliced view: it says what it takes
        input_names = ("input_ids", "attention_mask")

        def forward(self, input_ids, attention_mask=None, token_type_ids=None, **kwargs):  # type: ignore[no-untyped-def]
            raise AssertionError

    assert model_input_names(Wrapper()) == ("input_ids", "attention_mask")
    with pytest.raises(KeyError, match="token_type_ids"):
        select_inputs({"input_ids": 1}, ("input_ids", "token_type_ids"))


@pytest.mark.parametrize("family", FAMILIES)
def test_ir_has_the_model_inputs_and_runners_agree(family: str, tiny: PerFamily) -> None:
    import openvino as ov

    from core.qa.features import iter_batches
    from workers.evaluate import ir_input_names, openvino_runner, torch_runner
    from workers.openvino_timing import synthetic_inputs

    t = tiny[family]
    ir = _ir(t)
    assert ir_input_names(ir) == EXPECTED[family]
    assert [p.get_any_name() for p in ir.inputs] == list(EXPECTED[family])
    assert sorted(synthetic_inputs(ir, 2, SEQ)) == sorted(EXPECTED[family])  # token types only if the IR has them
    batch = next(iter_batches(t["eval"], 4))
    assert set(batch) == set(QA_INPUTS)  # the features carry all three; the runners pick theirs
    ov_start, ov_end = openvino_runner(ov.Core().compile_model(ir, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}))(batch)
    pt_start, pt_end = torch_runner(t["model"])(batch)
    np.testing.assert_allclose(ov_start, pt_start, atol=1e-4)
    np.testing.assert_allclose(ov_end, pt_end, atol=1e-4)


@pytest.mark.parametrize("family", ["distilbert", "roberta", "bert"])
def test_training_and_teacher_logits_feed_only_the_model_inputs(family: str, tiny: PerFamily) -> None:
    """DistilBERT's forward raises TypeError for token_type_ids: the loop and the teacher logits pass none."""
    import copy

    from search_spaces.bert.training import teacher_logits, train_qa
    from search_spaces.training_settings import TrainSettings

    t = tiny[family]
    student = copy.deepcopy(t["model"])
    soft = teacher_logits(t["model"], t["train"])
    assert soft[0].shape == t["train"].input_ids.shape
    stats = train_qa(student, t["train"], TrainSettings(max_steps=2, batch_size=4), soft_targets=soft)
    assert stats.steps == 2 and np.isfinite(stats.final_loss)


@pytest.mark.parametrize("family", ["distilbert", "bert"])
def test_calibration_batches_are_the_teachers_inputs(family: str, tiny: PerFamily, squad_files: tuple[str, str], tmp_path: Path) -> None:
    from core.types import SubnetConfig, TrialRequest
    from workers.pipeline import calibration_batches

    t = tiny[family]
    req = TrialRequest(
        job_id="j", trial_number=0, subnet=SubnetConfig((0, 1), (2, 2), (64, 64)), teacher_dir=str(t["dir"]),
        train_file=squad_files[0], eval_file=squad_files[1], max_seq_length=128, doc_stride=32, max_eval_examples=4,
        calibration_samples=3, targets=("native",), output_dir=str(tmp_path),
    )  # fmt: skip
    batches = calibration_batches(req)
    assert len(batches) == 3
    assert all(tuple(b) == EXPECTED[family] and b["input_ids"].shape == (1, 128) for b in batches)


def _quantized_consumers(model: Any) -> set[str]:
    """Op types fed by the INT8 model's quantizers, looking through the Reshape/Transpose of attention heads."""
    seen: set[str] = set()

    def follow(node: Any) -> None:
        for out in node.outputs():
            for target in out.get_target_inputs():
                op = target.get_node()
                if op.get_type_name() in ("Reshape", "Transpose"):
                    follow(op)
                else:
                    seen.add(op.get_type_name())

    for op in model.get_ops():
        if op.get_type_name() in ("FakeQuantize", "FakeConvert"):
            follow(op)
    return seen


@pytest.mark.parametrize("family", FAMILIES)
def test_int8_recipe_quantizes_only_each_familys_matmuls(family: str, tiny: PerFamily) -> None:
    """The trials' NNCF recipe (transformer model type) on each family: quantizers feed matmuls only.

    Plain ``nncf.quantize`` also quantizes LayerNorm (MVN) inputs, residual and embedding sums and, in
    DeBERTa, its relative-position gathers: the scopes that cost a trained model its F1. The F1 drop of
    the recipe on tiny *trained* models of every family is in BENCHMARKS.md (``bench.family_int8``)."""
    from workers.quantize import quantize_int8, quantized_node_count

    t = tiny[family]
    calibration = [{k: getattr(t["train"], k)[i : i + 1] for k in QA_INPUTS} for i in range(len(t["train"].input_ids))]
    int8 = quantize_int8(_ir(t), calibration, subset_size=len(calibration))
    assert quantized_node_count(int8) > 0
    fed = _quantized_consumers(int8)
    # attention's two matmuls may be fused into one op; ShapeOf reads only the shape of a quantized tensor
    assert "MatMul" in fed and fed <= {"MatMul", "ScaledDotProductAttention", "ShapeOf"}, fed
