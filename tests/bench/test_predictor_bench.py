"""bench.predictor end to end on a tiny supernet: random subnets built, measured back to back (some
twice), the service's predictor scored on measurements it was not fitted on, the section written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import predictor
from tests.bench.test_refine_bench import supernet_bench  # noqa: F401  (fixture)


@pytest.mark.soak  # a bench's smoke run, minutes on 2 cores: `make test-soak`, outside CI's 30 minutes
def test_predictor_bench_scores_the_predictor_and_the_hosts_own_spread(supernet_bench, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    bench, train = supernet_bench
    out = tmp_path / "BENCH.md"
    argv = ["--supernet-bench", str(bench), "--train-file", train, "--subnets", "6", "--repeats", "2", "--measure-seconds", "0.1",
            "--measure-iterations", "5", "--max-repeats", "1", "--seq-len", "64", "--throughput-batch", "2", "--quiet-wait-s", "0", "--work-dir", str(tmp_path / "work"), "--output", str(out)]  # fmt: skip
    assert predictor.main(argv) == 0
    saved = json.loads((tmp_path / "work" / "results.json").read_text())
    assert saved["n"] == 6 and saved["repeats"] == 2 and len({json.dumps(s) for s in saved["subnets"]}) == 6
    for key in ("loo_p90", "loo_sps", "half_p90", "half_sps", "repeat_p90", "repeat_sps"):
        assert 0 <= saved[key] < 1000, key
    assert all(s["p90_ms"] > 0 and s["throughput_sps"] > 0 for s in saved["subnets"])
    text = out.read_text()
    assert "<!-- bench:predictor -->" in text and "leave-one-out over 6 subnets" in text and "at seq 64" in text
