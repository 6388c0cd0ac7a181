"""measure_ir end to end on a tiny BERT QA IR, each measurement (repeat) in its own subprocess."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from core.types import Measurement
from workers import benchmark
from workers.benchmark import measure_ir
from workers.measurement_process import PROJECT_ROOT, child_env
from workers.openvino_timing import compile_config, thread_cap
from workers.repeat_stats import combine_repeats, spread_pct
from targets import TARGETS, HardwareTarget, logical_cpus

SEQ_LEN = 32
ONCE = {"min_repeats": 1, "max_repeats": 1}
FAST = {"seq_len": SEQ_LEN, "min_iterations": 10, "min_seconds": 0.2, "warmup": 2, "throughput_batch": 4, **ONCE}


@pytest.fixture(scope="module")
def int8_default(tiny_ir: Path) -> Measurement:
    return measure_ir(tiny_ir, **FAST)


def assert_sane(m: Measurement) -> None:
    assert 0 < m.p50_ms <= m.p90_ms <= m.p99_ms
    assert m.latency_iterations >= FAST["min_iterations"]
    assert m.throughput_sps > 0
    assert m.fingerprint["throughput_iterations"] >= FAST["min_iterations"]
    assert m.seq_len == SEQ_LEN and m.latency_batch == 1 and m.throughput_batch == 4


def test_int8_default_precision(int8_default: Measurement):
    assert_sane(int8_default)
    fp = int8_default.fingerprint
    assert (int8_default.target, int8_default.precision) == ("native", "int8")
    assert fp["native"] is True and fp["emulated"] is False
    assert fp["isa_cap"] is None
    assert fp["threads"] >= 1 and fp["streams"] >= 1 and fp["nireq"] >= 1
    assert fp["openvino_version"] and fp["python_version"] and fp["measured_at"].endswith("+00:00")


def test_a_sparse_weight_target_says_which_kernels_ran(tiny_ir: Path, int8_default: Measurement):
    """Sapphire Rapids' profile asks for sparse-weight decompression on INT8: its measurement reads back from
    OpenVINO's performance counters how many FullyConnected layers ran a sparse kernel (the tiny IR's weights
    are dense: none); a profile without the rate has no such census, and FP32 never gets the rate."""
    m = measure_ir(tiny_ir, target="sapphirerapids", **FAST)
    census = m.fingerprint["sparse_kernels"]
    assert census["fully_connected"] >= 2 and census["sparse"] == 0 and census["kernels"]
    assert "sparse_kernels" not in int8_default.fingerprint
    assert "sparse_kernels" not in measure_ir(tiny_ir, target="sapphirerapids", precision="fp32", **FAST).fingerprint


def test_fp32_runs_in_f32(tiny_ir: Path):
    m = measure_ir(tiny_ir, precision="fp32", **FAST)
    assert_sane(m)
    assert m.precision == "fp32"
    assert m.fingerprint["inference_precision"] == "f32"


def test_cascadelake_is_emulated_with_isa_cap(tiny_ir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # the target's cap must win over the caller's
    m = measure_ir(tiny_ir, target="cascadelake", **FAST)
    assert_sane(m)
    assert m.target == "cascadelake"
    assert m.fingerprint["isa_cap"] == "AVX512_CORE_VNNI"
    assert m.fingerprint["emulated"] is True and m.fingerprint["native"] is False
    assert m.fingerprint["inference_precision"] == "f32"  # no bf16 on Cascade Lake
    cap = min(4, logical_cpus())  # the profile's 4 threads, at most what this machine has
    assert m.fingerprint["threads_cap"] == cap and m.fingerprint["threads"] == cap
    assert m.fingerprint["target_profile"]["cores"] == 4 and m.fingerprint["target_source"] == "builtin"


def test_adhoc_target_with_thread_cap(tiny_ir: Path):
    avx2 = HardwareTarget("avx2-1t", "AVX2", threads=1, seq_len=SEQ_LEN, throughput_batch=4)
    fast = {k: v for k, v in FAST.items() if k not in ("seq_len", "throughput_batch")}
    m = measure_ir(tiny_ir, target=avx2, **fast)  # seq_len and batches from the profile
    assert_sane(m)
    fp = m.fingerprint
    assert (m.target, fp["isa_cap"], fp["emulated"], fp["inference_precision"]) == ("avx2-1t", "AVX2", True, "f32")
    assert fp["threads"] == 1 and fp["threads_cap"] == 1


def test_two_repeats_combined(tiny_ir: Path):
    m = measure_ir(tiny_ir, **{**FAST, "min_repeats": 2, "max_repeats": 2})
    assert_sane(m)
    fp = m.fingerprint
    assert fp["repeats"] == 2 and len(fp["repeat_p50_ms"]) == len(fp["repeat_throughput_sps"]) == 2
    assert fp["spread_pct"] == pytest.approx(spread_pct(fp["repeat_p50_ms"]), abs=0.01)
    assert fp["converged"] == (fp["spread_pct"] < 2.0) and fp["throughput_spread_pct"] >= 0
    assert m.p50_ms == pytest.approx(statistics.median(fp["repeat_p50_ms"]), rel=1e-4)
    assert m.latency_iterations >= 2 * FAST["min_iterations"]


def _fake(p50: float, sps: float = 100.0) -> Measurement:
    return Measurement("native", "int8", 32, 1, p50, p50 * 1.1, p50 * 1.2, 10, 4, sps, {"nice": 0, "threads": 2})


def test_combine_repeats_takes_medians():
    m = combine_repeats([_fake(10.0, 100), _fake(12.0, 90), _fake(10.4, 110)])
    assert (m.p50_ms, m.p90_ms, m.throughput_sps) == (10.4, pytest.approx(11.44), 100)
    assert m.latency_iterations == 30
    fp = m.fingerprint
    assert fp["repeats"] == 3 and fp["spread_pct"] == pytest.approx(2 / 10.4 * 100, abs=1e-3)
    assert fp["throughput_spread_pct"] == pytest.approx(20.0) and fp["converged"] is False
    assert fp["threads"] == 2
    assert spread_pct([5.0]) == 0.0
    single = combine_repeats([_fake(10.0)]).fingerprint
    assert (single["repeats"], single["spread_pct"], single["converged"]) == (1, 0.0, None)


@pytest.mark.parametrize(
    ("p50s", "kwargs", "expected"),
    [
        ([10.0, 10.1, 99.0], {}, 2),  # the first two agree within 2%
        ([10.0, 12.0, 12.1, 12.05, 12.0, 99.0], {}, 5),  # an early outlier: repeat up to the cap
        ([10.0, 10.5, 10.4, 99.0], {"max_spread_pct": 10.0}, 2),
        ([10.0, 10.0, 10.0, 10.0], {"min_repeats": 3, "max_repeats": 4}, 3),
        ([10.0, 50.0], {"min_repeats": 1, "max_repeats": 1}, 1),
    ],
)
def test_repeat_loop_stops_on_agreement_or_cap(tiny_ir: Path, monkeypatch, p50s, kwargs, expected):
    calls = iter(p50s)
    monkeypatch.setattr(benchmark, "_run_child", lambda *a, **k: _fake(next(calls)))
    m = measure_ir(tiny_ir, seq_len=SEQ_LEN, **kwargs)
    assert m.fingerprint["repeats"] == expected


def test_repeat_bounds_are_checked(tiny_ir: Path):
    with pytest.raises(ValueError, match="min_repeats"):
        measure_ir(tiny_ir, seq_len=SEQ_LEN, min_repeats=3, max_repeats=2)


def test_thread_cap_in_compile_config():
    clx = TARGETS["cascadelake"]
    assert compile_config("LATENCY", clx, "int8", available=64)["INFERENCE_NUM_THREADS"] == 4
    assert compile_config("THROUGHPUT", clx, "int8", available=2)["INFERENCE_NUM_THREADS"] == 2
    assert "INFERENCE_NUM_THREADS" not in compile_config("LATENCY", TARGETS["native"], "int8")
    assert thread_cap(replace(clx, threads=None, cores=6), available=64) == 6  # one thread per core
    streams = replace(clx, streams=3)
    assert compile_config("THROUGHPUT", streams, "int8", streams=True)["NUM_STREAMS"] == 3


def test_child_renices_and_never_imports_torch(tiny_ir: Path):
    """Run the measurement child at nice 15, as under a Ray worker: it runs at 0 (as root) and without torch."""
    code = (
        "import sys; from workers.benchmark import main; main(sys.argv[1:]); "
        "print('TORCH', 'torch' in sys.modules, 'transformers' in sys.modules)"
    )
    args = [str(tiny_ir), "--seq-len", "32", "--min-iterations", "5", "--min-seconds", "0.05",
            "--throughput-batch", "2", "--warmup", "1", "--json"]  # fmt: skip
    env = child_env(TARGETS["native"], os.environ)
    cmd = [sys.executable, "-c", code, *args]
    if shutil.which("nice"):
        cmd = ["nice", "-n", "15", *cmd]
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
    lines = proc.stdout.splitlines()
    fp = json.loads(next(line for line in lines if line.startswith("{")))["fingerprint"]
    assert "TORCH False False" in lines
    if os.geteuid() == 0:
        assert fp["nice"] == 0  # every thread, OpenVINO's included
    else:
        assert fp["nice"] >= 0


def test_native_ignores_callers_isa_cap(tiny_ir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    m = measure_ir(tiny_ir, **FAST)
    assert m.fingerprint["isa_cap"] is None and m.fingerprint["native"] is True


def test_unknown_target_names_known_ones(tiny_ir: Path):
    with pytest.raises(KeyError, match="cascadelake") as exc:
        measure_ir(tiny_ir, target="haswell", **FAST)
    assert "native" in str(exc.value) and "sapphirerapids" in str(exc.value)


def test_unknown_precision(tiny_ir: Path):
    with pytest.raises(ValueError, match="precision"):
        measure_ir(tiny_ir, precision="fp16", **FAST)


def _broken_xml(tmp_path: Path) -> Path:
    bad = tmp_path / "broken.xml"
    bad.write_text('<?xml version="1.0"?>\n<net name="broken" version="11"><layers><layer id="0"')
    return bad


def test_corrupt_xml_reports_openvino_error(tmp_path: Path):
    with pytest.raises(RuntimeError, match="Error parsing"):
        measure_ir(_broken_xml(tmp_path), **FAST)


def test_truncated_weights_report_openvino_error(tiny_ir: Path, tmp_path: Path):
    """An IR whose .bin was cut short fails the measurement with OpenVINO's own words."""
    shutil.copy(tiny_ir, tmp_path / tiny_ir.name)
    weights = tiny_ir.with_suffix(".bin").read_bytes()
    (tmp_path / tiny_ir.with_suffix(".bin").name).write_bytes(weights[: len(weights) // 3])
    with pytest.raises(RuntimeError, match="(?s)failed \\(exit 1\\).*Incorrect weights in bin file"):
        measure_ir(tmp_path / tiny_ir.name, **FAST)


def test_error_text_keeps_the_exception_not_the_traceback():
    stderr = (
        "E0000 text_format.cc:417] Error parsing text-format tensorflow.GraphDef\n"
        "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
        "RuntimeError: Exception from src/inference/src/cpp/core.cpp:84:\nUnable to read the model\n"
    )
    assert benchmark.error_text(stderr) == (
        "RuntimeError: Exception from src/inference/src/cpp/core.cpp:84:\nUnable to read the model"
    )
    assert benchmark.error_text("Killed\n") == "Killed\n"


def test_evaluate_ir_on_corrupt_ir_raises_openvino_error(tmp_path: Path):
    """A trial whose IR does not compile fails with OpenVINO's message (before reading any data)."""
    from core.types import SubnetConfig, TrialRequest
    from workers.pipeline import evaluate_ir

    req = TrialRequest(
        job_id="j", trial_number=0, subnet=SubnetConfig((0,), (1,), (1,)), teacher_dir=str(tmp_path),
        train_file="absent.json", eval_file="absent.json", max_seq_length=SEQ_LEN, doc_stride=8,
        max_eval_examples=1, calibration_samples=1, targets=("native",), output_dir=str(tmp_path),
    )  # fmt: skip
    with pytest.raises(RuntimeError, match="Error parsing"):
        evaluate_ir(_broken_xml(tmp_path), req, precision="int8")


def test_missing_ir_fails_before_spawning(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        measure_ir(tmp_path / "absent.xml", **FAST)


def test_synthetic_inputs_find_the_known_name_among_a_ports_names() -> None:
    """Traced IRs can carry a tracer's name ("308") beside the input's own on one port."""
    import openvino as ov
    import openvino.opset13 as ops

    from workers.openvino_timing import synthetic_inputs

    params = []
    for name in ("input_ids", "attention_mask", "token_type_ids"):
        p = ops.parameter([1, 8], ov.Type.i64, name=name)
        p.output(0).set_names({"308", name} if name == "attention_mask" else {name})
        params.append(p)
    model = ov.Model([ops.add(ops.add(params[0], params[1]), params[2])], params)
    assert set(synthetic_inputs(model, 1, 8)) == {"input_ids", "attention_mask", "token_type_ids"}
