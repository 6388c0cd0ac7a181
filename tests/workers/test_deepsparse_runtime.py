"""The optional DeepSparse runtime and the ONNX export it reads (``workers.runtimes.deepsparse``, ``workers.export_onnx``).

Everywhere: without the DeepSparse venv the runtime says how to get it and refuses to run; the ONNX export
(FP32, 90% sparse, NNCF-quantized) computes what the PyTorch model computes (checked with ONNX's reference
evaluator, no engine needed). Where ``.venv-deepsparse`` exists (``make deepsparse-venv``): DeepSparse's
logits match PyTorch's, a 90%-sparse model and the INT8 export run, and ``measure`` says what it measured.
Tiny models (2 layers, 32-64 wide, 16-24 tokens) keep each test to seconds.
"""

from __future__ import annotations

import copy
import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.types import Measurement
from workers.runtimes import get_runtime
from workers.runtimes.deepsparse import LABEL, PYTHON_ENV, onnx_path

SEQ = 16


def _batch(rng: np.random.Generator, batch: int, seq: int) -> dict[str, np.ndarray]:
    mask = np.ones((batch, seq), dtype=np.int64)
    mask[0, seq // 2 :] = 0  # a padded row
    types = np.zeros((batch, seq), dtype=np.int64)
    types[:, seq // 3 :] = 1
    return {"input_ids": rng.integers(5, 500, (batch, seq), dtype=np.int64), "attention_mask": mask, "token_type_ids": types}


def _torch_logits(model: Any, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    from workers.evaluate import torch_runner

    return torch_runner(model)(batch)


def _reference_logits(path: Path, batch: dict[str, np.ndarray]) -> list[np.ndarray]:
    """ONNX's own reference evaluator. It implements (De)QuantizeLinear from opset 19 only, so the graph is read as
    opset 19: those ops compute the same there (per-tensor or per-axis int8/uint8), as do the others of this graph."""
    import onnx
    from onnx.reference import ReferenceEvaluator

    proto = onnx.load(str(path))
    for opset in proto.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = max(opset.version, 19)
    return ReferenceEvaluator(proto).run(None, batch)


def _sparsify(model: Any, ratio: float) -> Any:
    """Magnitude-zero ``ratio`` of each encoder Linear's weights (unstructured), as pruning leaves them."""
    import torch

    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and ".encoder." in f".{name}.":
                w = module.weight
                k = int(w.numel() * ratio)
                threshold = w.abs().flatten().kthvalue(k).values
                w[w.abs() <= threshold] = 0.0
    return model


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 2-layer, 64-wide BERT QA model exported FP32, 90% sparse, and NNCF-quantized (stripped to QDQ)."""
    import nncf
    import torch
    import transformers

    from workers.compression.nncf_torch import prepare_extension, strip_for_export
    from workers.export_onnx import save_onnx

    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=2048, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=128, max_position_embeddings=64)  # fmt: skip
    dense = transformers.BertForQuestionAnswering(cfg).eval()
    sparse = _sparsify(copy.deepcopy(dense), 0.9)
    root = tmp_path_factory.mktemp("deepsparse")
    prepare_extension()
    rng = np.random.default_rng(0)
    calibration = [{k: torch.from_numpy(v) for k, v in _batch(rng, 1, SEQ).items()} for _ in range(8)]
    quantized = strip_for_export(nncf.quantize(copy.deepcopy(dense), nncf.Dataset(calibration), model_type=nncf.ModelType.TRANSFORMER, subset_size=8))
    return {
        "dense": dense,
        "sparse": sparse,
        "quantized": quantized,
        "fp32": save_onnx(dense, root / "fp32", seq_len=SEQ),
        "sparse90": save_onnx(sparse, root / "sparse90", seq_len=SEQ),
        "int8": save_onnx(quantized, root / "int8", seq_len=SEQ),
    }


@pytest.fixture
def deepsparse() -> Any:
    runtime = get_runtime("deepsparse")
    reason = runtime.unavailable()
    if reason:
        pytest.skip(reason)
    return runtime


# --- everywhere -------------------------------------------------------------------------------------------


def test_without_the_venv_it_says_how_to_get_it_and_refuses_to_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(PYTHON_ENV, str(tmp_path / "no-such-venv" / "bin" / "python"))
    runtime = get_runtime("deepsparse")
    reason = runtime.unavailable()
    assert reason and "make deepsparse-venv" in reason and "end-of-life" in reason and "evaluation licence" in reason
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(RuntimeError, match="make deepsparse-venv"):
        runtime.compile(tmp_path / "model.onnx", precision="fp32")
    with pytest.raises(RuntimeError, match="make deepsparse-venv"):
        runtime.measure(tmp_path / "model.onnx", target="native", precision="fp32", seq_len=SEQ, throughput_batch=2, min_iterations=1, min_seconds=0)
    with pytest.raises(ValueError, match="bf8"):  # a bad precision is the caller's error, installed or not
        runtime.compile(tmp_path / "model.onnx", precision="bf8")


def test_an_interpreter_without_deepsparse_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PYTHON_ENV, sys.executable)  # the project's own venv: no deepsparse in it
    reason = get_runtime("deepsparse").unavailable()
    assert reason and "cannot import deepsparse" in reason and sys.executable in reason and "make deepsparse-venv" in reason


def test_the_onnx_file_is_found_beside_the_ir_or_named(tmp_path: Path) -> None:
    xml = tmp_path / "openvino_model.xml"
    with pytest.raises(FileNotFoundError, match=r"model\.onnx.*save_onnx"):
        onnx_path(xml)
    (tmp_path / "model.onnx").write_bytes(b"")
    assert onnx_path(xml) == tmp_path / "model.onnx" == onnx_path(tmp_path / "model.onnx")
    with pytest.raises(FileNotFoundError, match="other.onnx"):
        onnx_path(tmp_path / "other.onnx")


def test_export_has_the_irs_interface_and_computes_what_torch_does(models: dict[str, Any]) -> None:
    import onnx

    graph = onnx.load(str(models["fp32"])).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [o.name for o in graph.output] == ["start_logits", "end_logits"]
    assert all([d.dim_param for d in i.type.tensor_type.shape.dim] == ["batch", "sequence"] for i in graph.input)
    assert "IsNaN" not in {n.op_type for n in graph.node}  # eager attention, not SDPA's masking (slow in DeepSparse)
    rng = np.random.default_rng(1)
    for key, model in (("fp32", "dense"), ("sparse90", "sparse")):
        for size, seq in ((1, SEQ), (3, 24)):  # dynamic batch and sequence
            batch = _batch(rng, size, seq)
            for got, want in zip(_reference_logits(models[key], batch), _torch_logits(models[model], batch)):
                np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_int8_export_is_integer_matmuls_computing_the_fake_quantized_model(models: dict[str, Any]) -> None:
    """NNCF's QDQ pairs become MatMulInteger on int8 weights (what DeepSparse runs as INT8); the embedding
    tables' weight-only QDQ is folded; the numbers are the fake-quantized PyTorch model's."""
    import onnx

    graph = onnx.load(str(models["int8"])).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("MatMulInteger") == 2 * 6 + 1  # q, k, v, attention output, two FFN per layer; qa_outputs
    assert "QuantizeLinear" in ops and "IsNaN" not in ops  # eager attention here too: the quantizers did not move
    producer = {o: n.op_type for n in graph.node for o in n.output}
    assert all(producer.get(n.input[0]) != "DequantizeLinear" for n in graph.node if n.op_type == "Gather")
    batch = _batch(np.random.default_rng(2), 2, SEQ)
    got, want, fp32 = _reference_logits(models["int8"], batch), _torch_logits(models["quantized"], batch), _torch_logits(models["dense"], batch)
    for g, w, f in zip(got, want, fp32):
        np.testing.assert_allclose(g, w, atol=2e-3)
        assert np.corrcoef(g.ravel(), f.ravel())[0, 1] > 0.95


def test_eager_attention_is_restored_after_export(models: dict[str, Any]) -> None:
    assert models["dense"].config._attn_implementation == "sdpa" and not models["dense"].training


# --- where the DeepSparse venv exists ---------------------------------------------------------------------


def test_fp32_and_sparse_logits_match_torch(deepsparse: Any, models: dict[str, Any]) -> None:
    rng = np.random.default_rng(3)
    for key, model in (("fp32", "dense"), ("sparse90", "sparse")):
        run = deepsparse.compile(models[key], precision="fp32")
        for size, seq in ((1, SEQ), (3, 24), (1, SEQ)):  # a new shape compiles an engine, a known one reuses it
            batch = _batch(rng, size, seq)
            for got, want in zip(run(batch), _torch_logits(models[model], batch)):
                assert got.shape == want.shape == (size, seq)
                np.testing.assert_allclose(got, want, atol=1e-3, rtol=1e-3)
        run.close()


def test_int8_runs_and_follows_the_model(deepsparse: Any, models: dict[str, Any]) -> None:
    run = deepsparse.compile(models["int8"], precision="int8")
    batch = _batch(np.random.default_rng(4), 4, SEQ)
    for got, fake_quantized, fp32 in zip(run(batch), _torch_logits(models["quantized"], batch), _torch_logits(models["dense"], batch)):
        assert np.isfinite(got).all() and not np.array_equal(got, fp32)
        np.testing.assert_allclose(got, fake_quantized, atol=2e-3)
        assert np.corrcoef(got.ravel(), fp32.ravel())[0, 1] > 0.95
    with pytest.raises(ValueError, match="int8 graph, not fp32"):
        deepsparse.compile(models["int8"], precision="fp32")


def test_the_trials_onnx_file_is_left_as_it_is(deepsparse: Any, models: dict[str, Any]) -> None:
    """DeepSparse's engine would rewrite the input shapes of the file it compiles; the child compiles a copy."""
    before = hashlib.sha256(models["fp32"].read_bytes()).hexdigest()
    run = deepsparse.compile(models["fp32"], precision="fp32")
    run(_batch(np.random.default_rng(5), 2, 20))
    run.close()
    assert hashlib.sha256(models["fp32"].read_bytes()).hexdigest() == before


def test_measure_says_what_and_where(deepsparse: Any, models: dict[str, Any]) -> None:
    from targets import HardwareTarget

    one_core = HardwareTarget(name="one-core", isa=None, threads=1, seq_len=SEQ)
    m = deepsparse.measure(models["sparse90"], target=one_core, precision="fp32", seq_len=SEQ, throughput_batch=4,  # type: ignore[arg-type]
                           min_iterations=5, min_seconds=0.05, max_repeats=1)  # fmt: skip
    assert isinstance(m, Measurement)
    assert (m.target, m.precision, m.seq_len, m.latency_batch, m.throughput_batch) == ("one-core", "fp32", SEQ, 1, 4)
    assert 0 < m.p50_ms <= m.p90_ms <= m.p99_ms and m.throughput_sps > 0 and m.latency_iterations >= 5
    fp = m.fingerprint
    assert fp["runtime"] == "deepsparse" and fp["runtime_label"] == LABEL and fp["deepsparse_version"].startswith("1.8")
    assert fp["num_cores"] == fp["threads_cap"] == 1 and fp["emulated"] is False and fp["host_cpu"]["model_name"]
    assert fp["onnx_sha256"] == hashlib.sha256(models["sparse90"].read_bytes()).hexdigest()
    assert 0 < fp["fraction_of_supported_ops"] <= 1 and fp["repeats"] == 1


def test_measure_refuses_a_target_it_would_have_to_emulate(deepsparse: Any, models: dict[str, Any]) -> None:
    from targets import detect_cpu, get_target

    other = next(name for name in ("cascadelake", "icelake", "sapphirerapids") if get_target(name).stands_for != detect_cpu()["microarchitecture"])
    with pytest.raises(ValueError, match="cannot emulate"):
        deepsparse.measure(models["fp32"], target=other, precision="fp32", seq_len=SEQ, throughput_batch=2, min_iterations=1, min_seconds=0)
