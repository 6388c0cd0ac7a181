"""The same OpenVINO IR, FP32 and INT8, gives the same answers and F1 under every sequence-length policy
(``core.qa.length_policy``): same windows, only the padding differs, and post-processing ignores padding.

Real XQuAD-en windows (MiniLM's tokenizer, 384 tokens, stride 128) on a tiny random BERT exported the way
a trial exports one; answers are compared string by string, so a single flipped span would fail it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.qa.features import prepare_eval_features
from core.qa.length_policy import LengthPolicy, real_lengths
from core.qa.squad import load_squad

MAX_LEN, STRIDE, QUESTIONS = 384, 128, 120


@pytest.fixture(scope="module")
def windows(squad_files: tuple[str, str], tiny_qa_model: Path) -> tuple[list[Any], Any]:
    from workers.datasets import tokenizer

    examples = load_squad(squad_files[1], limit=QUESTIONS)
    return examples, prepare_eval_features(examples, tokenizer(tiny_qa_model), max_seq_length=MAX_LEN, doc_stride=STRIDE)


@pytest.fixture(scope="module")
def irs(tiny_qa_model: Path, windows: tuple[list[Any], Any]) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForQuestionAnswering

    from workers.datasets import tokenizer
    from workers.export import to_openvino
    from workers.quantize import quantize_int8

    torch.manual_seed(0)
    model = AutoModelForQuestionAnswering.from_pretrained(tiny_qa_model).eval()
    fp32 = to_openvino(model, seq_len=128, tokenizer=tokenizer(tiny_qa_model))
    feats = windows[1]
    calibration = [{k: getattr(feats, k)[i : i + 1] for k in ("input_ids", "attention_mask", "token_type_ids")} for i in range(16)]
    int8 = quantize_int8(to_openvino(model, seq_len=128, tokenizer=tokenizer(tiny_qa_model)), calibration, subset_size=16)
    return {"fp32": fp32, "int8": int8}


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_every_policy_gives_the_same_answers_and_f1(precision: str, irs: dict[str, Any], windows: tuple[list[Any], Any]) -> None:
    import openvino as ov

    from core.qa.features import postprocess_predictions
    from core.qa.length_policy import run_with_policy
    from workers.evaluate import evaluate_qa, openvino_runner

    examples, feats = windows
    lengths = real_lengths(feats.attention_mask)
    assert lengths.min() < 192 < MAX_LEN == feats.input_ids.shape[1]  # the buckets really trim something
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    run = openvino_runner(ov.Core().compile_model(irs[precision], "CPU", config))
    arrays = {"input_ids": feats.input_ids, "attention_mask": feats.attention_mask, "token_type_ids": feats.token_type_ids}
    answers, scores, logits = {}, {}, {}
    for name in ("fixed", "buckets", "dynamic"):
        policy = LengthPolicy.make(name, MAX_LEN)
        logits[name] = run_with_policy(run, arrays, policy, batch_size=8)
        answers[name] = postprocess_predictions(examples, feats, *logits[name])
        scores[name] = evaluate_qa(run, examples, feats, batch_size=8, length_policy=policy)
    stored = evaluate_qa(run, examples, feats, batch_size=16)  # the trial's own way: stored windows, padded
    assert answers["fixed"] == answers["buckets"] == answers["dynamic"]
    assert scores["fixed"] == scores["buckets"] == scores["dynamic"] == stored
    real = feats.attention_mask.astype(bool)
    for name in ("buckets", "dynamic"):  # real tokens' logits agree to float rounding, padding aside
        np.testing.assert_allclose(logits[name][0][real], logits["fixed"][0][real], rtol=0, atol=1e-3)
