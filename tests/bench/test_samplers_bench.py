"""bench.samplers end to end on a tiny random model: every sampler runs the anchors first, the F1 table
is shared between samplers (one evaluation per subnet), and the section lands in the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import samplers


def _measured(config: dict, p90: float) -> dict:
    return {"state": "completed", "config": config, "measurements": [{"target": "native", "p90_ms": p90, "throughput_sps": 1000 / p90}]}


@pytest.fixture()
def bench_dirs(tmp_path: Path, tiny_qa_model: Path) -> tuple[Path, Path]:
    space = {"layers": [2, 3, 4], "heads": [2, 4], "ffn": [64, 128], "per_layer": True, "layer_selection": "spread"}
    sn, search = tmp_path / "supernet", tmp_path / "search"
    sn.mkdir()
    search.mkdir()
    # the tiny model stands in for the teacher and the supernet (the supernet is a BERT of the teacher's shape)
    (sn / "results.json").write_text(json.dumps({"teacher_dir": str(tiny_qa_model), "supernet_dir": str(tiny_qa_model), "settings": {"space": space}}))
    trials = [
        _measured({"layers": [0, 3], "heads": [2, 2], "ffn": [64, 64]}, 1.0),
        _measured({"layers": [0, 1, 3], "heads": [4, 2, 4], "ffn": [128, 64, 64]}, 1.6),
        _measured({"layers": [0, 1, 2, 3], "heads": [4, 4, 4, 4], "ffn": [128, 128, 128, 128]}, 2.4),
        _measured({"layers": [0, 1, 2, 3], "heads": [2, 2, 2, 2], "ffn": [64, 64, 64, 64]}, 1.9),
    ]
    baseline = {"precision": "fp32", "measurements": [{"target": "native", "p90_ms": 3.0, "throughput_sps": 300.0}]}
    (search / "results.json").write_text(json.dumps({"trials": trials, "job": {"baselines": [baseline]}}))
    return sn, search


def test_compares_samplers_on_one_shared_table(bench_dirs: tuple[Path, Path], squad_files: tuple[str, str], tmp_path: Path) -> None:
    sn, search = bench_dirs
    out = tmp_path / "BENCH.md"
    argv = ["--supernet-bench", str(sn), "--search-bench", str(search), "--train-file", squad_files[0], "--questions", "6",
            "--trials", "6", "--report-at", "3", "--samplers", "nsga2", "random", "--seeds", "2", "--output", str(out)]  # fmt: skip
    assert samplers.main(argv) == 0
    text = out.read_text()
    assert "<!-- bench:samplers -->" in text and "| nsga2 |" in text and "| random |" in text
    assert "hypervolume at 3 trials" in text and "hypervolume at 6 trials" in text
    cached = json.loads((search / "surrogate-f1-q6.json").read_text())
    assert "teacher" in cached and len(cached) >= 3  # the teacher and at least the anchors
    # every job starts with the same anchors: the largest subnet first
    args = samplers.parse_args(argv)
    table = samplers.SurrogateTable(args)
    from search_spaces.base_models import read_config
    from search_spaces.bert.space import BertSpace

    space = BertSpace.from_spec(table.space_spec, read_config(table.teacher_dir))
    pts = samplers.run_search(table, space, "tpe", 0, 3, 2, floor=0.0)
    assert pts[0] == (table.f1(space.largest()), table.p90(space.largest()))
    assert 0 < table.p90(space.smallest()) < table.p90(space.largest())  # the cost model orders work
