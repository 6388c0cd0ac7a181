"""measure_ir end to end on a tiny BERT QA IR, each measurement in its own subprocess."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from nas.types import Measurement
from workers.benchmark import measure_ir

SEQ_LEN = 32
FAST = {"seq_len": SEQ_LEN, "min_iterations": 10, "min_seconds": 0.2, "warmup": 2, "throughput_batch": 4}


@pytest.fixture(scope="module")
def tiny_ir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 64-wide BERT QA model exported the way the worker pipeline exports one."""
    import openvino as ov
    import torch
    from transformers import BertConfig, BertForQuestionAnswering

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=3000,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=128,
    )
    model = BertForQuestionAnswering(config).eval()
    example = {
        "input_ids": torch.randint(1000, 2000, (2, SEQ_LEN)),
        "attention_mask": torch.ones(2, SEQ_LEN, dtype=torch.int64),
        "token_type_ids": torch.zeros(2, SEQ_LEN, dtype=torch.int64),
    }
    with warnings.catch_warnings():
        # TracerWarnings from transformers' mask helpers: checked benign (a padded mask and
        # other shapes match PyTorch), the traced graph keeps attention_mask and dynamic dims.
        warnings.simplefilter("ignore")
        ov_model = ov.convert_model(model, example_input=example)
    assert all(p.get_partial_shape().is_dynamic for p in ov_model.inputs)  # no reshape needed
    xml = tmp_path_factory.mktemp("tiny_ir") / "openvino_model.xml"
    ov.save_model(ov_model, xml)
    return xml


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


def test_corrupt_xml_reports_openvino_error(tmp_path: Path):
    bad = tmp_path / "broken.xml"
    bad.write_text('<?xml version="1.0"?>\n<net name="broken" version="11"><layers><layer id="0"')
    with pytest.raises(RuntimeError, match="Error parsing"):
        measure_ir(bad, **FAST)


def test_missing_ir_fails_before_spawning(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        measure_ir(tmp_path / "absent.xml", **FAST)
