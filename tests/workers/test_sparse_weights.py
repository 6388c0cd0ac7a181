"""OpenVINO's sparse-weight decompression for the Sapphire Rapids profile: set on its INT8 compiles only,
and the answers do not change (on an AMX host the sparse kernels run; elsewhere OpenVINO ignores the rate).
Its speed is a benchmark's business, on an AMX host (BENCHMARKS.md, compression section)."""

from __future__ import annotations

import numpy as np
import pytest

from targets import get_target
from workers.openvino_timing import compile_config


def test_only_int8_compiles_of_a_profile_with_a_rate_get_it() -> None:
    spr, icx = get_target("sapphirerapids"), get_target("icelake")
    assert spr.sparse_weights_rate == 0.5 and icx.sparse_weights_rate is None
    assert compile_config("THROUGHPUT", spr, "int8")["CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE"] == 0.5
    assert "CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE" not in compile_config("THROUGHPUT", spr, "fp32")
    assert "CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE" not in compile_config("LATENCY", icx, "int8")
    assert spr.to_profile()["sparse_weights_rate"] == 0.5 and "sparse_weights_rate" not in icx.to_profile()


@pytest.fixture(scope="module")
def sparse_int8(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A 2-layer BERT whose encoder Linears are 90% zeros (one-shot NNCF pruning), post-training INT8."""
    import torch
    import transformers

    from core.types import CompressionPlan, SubnetConfig, TrialRequest
    from workers.compression import StepContext, get_step
    from workers.compression.nncf_torch import strip_for_export
    from workers.export import save_ir, to_openvino
    from workers.quantize import quantize_int8

    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=2048, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=256, max_position_embeddings=128)  # fmt: skip  (64-multiples: what sparse kernels take)
    model = transformers.BertForQuestionAnswering(cfg).eval()
    req = TrialRequest(job_id="j", trial_number=0, subnet=SubnetConfig((0, 1), (2, 2), (256, 256), sparsity=0.9), teacher_dir="t",
                       train_file="t", eval_file="e", max_seq_length=64, doc_stride=16, max_eval_examples=1, calibration_samples=8,
                       targets=("sapphirerapids",), output_dir="o", compression=CompressionPlan(prune_steps=0))  # fmt: skip
    pruned = strip_for_export(get_step("prune").apply(model, request=req, context=StepContext(family=None)))
    rng = np.random.default_rng(0)
    batches = [{"input_ids": rng.integers(5, 2000, (1, 64)), "attention_mask": np.ones((1, 64), dtype=np.int64),
                "token_type_ids": np.zeros((1, 64), dtype=np.int64)} for _ in range(8)]  # fmt: skip
    return save_ir(quantize_int8(to_openvino(pruned, seq_len=64), batches, subset_size=8), tmp_path_factory.mktemp("sparse") / "ir")


def test_sparse_decompression_gives_the_dense_kernels_answers(sparse_int8) -> None:  # type: ignore[no-untyped-def]
    import openvino as ov

    from targets import detect_cpu
    from workers.export import weight_sparsity

    core = ov.Core()
    model = core.read_model(sparse_int8)
    assert weight_sparsity(model) > 0.85
    rng = np.random.default_rng(1)
    inputs = {"input_ids": rng.integers(5, 2000, (4, 64)), "attention_mask": np.ones((4, 64), dtype=np.int64),
              "token_type_ids": np.zeros((4, 64), dtype=np.int64)}  # fmt: skip
    spr = get_target("sapphirerapids")
    dense = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(inputs)
    sparse = core.compile_model(model, "CPU", {**compile_config("LATENCY", spr, "int8"), "INFERENCE_PRECISION_HINT": "f32"})
    assert float(sparse.get_property("CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE")) == pytest.approx(0.5)
    got = sparse(inputs)
    amx = {"amx_tile", "amx_int8"} <= set(detect_cpu().get("flags", []))
    for a, b in zip(dense.values(), got.values()):
        if amx:  # the sparse kernels accumulate in another order
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)
        else:  # no AMX: OpenVINO ignores the rate, the very same kernels run
            np.testing.assert_array_equal(a, b)


def test_the_kernel_census_says_whether_the_zeros_ran_as_zeros(sparse_int8) -> None:  # type: ignore[no-untyped-def]
    """On an AMX host every FullyConnected layer whose INT8 weights qualify (both dimensions multiples of
    64: all but the 2-output QA head) runs a sparse kernel at the profile's rate; without the rate, or
    on a host without AMX, none does and the kernels are the dense compile's."""
    import openvino as ov

    from targets import detect_cpu
    from workers.openvino_timing import kernel_census

    core, f32 = ov.Core(), {"INFERENCE_PRECISION_HINT": "f32"}
    dense = kernel_census(core, str(sparse_int8), 64, f32)
    sparse = kernel_census(core, str(sparse_int8), 64, {**compile_config("LATENCY", get_target("sapphirerapids"), "int8"), **f32})
    assert dense["sparse"] == 0 and dense["fully_connected"] >= 2
    if {"amx_tile", "amx_int8"} <= set(detect_cpu().get("flags", [])):
        assert sparse["sparse"] == sparse["fully_connected"] - 1, sparse
        assert any("sparse" in k for k in sparse["kernels"])
    else:
        assert sparse == dense
