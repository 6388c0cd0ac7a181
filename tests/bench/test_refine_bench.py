"""bench.refine end to end on a tiny random BERT and a tiny supernet: every subnet is built before and
after refinement on the training articles, every IR is measured, and the section lands in the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import refine


@pytest.fixture()
def supernet_bench(tmp_path: Path, tiny_qa_model: Path, squad_files: tuple[str, str]) -> tuple[Path, str]:
    from bench.teacher import quick_subset
    from search_spaces.base_models import read_config
    from search_spaces.bert.space import BertSpace
    from workers.supernet import SupernetSettings, train_supernet

    train = quick_subset(squad_files[0], tmp_path, articles=5, per_article=4)
    space = BertSpace.from_spec({"layers": [2, 4], "heads": [2, 4], "ffn": [32, 128], "per_layer": True}, read_config(tiny_qa_model))
    settings = SupernetSettings(max_steps=2, batch_size=4, max_seq_length=256, doc_stride=128, importance_batches=1, validation_split=0.2)
    sn = tmp_path / "sn"
    train_supernet(tiny_qa_model, sn, train_file=train, space=space, settings=settings)
    bench = tmp_path / "supernet-bench"
    bench.mkdir()
    (bench / "results.json").write_text(json.dumps({"teacher_dir": str(tiny_qa_model), "supernet_dir": str(sn)}))
    return bench, train


@pytest.mark.soak  # a bench's smoke run, minutes on 2 cores: `make test-soak`, outside CI's 30 minutes
def test_refine_bench_reports_before_after_and_speed(supernet_bench, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bench, train = supernet_bench
    monkeypatch.setattr(refine, "BASE_LAYERS", 4)
    monkeypatch.setattr(refine, "FRONT", {1: (2, [4, 2], [128, 32]), 2: (4, [2, 2, 2, 2], [32, 32, 32, 32])})
    out = tmp_path / "BENCH.md"
    argv = ["--supernet-bench", str(bench), "--train-file", train, "--xquad", train, "--subnets", "1", "2", "--steps", "2",
            "--max-eval-examples", "8", "--measure-seconds", "0.1", "--quiet-wait-s", "0", "--work-dir", str(tmp_path / "work"), "--output", str(out),
            "--seq-len", "64", "--measure-iterations", "5", "--max-repeats", "1", "--throughput-batch", "2", "--calibration", "8"]  # fmt: skip
    assert refine.main([*argv[:6], "--subnets", "1", *argv[9:]]) == 0  # a first run with one subnet ...
    first = json.loads((tmp_path / "work" / "builds.json").read_text())["rows"]
    assert refine.main(argv) == 0  # ... then both: trial 1 and the teachers are reused, trial 2 is built, all measured
    kept = json.loads((tmp_path / "work" / "builds.json").read_text())["rows"]
    assert kept["trial 1"] == first["trial 1"] and kept["teacher INT8"] == first["teacher INT8"] and "trial 2" in kept
    text = out.read_text()
    assert "<!-- bench:refine -->" in text and "| teacher FP32 | 4 |" in text and "| trial 1 | 2 |" in text and "| trial 2 | 4 |" in text
    saved = json.loads((tmp_path / "work" / "results.json").read_text())
    rows = {r["name"]: r for r in saved["rows"]}
    assert all(r["sps"] > 0 and r["p90"] > 0 for r in rows.values())
    assert "f1_before" in rows["trial 1"] and rows["trial 1"]["distil_s"] > 0
    assert Path(rows["trial 2"]["ir_dir"]).name == "trial-2-refined"
    # the refined subnets trained on the supernet's training articles only: 4 of the 5
    assert len(list((tmp_path / "work").glob("train-articles-*.json"))) == 1
    assert refine.main([*argv, "--reuse"]) == 0 and out.read_text() == text
