"""Conformance suite of the runtime registry (``workers.runtimes.RUNTIMES``): every runtime passes it.

A tiny random BERT QA model is exported the way the pipeline exports one (``workers.export``), and
quantized INT8 the way a trial is (``workers.quantize``); each runtime must run both with the logits
PyTorch computes, drive ``evaluate_qa`` and measure speed. A new runtime is tested by adding its
registry line (and, if it reads another file than the IR, how to write that file beside it: ``BESIDE_IR``).
A runtime that is not installed here (``Runtime.unavailable()``: an optional engine) is skipped with its reason.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.types import Measurement
from workers.runtimes import PRECISIONS, RUNTIMES, Runtime, SweepRequest, get_runtime

ROOT = Path(__file__).resolve().parents[2]
SEQ = 16
NAMES = sorted(RUNTIMES)


def _batch(rng: np.random.Generator, batch: int, seq: int) -> dict[str, np.ndarray]:
    mask = np.ones((batch, seq), dtype=np.int64)
    mask[0, seq // 2 :] = 0  # a padded row
    types = np.zeros((batch, seq), dtype=np.int64)
    types[:, seq // 3 :] = 1
    return {"input_ids": rng.integers(5, 500, (batch, seq), dtype=np.int64), "attention_mask": mask, "token_type_ids": types}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 2-layer, 32-wide BERT QA model (its vocabulary covers the export's example ids), its FP32 IR
    and an INT8 (NNCF PTQ) IR, written as a trial writes them."""
    import torch
    import transformers

    from workers.export import save_ir, to_openvino
    from workers.quantize import quantize_int8

    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=2048, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=64)  # fmt: skip
    model = transformers.BertForQuestionAnswering(cfg).eval()
    root = tmp_path_factory.mktemp("runtime-conformance")
    fp32 = save_ir(to_openvino(model, seq_len=SEQ), root / "fp32")
    rng = np.random.default_rng(0)
    calibration = [_batch(rng, 1, SEQ) for _ in range(8)]
    int8 = save_ir(quantize_int8(to_openvino(model, seq_len=SEQ), calibration, subset_size=8), root / "int8")
    return {"model": model, "fp32": fp32, "int8": int8, "calibration": calibration}


def _onnx_beside(model: Any, directory: Path, precision: str, calibration: list[dict[str, np.ndarray]] | None = None) -> None:
    """``model.onnx`` as DeepSparse reads it: the FP32 model, or for int8 the model quantized on the PyTorch
    side (NNCF, as ``qat_int8`` quantizes before it trains) and stripped to QDQ (the INT8 IR is OpenVINO's own)."""
    import copy

    from workers.export_onnx import save_onnx

    if precision == "fp32":
        save_onnx(model, directory, seq_len=SEQ)
        return
    import nncf
    import torch

    from workers.compression.nncf_torch import prepare_extension, strip_for_export

    prepare_extension()
    batches = [{k: torch.from_numpy(v) for k, v in b.items()} for b in calibration or ()]
    quantized = nncf.quantize(copy.deepcopy(model), nncf.Dataset(batches), model_type=nncf.ModelType.TRANSFORMER, subset_size=len(batches))
    save_onnx(strip_for_export(quantized), directory, seq_len=SEQ)


# What a runtime reads besides the IR, written beside it (runtime name -> writer(model, directory, precision, calibration)).
BESIDE_IR: dict[str, Callable[..., None]] = {"deepsparse": _onnx_beside}


@pytest.fixture(scope="module")
def beside_ir(exported: dict[str, Any]) -> dict[str, Any]:
    """The files of ``BESIDE_IR`` next to the FP32 and INT8 IRs (written once, only for a runtime that runs here)."""
    for writer in BESIDE_IR.values():
        for precision in PRECISIONS:
            writer(exported["model"], Path(exported[precision]).parent, precision, exported["calibration"])
    return exported


def _torch_logits(model: Any, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    from workers.evaluate import torch_runner

    return torch_runner(model)(batch)


@pytest.fixture(scope="module", params=NAMES)
def runtime(request: pytest.FixtureRequest) -> Runtime:
    """A runtime that runs here (else the test is skipped with its reason), its files beside the IRs."""
    found = get_runtime(request.param)
    reason = found.unavailable()
    if reason:
        pytest.skip(reason)
    if found.name in BESIDE_IR:
        request.getfixturevalue("beside_ir")
    return found


@pytest.mark.parametrize("name", NAMES)
def test_lookup_and_laziness(name: str) -> None:
    """Also for a runtime that is not installed here: looking it up loads nothing, and it says whether it runs."""
    runtime = get_runtime(name)
    assert isinstance(runtime, Runtime) and RUNTIMES[runtime.name]
    reason = runtime.unavailable()
    assert reason is None or (isinstance(reason, str) and reason)
    assert get_runtime(runtime.name) is runtime
    assert runtime.precisions and set(runtime.precisions) <= set(PRECISIONS)
    with pytest.raises(ValueError, match="unknown runtime 'no-such-runtime'.*" + runtime.name):
        get_runtime("no-such-runtime")
    code = (
        "import sys, workers.runtimes as r\n"
        "assert not any(m in sys.modules for m in r.RUNTIMES.values()), 'a runtime was imported by the registry'\n"
        "assert not {'openvino', 'torch', 'nncf'} & set(sys.modules), 'the registry loaded an inference engine'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_fp32_logits_match_torch_at_any_shape(runtime: Runtime, exported: dict[str, Any]) -> None:
    if "fp32" not in runtime.precisions:
        pytest.skip(f"{runtime.name} does not run fp32")
    run = runtime.compile(exported["fp32"], precision="fp32")
    rng = np.random.default_rng(1)
    for batch_size, seq in ((1, SEQ), (3, 24)):  # batch and sequence length are dynamic
        batch = _batch(rng, batch_size, seq)
        for got, want in zip(run(batch), _torch_logits(exported["model"], batch)):
            assert got.shape == want.shape == (batch_size, seq)
            np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_int8_runs_the_quantized_model_close_to_torch(runtime: Runtime, exported: dict[str, Any]) -> None:
    if "int8" not in runtime.precisions:
        pytest.skip(f"{runtime.name} does not run int8")
    run = runtime.compile(exported["int8"], precision="int8")
    batch = _batch(np.random.default_rng(2), 4, SEQ)
    for got, want in zip(run(batch), _torch_logits(exported["model"], batch)):
        assert got.shape == want.shape and np.isfinite(got).all()
        assert not np.array_equal(got, want)  # INT8 changes the numbers a little ...
        assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.95  # ... and only a little


def test_bad_precision_and_missing_file_are_refused(runtime: Runtime, exported: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bf8"):
        runtime.compile(exported["fp32"], precision="bf8")
    with pytest.raises((OSError, RuntimeError)):
        runtime.compile(tmp_path / "absent.xml", precision=runtime.precisions[0])


def test_runner_drives_evaluate_qa_like_torch(runtime: Runtime, tiny_qa_model: Path, squad_files: tuple[str, str], tmp_path: Path) -> None:
    """F1/EM through the runtime's FP32 runner are the PyTorch model's (same logits, same answers)."""
    import transformers

    from core.qa.features import prepare_eval_features
    from core.qa.squad import load_squad
    from workers.evaluate import evaluate_qa, torch_runner
    from workers.export import save_ir, to_openvino

    model = transformers.AutoModelForQuestionAnswering.from_pretrained(tiny_qa_model).eval()
    tok = transformers.AutoTokenizer.from_pretrained(tiny_qa_model)
    examples = load_squad(squad_files[1], limit=10)
    feats = prepare_eval_features(examples, tok, max_seq_length=64, doc_stride=16)
    xml = save_ir(to_openvino(model, seq_len=64), tmp_path)
    if runtime.name in BESIDE_IR:
        BESIDE_IR[runtime.name](model, tmp_path, "fp32")
    got = evaluate_qa(runtime.compile(xml, precision="fp32"), examples, feats, batch_size=4)
    want = evaluate_qa(torch_runner(model), examples, feats, batch_size=4)
    assert got["count"] == want["count"] == len(examples)
    assert got["f1"] == pytest.approx(want["f1"], abs=1e-9) and got["exact_match"] == pytest.approx(want["exact_match"], abs=1e-9)


def test_measure_reports_the_scenario_it_ran(runtime: Runtime, exported: dict[str, Any]) -> None:
    precision = "int8" if "int8" in runtime.precisions else runtime.precisions[0]
    m = runtime.measure(exported[precision], target="native", precision=precision, seq_len=SEQ, throughput_batch=2,
                        min_iterations=5, min_seconds=0.1)  # fmt: skip
    assert isinstance(m, Measurement)
    assert (m.target, m.precision, m.seq_len, m.throughput_batch) == ("native", precision, SEQ, 2)
    assert 0 < m.p50_ms <= m.p90_ms and m.throughput_sps > 0 and m.latency_iterations >= 5
    assert m.fingerprint and m.fingerprint.get("emulated") is False


def test_deployment_sweep_measures_every_policy_and_says_what_it_chose(runtime: Runtime, exported: dict[str, Any]) -> None:
    """A runtime with a deployment sweep measures each length policy over the query set's real lengths,
    keeps the fixed-length figures as a candidate, and explains the choice; LoadGen ran the chosen one."""
    from workers.deployed import deployed_measurement, fixed_rows

    precision = "int8" if "int8" in runtime.precisions else runtime.precisions[0]
    fixed = runtime.measure(exported[precision], target="native", precision=precision, seq_len=64, throughput_batch=4,
                            min_iterations=5, min_seconds=0.1, max_repeats=1)  # fmt: skip
    request = SweepRequest(lengths=(9, 12, 17, 30, 33, 40, 64, 20, 11, 25, 48, 60), max_length=64, policies=("buckets", "dynamic"),
                           buckets=(16, 32, 48), batches=(1, 4), streams=(1,), objective="throughput", loadgen=True,
                           fixed=fixed_rows(fixed), min_iterations=5, min_seconds=0.1)  # fmt: skip
    lengths = request.lengths
    sweep = runtime.measure_deployment(exported[precision], target="native", precision=precision, sweep=request)
    if sweep is None:
        pytest.skip(f"{runtime.name} has no deployment sweep")
    assert [r["policy"]["name"] for r in sweep["sweep"]] == ["buckets", "dynamic", "fixed"]
    buckets = sweep["sweep"][0]
    assert buckets["policy"]["buckets"] == [16, 32, 48, 64] and 0 < buckets["padding_share"] < sweep["sweep"][2]["padding_share"]
    assert sweep["query_set"]["samples"] == len(lengths) and sweep["query_set"]["max"] == 64
    best = max((o for r in sweep["sweep"] for o in r["offline"]), key=lambda o: o["samples_per_second"])
    swept = [o for r in sweep["sweep"] for o in r["offline"] if o.get("streams_by") == "sweep"]
    assert all(o["streams"] == 1 for o in swept)  # the streams sweep: one stream instead of the hint's (where it chose more)
    assert sweep["offline"]["samples_per_second"] == best["samples_per_second"]
    assert sweep["single_stream"]["p90_ms"] == min(r["single_stream"]["p90_ms"] for r in sweep["sweep"])
    assert "Offline:" in sweep["reason"] and "vs fixed 64" in sweep["reason"]
    lg = sweep["loadgen"]
    assert lg["label"] == "LoadGen, not a valid MLPerf run" and not lg["offline"]["mlperf_valid"]
    assert lg["single_stream"]["p90_ms"] > 0 and lg["offline"]["samples_per_second"] > 0
    assert Path(lg["offline"]["summary_path"]).is_file()
    deployed = deployed_measurement(fixed, sweep)
    assert deployed.throughput_sps == lg["offline"]["samples_per_second"] and deployed.p90_ms == lg["single_stream"]["p90_ms"]
    assert deployed.fingerprint["fixed_length"]["throughput_sps"] == fixed.throughput_sps
    assert deployed.fingerprint["deployment"]["figures_by"].startswith("loadgen")
