"""``hwnas bench`` (IR directory or model zip; clear errors for bad input) and ``hwnas targets``."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from cli.main import main
from cli.bench import ModelInputError, resolve_model

FAST_ARGS = ["--seq-len", "32", "--throughput-batch", "4", "--iterations", "10", "--seconds", "0.2",
             "--min-repeats", "1", "--max-repeats", "1"]  # fmt: skip


def make_zip(ir_xml: Path, dest: Path, *, prefix: str = "") -> Path:
    """The layout of the service's model download: the IR files (and a card) at the top."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(ir_xml, prefix + "openvino_model.xml")
        zf.write(ir_xml.with_suffix(".bin"), prefix + "openvino_model.bin")
        zf.writestr(prefix + "model_card.json", "{}")
    return dest


@pytest.fixture(scope="module")
def model_zip(tiny_ir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_zip(tiny_ir, tmp_path_factory.mktemp("zip") / "best-int8-trial3.zip")


def test_resolve_directory_xml_and_zip(tiny_ir: Path, model_zip: Path, tmp_path: Path):
    assert resolve_model(tiny_ir.parent, tmp_path) == tiny_ir
    assert resolve_model(tiny_ir, tmp_path) == tiny_ir
    xml = resolve_model(model_zip, tmp_path / "a")
    assert xml == tmp_path / "a" / "openvino_model.xml" and xml.with_suffix(".bin").is_file()
    nested = make_zip(tiny_ir, tmp_path / "nested.zip", prefix="trial-3/")
    assert resolve_model(nested, tmp_path / "b") == tmp_path / "b" / "trial-3" / "openvino_model.xml"


def test_truncated_zip_is_a_clear_error(model_zip: Path, tmp_path: Path):
    cut = tmp_path / "cut.zip"
    cut.write_bytes(model_zip.read_bytes()[: model_zip.stat().st_size // 2])
    with pytest.raises(ModelInputError, match=r"cut\.zip: not a readable zip archive .*truncated or corrupted"):
        resolve_model(cut, tmp_path / "x")


def test_corrupted_member_is_a_clear_error(model_zip: Path, tmp_path: Path):
    data = bytearray(model_zip.read_bytes())
    with zipfile.ZipFile(model_zip) as zf:
        info = zf.getinfo("openvino_model.bin")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)  # the member's compressed bytes
    for i in range(start + 100, start + 140):
        data[i] ^= 0xFF
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelInputError, match=r"bad\.zip: (corrupted zip|not a readable zip)"):
        resolve_model(bad, tmp_path / "x")


def test_other_bad_inputs(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelInputError, match="no OpenVINO IR"):
        resolve_model(tmp_path / "empty", tmp_path)
    with pytest.raises(ModelInputError, match="no such file"):
        resolve_model(tmp_path / "absent.zip", tmp_path)
    junk = tmp_path / "junk.zip"
    junk.write_text("not a zip")
    with pytest.raises(ModelInputError, match="junk.zip: not a readable zip"):
        resolve_model(junk, tmp_path / "x")


def test_bench_zip_json(model_zip: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["bench", str(model_zip), "--target", "cascadelake", "--json", *FAST_ARGS]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["model"] == str(model_zip)
    m = out["measurement"]
    assert (m["target"], m["precision"], m["seq_len"], m["throughput_batch"]) == ("cascadelake", "int8", 32, 4)
    assert m["fingerprint"]["emulated"] is True and m["fingerprint"]["repeats"] == 1
    assert 0 < m["p50_ms"] <= m["p90_ms"]


def test_bench_table(tiny_ir: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["bench", str(tiny_ir.parent), "--precision", "fp32", *FAST_ARGS]) == 0
    out = capsys.readouterr().out
    assert "SingleStream b=1" in out and "Offline b=4" in out and "runs as f32" in out and "native" in out


def test_bench_bad_zip_exits_2_without_traceback(model_zip: Path, tmp_path: Path, capsys):
    cut = tmp_path / "download.zip"
    cut.write_bytes(model_zip.read_bytes()[:500])
    assert main(["bench", str(cut)]) == 2
    err = capsys.readouterr().err
    assert "download.zip" in err and "truncated or corrupted" in err and "Traceback" not in err


def test_bench_unknown_target_exits_2(tiny_ir: Path, capsys):
    assert main(["bench", str(tiny_ir), "--target", "pentium"]) == 2
    assert "known targets: native, cascadelake" in capsys.readouterr().err


def test_bench_uncompilable_ir_exits_1_with_openvino_message(tmp_path: Path, capsys):
    bad = tmp_path / "openvino_model.xml"
    bad.write_text('<?xml version="1.0"?>\n<net name="broken" version="11"><layers>')
    assert main(["bench", str(tmp_path), *FAST_ARGS]) == 1
    err = capsys.readouterr().err
    assert "Error parsing" in err or "Exception from" in err


def test_targets_lists_profiles_and_this_machine(tmp_path: Path, capsys, monkeypatch):
    from targets import TARGETS, detect_cpu

    monkeypatch.delenv("HWNAS_TARGETS_DIR", raising=False)
    (tmp_path / "targets").mkdir()
    (tmp_path / "targets" / "edge.yaml").write_text("name: edge-avx2\nisa: AVX2\ncores: 2\n")
    try:
        assert main(["targets", "--data-dir", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        for name in ("native", "cascadelake", "icelake", "sapphirerapids", "edge-avx2", "AVX512_CORE_VNNI"):
            assert name in out
        assert "this machine:" in out and f"[{detect_cpu()['microarchitecture']}]" in out
        assert main(["targets", "--json", "--data-dir", str(tmp_path)]) == 0
        info = json.loads(capsys.readouterr().out)
        names = [t["name"] for t in info["targets"]]
        assert names[:4] == ["native", "cascadelake", "icelake", "sapphirerapids"] and "edge-avx2" in names
        assert info["host"]["native_target"] == "native" or info["host"]["microarchitecture"] in names
        (tmp_path / "targets" / "broken.yaml").write_text("name: x\ncores: lots\n")
        assert main(["targets", "--data-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert "broken.yaml" in err and "cores" in err
    finally:
        TARGETS.reset()
