"""NNCF INT8 on a tiny random BERT IR: SmoothQuant off and on, presets, and the accuracy-control path."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np
import openvino as ov
import pytest

from core.qa.features import prepare_eval_features, prepare_train_features
from core.qa.squad import load_squad
from workers.evaluate import evaluate_qa, f1_validation, openvino_runner, per_question_f1, subset_features
from workers.quantize import AccuracyValidation, advanced_parameters, quantize_int8, quantized_node_count

SEQ, STRIDE = 64, 16


@pytest.fixture(scope="module")
def tiny(tiny_qa_model: Path, squad_files: tuple[str, str]) -> dict[str, Any]:
    import transformers

    from workers.export import to_openvino

    tok = transformers.AutoTokenizer.from_pretrained(tiny_qa_model)
    model = transformers.AutoModelForQuestionAnswering.from_pretrained(tiny_qa_model).eval()
    examples = load_squad(squad_files[0], limit=12)
    train = prepare_train_features(examples, tok, max_seq_length=SEQ, doc_stride=STRIDE)
    calibration = [
        {k: getattr(train, k)[i : i + 1] for k in ("input_ids", "attention_mask", "token_type_ids")} for i in range(16)
    ]
    return {
        "model": model,
        "calibration": calibration,
        "examples": examples,
        "features": prepare_eval_features(examples, tok, max_seq_length=SEQ, doc_stride=STRIDE),
        "fresh_ir": lambda: to_openvino(model, seq_len=SEQ),
    }


def _outputs(model: ov.Model, batch: dict[str, np.ndarray]) -> np.ndarray:
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return openvino_runner(compiled)(batch)[0]


def test_advanced_parameters_switch_smooth_quant() -> None:
    assert advanced_parameters(smooth_quant=False).smooth_quant_alphas.matmul == -1
    assert advanced_parameters(smooth_quant=True).smooth_quant_alphas.matmul > 0


@pytest.mark.parametrize("preset", ["mixed", "performance"])
def test_smooth_quant_off_and_on_both_quantize(tiny: dict[str, Any], preset: str) -> None:
    fp32 = tiny["fresh_ir"]()
    assert quantized_node_count(fp32) == 0
    batch = tiny["calibration"][0]
    reference = _outputs(fp32, batch)
    results = {}
    for smooth_quant in (False, True):
        q = quantize_int8(tiny["fresh_ir"](), tiny["calibration"], subset_size=300, smooth_quant=smooth_quant, preset=preset)
        assert quantized_node_count(q) > 10
        out = _outputs(q, batch)
        assert out.shape == reference.shape and np.isfinite(out).all()
        assert not np.array_equal(out, reference)  # INT8 changes the numbers a little
        results[smooth_quant] = out
    assert not np.allclose(results[False], results[True], atol=0, rtol=0)  # SmoothQuant really switched


def test_quantize_rejects_bad_arguments(tiny: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="preset"):
        quantize_int8(tiny["fresh_ir"](), tiny["calibration"], subset_size=4, preset="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="validation"):
        quantize_int8(tiny["fresh_ir"](), tiny["calibration"], subset_size=4, max_f1_drop=1.0)


def test_accuracy_control_with_a_trivial_metric(tiny: dict[str, Any]) -> None:
    calls: list[int] = []

    def always_one(compiled: Any, items: Iterable[Any]) -> tuple[float, list[float]]:
        values = [1.0 for _ in items]
        calls.append(len(values))
        return 1.0, values

    q = quantize_int8(
        tiny["fresh_ir"](), tiny["calibration"], subset_size=16,
        max_f1_drop=0.5, validation=AccuracyValidation(list(range(6)), always_one),
    )
    assert calls and quantized_node_count(q) > 10  # no drop: nothing reverted


def test_accuracy_control_reverts_operations_when_the_drop_is_too_large(tiny: dict[str, Any]) -> None:
    """A metric that punishes any deviation from the FP32 logits forces NNCF to revert quantizers.

    One encoder layer keeps NNCF's ranking (a compile and a validation per quantizer group) short.
    """
    import torch
    import transformers

    from workers.export import to_openvino

    torch.manual_seed(0)
    cfg = transformers.BertConfig(
        vocab_size=tiny["model"].config.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128,
    )
    one_layer = transformers.BertForQuestionAnswering(cfg).eval()
    batch = tiny["calibration"][1]
    reference = _outputs(to_openvino(one_layer, seq_len=SEQ), batch)

    def closeness(compiled: Any, items: Iterable[Any]) -> tuple[float, list[float]]:
        values = [-float(np.abs(openvino_runner(compiled)(batch)[0] - reference).max()) * 1000 for _ in items]
        return float(np.mean(values)), values

    plain = quantize_int8(to_openvino(one_layer, seq_len=SEQ), tiny["calibration"], subset_size=16)
    controlled = quantize_int8(
        to_openvino(one_layer, seq_len=SEQ), tiny["calibration"], subset_size=16,
        max_f1_drop=1e-3, validation=AccuracyValidation([0, 1], closeness), ranking_subset_size=1, max_iterations=2,
    )
    assert 0 < quantized_node_count(controlled) < quantized_node_count(plain)


def test_f1_validation_matches_evaluate_qa(tiny: dict[str, Any]) -> None:
    compiled = ov.Core().compile_model(tiny["fresh_ir"](), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    examples, features = tiny["examples"], tiny["features"]
    items, fn = f1_validation(examples, features)
    assert items == list(range(len(examples)))
    mean, per_item = fn(compiled, items)
    assert len(per_item) == len(examples)
    assert mean == pytest.approx(evaluate_qa(openvino_runner(compiled), examples, features)["f1"])
    part_mean, part = fn(compiled, [3, 1])
    assert part == [per_item[3], per_item[1]] and part_mean == pytest.approx(np.mean(part))
    sub = subset_features(features, [3, 1])
    assert set(sub.example_index.tolist()) == {0, 1}
    assert per_question_f1(openvino_runner(compiled), [examples[3], examples[1]], sub) == part


def test_trial_accuracy_validation_uses_the_end_of_the_train_file(
    tiny_qa_model: Path, squad_files: tuple[str, str], tmp_path: Path
) -> None:
    from core.types import SubnetConfig, TrialRequest
    from workers.pipeline import AC_VALIDATION_QUESTIONS, accuracy_validation

    req = TrialRequest(
        job_id="j", trial_number=0, subnet=SubnetConfig((0,), (4,), (128,)), teacher_dir=str(tiny_qa_model),
        train_file=squad_files[0], eval_file=squad_files[1], max_seq_length=SEQ, doc_stride=STRIDE,
        max_eval_examples=None, calibration_samples=8, targets=("native",), output_dir=str(tmp_path),
        quant_max_f1_drop=1.0,
    )
    validation = accuracy_validation(req)
    assert len(validation.items) == AC_VALIDATION_QUESTIONS
    train_ids = [e.id for e in load_squad(squad_files[0])]
    eval_ids = {e.id for e in load_squad(squad_files[1])}
    compiled = ov.Core().compile_model(to_ir(tiny_qa_model), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    mean, per_item = validation.fn(compiled, validation.items[:5])
    assert len(per_item) == 5 and 0 <= mean <= 100
    assert not eval_ids & set(train_ids[-AC_VALIDATION_QUESTIONS:])  # the slice is train data, disjoint from eval


def to_ir(model_dir: Path) -> ov.Model:
    import transformers

    from workers.export import to_openvino

    return to_openvino(transformers.AutoModelForQuestionAnswering.from_pretrained(model_dir).eval(), seq_len=SEQ)
