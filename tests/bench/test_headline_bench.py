"""bench.headline's and bench.qat_front's own arithmetic: the data split the one job trains and scores on,
the fixed-length figures beside the deployed ones, the deployment sweep's share of trial time, and which
front members QAT is tried on. (The job itself is the service's, tested end to end in tests/test_loop_tiny.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import headline, qat_front


def test_the_job_trains_on_articles_it_never_scores_on(tmp_path: Path, squad_files: tuple[str, str]) -> None:
    train, held, n_held, titles = headline.split_files(squad_files[0], 0.2, tmp_path)
    trained = {a["title"] for a in json.loads(train.read_text())["data"]}
    scored = json.loads(held.read_text())["data"]
    assert titles and {a["title"] for a in scored} == set(titles) and not trained & set(titles)
    assert n_held == sum(len(p["qas"]) for a in scored for p in a["paragraphs"])
    assert len(trained) + len(titles) == len(json.loads(Path(squad_files[0]).read_text())["data"])


def _measurement(sps: float, p90: float, *, fixed_sps: float | None = None, sweep_s: float | None = None) -> dict:
    fp = {} if fixed_sps is None else {"fixed_length": {"throughput_sps": fixed_sps, "p90_ms": p90 * 1.5}, "deployment_s": sweep_s}
    dep = {"offline": {"length_policy": {"name": "buckets", "max_length": 256, "buckets": [96, 256]}, "batch": 16}, "inference_precision": "f32"}
    return {"target": "native", "throughput_sps": sps, "p90_ms": p90, "fingerprint": fp, "deployment": dep if fixed_sps else None}


def test_fixed_length_figures_and_what_was_deployed() -> None:
    m = _measurement(300.0, 4.0, fixed_sps=200.0, sweep_s=10.0)
    assert headline.fixed(m) == {"throughput_sps": 200.0, "p90_ms": 6.0}
    assert headline.deployed_as(m) == "buckets 96/256, b=16, f32"
    plain = _measurement(300.0, 4.0)
    assert headline.fixed(plain) == {"throughput_sps": 300.0, "p90_ms": 4.0} and headline.deployed_as(plain) == "fixed (no deployment sweep)"


def test_the_sweep_share_is_its_seconds_over_the_trials_wall_time() -> None:
    def trial(state: str, wall: int, sweep: float) -> dict:
        return {"state": state, "started_at": "2026-12-04T01:00:00", "finished_at": f"2026-12-04T01:0{wall // 60}:{wall % 60:02d}",
                "measurements": [_measurement(1.0, 1.0, fixed_sps=1.0, sweep_s=sweep)]}  # fmt: skip

    cost = headline.sweep_cost([trial("completed", 100, 10.0), trial("completed", 120, 30.0), trial("failed", 100, 90.0), trial("completed", 200, 20.0)])
    assert cost["trials"] == 3 and cost["median_share"] == pytest.approx(0.1) and cost["max_share"] == pytest.approx(0.25) and cost["median_s"] == 20.0
    assert headline.sweep_cost([trial("failed", 100, 5.0)]) == {}


def test_qat_is_tried_on_the_front_members_that_missed_the_floor_by_least() -> None:
    front = [{"number": n, "f1": f} for n, f in ((1, 60.0), (2, 55.5), (3, 40.0), (4, 54.0), (5, 56.0))]
    assert [t["number"] for t in qat_front.missed_by_least(front, 56.0, 2)] == [2, 4]
    assert qat_front.missed_by_least(front[:1], 56.0, 2) == []


def test_each_host_kind_gets_its_own_section_and_plot_and_fp32_its_own_peak() -> None:
    assert headline.plot_name("headline", "native") == "pareto-native.png"  # the README's link
    assert headline.plot_name("headline-avx2", "native") == "pareto-headline-avx2-native.png"
    assert headline.fp32_pipes({"vendor": "AuthenticAMD", "flags": ["avx2", "avx512f"]}) == "256-bit FMA"  # zen4 splits AVX-512
    assert headline.fp32_pipes({"vendor": "GenuineIntel", "flags": ["avx2", "avx512f"]}) == "512-bit FMA"
    assert headline.fp32_pipes({"vendor": "GenuineIntel", "flags": ["avx2"]}) == "256-bit FMA"


def test_the_headline_says_what_the_refine_stage_did() -> None:
    assert headline.refined({"refine": {"top_k": 2, "steps": 300}}) == "refined the 2 front members nearest the floor (300 steps each)"
    assert headline.refined({"refine": {"top_k": 0, "steps": 200}}) == "refined nothing (refine.top_k 0)"
