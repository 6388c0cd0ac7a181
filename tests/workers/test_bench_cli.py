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


FAST_TIMING = ["--iterations", "10", "--seconds", "0.2", "--min-repeats", "1", "--max-repeats", "1"]


def make_zip(ir_xml: Path, dest: Path, *, prefix: str = "", card: dict | None = {}) -> Path:  # noqa: B006 (read only)
    """The layout of the service's model download: the IR files (and a card, unless None) at the top."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(ir_xml, prefix + "openvino_model.xml")
        zf.write(ir_xml.with_suffix(".bin"), prefix + "openvino_model.bin")
        if card is not None:
            zf.writestr(prefix + "model_card.json", json.dumps(card))
    return dest


def job_card(seq_len: int = 48, throughput_batch: int = 3, latency_batch: int = 2) -> dict:
    """A card as ``workers.pipeline.finalize`` writes it: how the job measured the model, per target."""
    def measured(target: str) -> dict:
        return {"target": target, "precision": "int8", "seq_len": seq_len, "latency_batch": latency_batch,
                "throughput_batch": throughput_batch, "p50_ms": 1.0, "p90_ms": 1.2, "p99_ms": 1.5,
                "latency_iterations": 100, "throughput_sps": 900.0,
                "fingerprint": {"target_profile": {"name": target, "isa": None if target == "native" else "AVX512_CORE"}}}  # fmt: skip

    return {"format": "openvino-ir", "precision": "int8", "job_id": "ab" * 16, "trial_number": 3,
            "measurements": [measured("native"), measured("cascadelake")],
            "data": {"max_seq_length": seq_len, "doc_stride": 16}}  # fmt: skip


@pytest.fixture(scope="module")
def card_zip(tiny_ir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_zip(tiny_ir, tmp_path_factory.mktemp("card") / "best-int8-trial3.zip", card=job_card())


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
        assert names[:5] == ["native", "cascadelake", "deepsparse", "icelake", "sapphirerapids"] and "edge-avx2" in names
        assert info["host"]["native_target"] == "native" or info["host"]["microarchitecture"] in names
        (tmp_path / "targets" / "broken.yaml").write_text("name: x\ncores: lots\n")
        assert main(["targets", "--data-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert "broken.yaml" in err and "cores" in err
    finally:
        TARGETS.reset()


def _bench_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[dict, dict, str]:
    assert main(["bench", *argv, "--json", *FAST_TIMING]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out.strip().splitlines()[-1])
    return out["measurement"], out["settings"], captured.err


def test_bench_zip_measures_as_its_card_says(card_zip: Path, capsys):
    m, settings, err = _bench_json(capsys, str(card_zip))
    assert (m["target"], m["precision"], m["seq_len"], m["latency_batch"], m["throughput_batch"]) == ("native", "int8", 48, 2, 3)
    assert {k: v["source"] for k, v in settings.items() if isinstance(v, dict)} == dict.fromkeys(
        ("target", "precision", "seq_len", "latency_batch", "throughput_batch"), "model card"
    )
    assert f"model card: model_card.json (job {'ab' * 16} trial 3)" in err
    assert "settings: target native (model card), precision int8 (model card), seq_len 48 (model card)" in err


def test_flags_override_the_card(card_zip: Path, capsys):
    m, settings, err = _bench_json(capsys, str(card_zip), "--seq-len", "32", "--target", "cascadelake")
    assert (m["target"], m["seq_len"], m["latency_batch"], m["throughput_batch"]) == ("cascadelake", 32, 2, 3)
    assert settings["seq_len"] == {"value": 32, "source": "--seq-len"}
    assert settings["target"]["source"] == "--target" and settings["throughput_batch"]["source"] == "model card"
    assert "seq_len 32 (--seq-len)" in err


def test_card_settings_per_target_and_without_a_card(tiny_ir: Path, tmp_path: Path):
    """The SingleStream batch is per target (the profile's, in the job); a zip without a card, an
    empty card or a bare IR keep the profile's defaults and say so."""
    import argparse

    from cli.bench import card_settings, resolve_settings

    card = job_card()
    card["measurements"] = card["measurements"][:1]  # measured on native only
    assert card_settings(card, "icelake") == {"precision": "int8", "seq_len": 48, "throughput_batch": 3}
    assert card_settings({"data": {"max_seq_length": 64}, "precision": "fp32"}, None) == {"precision": "fp32", "seq_len": 64}

    def args(**kw) -> argparse.Namespace:
        return argparse.Namespace(**({k: None for k in ("target", "precision", "seq_len", "latency_batch", "throughput_batch")} | kw))

    bare = resolve_settings(args(), tiny_ir)
    assert bare.values == {"target": "native", "precision": "int8", "seq_len": 384, "latency_batch": 1, "throughput_batch": 16}
    assert bare.sources["seq_len"] == "target profile native" and bare.sources["precision"] == "default"
    assert bare.card.startswith("none (no model_card.json beside the IR)") and "profile's defaults" in bare.card
    for name, zipped in (("nocard", None), ("emptycard", {})):
        xml = resolve_model(make_zip(tiny_ir, tmp_path / f"{name}.zip", card=zipped), tmp_path / name)
        s = resolve_settings(args(target="cascadelake"), xml)
        assert s.values["seq_len"] == 384 and s.sources["seq_len"] == "target profile cascadelake"
    assert "records no measurement settings" in s.card
    # a card measured on a profile this machine lacks: measured with the profile the card recorded
    card = job_card()
    card["measurements"][0] |= {"target": "edge-x", "fingerprint": {"target_profile": {"name": "edge-x", "isa": "AVX2", "cores": 2}}}
    xml = resolve_model(make_zip(tiny_ir, tmp_path / "edge.zip", card=card), tmp_path / "edge")
    s = resolve_settings(args(), xml)
    assert (s.target.name, s.target.isa, s.target.cores, s.sources["target"]) == ("edge-x", "AVX2", 2, "model card")
    assert any("not a profile here" in n for n in s.notes)
    s = resolve_settings(args(target="cascadelake"), xml)  # the card's cascadelake ran with another ISA cap
    assert any("differs from the one the card was measured with: isa AVX512_CORE there" in n for n in s.notes)


def test_bench_table_says_where_settings_came_from(card_zip: Path, capsys):
    assert main(["bench", str(card_zip), "--throughput-batch", "2", *FAST_TIMING]) == 0
    out = capsys.readouterr().out
    assert "model card: model_card.json" in out and "throughput batch 2 (--throughput-batch)" in out
    assert "seq_len 48 (model card)" in out and "Offline b=2" in out
