"""``hwnas demo`` sized to the host (cli.demo_sizing): the pure sizing and cost model, the spec it
produces, ``--full``, and the measurement repeats it asks for reaching ``measure_ir``. No demo runs here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cli import demo
from cli.demo_sizing import (
    ANCHORS, FULL_SPACE, MIN_FINETUNE_STEPS, MIN_TEACHER_STEPS, MIN_TRIALS, SMALL_SPACE, SYNTHETIC, HostProbe,
    describe_cpu, estimate, full_plan, int8_time_ratio, real_workload, size_demo, summary,
)  # fmt: skip
from core.types import SubnetConfig
from nas.context import trial_request
from nas.spec import JobSpec, MeasureSpec

ROOT = Path(__file__).resolve().parents[1]

# Probe figures: the 2-core AMD EPYC zen3 this was written on (2.0-2.5 s a step), the zen3 a user
# timed the full demo on (~3.7 s a step: ~80 min in all), a 2-core AMX Xeon (bf16 training).
ZEN3 = HostProbe(step_s=2.03, forward_s=0.48, int8_time_ratio=1.3, int8_source="estimated", cpu="AMD EPYC zen3 (AVX2, no VNNI)", cores=2)
ZEN3_USER = HostProbe(step_s=3.7, forward_s=0.75, int8_time_ratio=1.3, int8_source="estimated", cpu="zen3", cores=2)
AMX = HostProbe(step_s=0.45, forward_s=0.1, int8_time_ratio=0.35, int8_source="estimated", cpu="Xeon sapphirerapids (AMX)", cores=2)
HUGE = HostProbe(step_s=0.01, forward_s=0.002, int8_time_ratio=0.3, int8_source="estimated", cpu="big", cores=64)

# What `hwnas demo` submitted before it was sized: `--full` must give exactly this.
# the full-size demo, as it ran before it was sized to the host (plus the measured precision choice)
TODAY = {
    "name": "demo (synthetic data)",
    "base_model": "minilm",
    "task": {"train_file": "t.json", "eval_file": "e.json", "max_seq_length": 128, "doc_stride": 48,
             "max_eval_examples": None, "calibration_samples": 64},
    "search_space": {"layers": [2, 3, 4, 6], "heads": [6, 12], "ffn": [384, 768, 1536]},
    "targets": ["native"],
    "budget": {"trials": 6},
    "sampler": "nsga2",
    "precision": "auto",  # the faster precision on the host (FP32 where INT8 is slower)
    "seed": 0,
    "teacher": {"epochs": 3.0, "learning_rate": 2e-4, "batch_size": 16, "max_train_examples": None},
    "measure": {"iterations": 50, "seconds": 2.0, "throughput_batch": 16},
    "trial_finetune_steps": 120,
}  # fmt: skip


def _spec(plan: Any, synthetic: bool = True) -> JobSpec:
    return JobSpec.model_validate(demo.demo_spec("t.json", "e.json", plan.trials, synthetic=synthetic, plan=plan))


def test_slow_avx2_host_gets_a_small_demo_within_the_budget() -> None:
    plan = size_demo(ZEN3, budget_s=480)
    assert not plan.full and plan.fits and plan.estimate_s <= 480
    assert plan.teacher_steps is not None and MIN_TEACHER_STEPS <= plan.teacher_steps < SYNTHETIC.full_teacher_steps()
    assert plan.trials >= MIN_TRIALS and plan.finetune_steps >= MIN_FINETUNE_STEPS
    assert plan.measure.max_repeats == 2 and plan.measure.seconds <= 1.0
    assert plan.search_space == SMALL_SPACE and plan.max_eval_examples == 100


def test_fast_host_keeps_more() -> None:
    slow, fast = size_demo(ZEN3), size_demo(AMX)
    assert fast.fits and fast.estimate_s <= 480
    assert fast.teacher_steps > slow.teacher_steps  # type: ignore[operator]
    assert fast.finetune_steps > slow.finetune_steps and fast.trials >= slow.trials
    assert fast.measure.iterations >= slow.measure.iterations


def test_the_full_demo_where_it_fits() -> None:
    plan = size_demo(AMX, budget_s=3600)
    assert plan.full and plan.fits and plan.estimate_s <= 3600
    assert _spec(plan) == JobSpec.model_validate(TODAY)
    # Its 5 x 2 s measurements alone outlast 8 minutes: however fast the host, 480 s shortens them first
    quick = size_demo(HUGE, budget_s=480)
    assert not quick.full and quick.fits and quick.measure.max_repeats == 2
    assert (quick.teacher_steps, quick.trials, quick.finetune_steps) == (SYNTHETIC.full_teacher_steps(), 6, 120)


def test_too_slow_a_host_gets_the_minimum_marked_over_budget() -> None:
    plan = size_demo(ZEN3_USER, budget_s=120)
    assert not plan.fits and plan.teacher_steps == MIN_TEACHER_STEPS and plan.trials == MIN_TRIALS
    assert plan.finetune_steps == MIN_FINETUNE_STEPS
    assert "OVER the budget" in summary(plan, ZEN3_USER)


def test_users_trials_win() -> None:
    assert size_demo(ZEN3, trials=2).trials == 2
    assert size_demo(AMX, trials=9).trials == 9
    assert full_plan(3).trials == 3


def test_full_gives_todays_spec_without_a_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "probe_host", lambda: pytest.fail("--full must not probe"))
    plan = demo.demo_plan(None, budget_s=480, full=True, train_file="t.json", synthetic=True)
    assert plan == full_plan() and plan.full
    assert _spec(plan) == JobSpec.model_validate(TODAY)
    assert JobSpec.model_validate(demo.demo_spec("t.json", "e.json", 6, synthetic=True)) == JobSpec.model_validate(TODAY)


def test_demo_plan_probes_and_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "probe_host", lambda: ZEN3)
    assert demo.demo_plan(None, budget_s=480, full=False, train_file="t.json", synthetic=True) == size_demo(ZEN3)
    assert demo.demo_plan(5, budget_s=480, full=False, train_file="t.json", synthetic=True).trials == 5


@pytest.mark.parametrize("host", [ZEN3, ZEN3_USER, AMX, HUGE], ids=["zen3", "zen3-user", "amx", "huge"])
@pytest.mark.parametrize("synthetic", [True, False], ids=["synthetic", "real"])
def test_every_sized_spec_validates(host: HostProbe, synthetic: bool) -> None:
    work = SYNTHETIC if synthetic else real_workload(4370, 1000)
    plan = size_demo(host, work=work)
    spec = _spec(plan, synthetic)
    assert spec.budget.trials == plan.trials and spec.trial_finetune_steps == plan.finetune_steps
    assert spec.teacher.max_steps == plan.teacher_steps and spec.measure.max_repeats == plan.measure.max_repeats
    if not synthetic:
        assert spec.task.max_seq_length == 256 and spec.task.max_eval_examples is not None and spec.task.max_eval_examples <= 300


def test_the_cost_model_matches_the_users_zen3_run() -> None:
    """The full demo took ~80 min on a 2-core zen3 (teacher ~11 min, baselines 2.5-3 min each, a trial ~11 min)."""
    parts = estimate(full_plan(), ZEN3_USER)
    assert 60 * 60 <= sum(parts.values()) <= 100 * 60
    assert 8 * 60 <= parts["teacher"] <= 14 * 60


def test_anchor_costs_follow_the_search_spaces_anchors() -> None:
    from search_spaces import space_for
    from search_spaces.base_models import read_config, resolve_base_model

    config = read_config(resolve_base_model("minilm"))
    for space in (FULL_SPACE, SMALL_SPACE):
        anchors = space_for(space, config).anchors(len(ANCHORS))
        assert [(a.num_layers, a.heads[0], a.ffn[0]) for a in anchors] == list(ANCHORS)


def test_cpu_flags_decide_the_int8_estimate() -> None:
    assert int8_time_ratio(["avx2"])[0] > 1 > int8_time_ratio(["avx2", "avx512f", "avx512_vnni"])[0]
    assert int8_time_ratio(["avx512_vnni", "amx_tile", "amx_int8"])[0] < int8_time_ratio(["avx512_vnni"])[0]
    cpu = {"model_name": "AMD EPYC", "microarchitecture": "zen3", "flags": ["avx2"]}
    assert describe_cpu(cpu) == "AMD EPYC zen3 (AVX2, no VNNI)"
    assert "AMX" in describe_cpu({"model_name": "Xeon", "microarchitecture": "sapphirerapids", "flags": ["amx_tile", "amx_bf16"]})


def test_summary_says_what_was_scaled() -> None:
    plan = size_demo(ZEN3)
    text = summary(plan, ZEN3, full_estimate_s=sum(estimate(full_plan(), ZEN3).values()))
    assert "AMD EPYC zen3 (AVX2, no VNNI), 2 cores" in text and "training step 2.03 s" in text and "1.3x slower" in text
    assert f"teacher {plan.teacher_steps} steps" in text and f"{plan.trials} trials x {plan.finetune_steps}" in text
    assert "x 2 repeats" in text and "estimate" in text and "full-size demo would take" in text


def test_sizing_imports_no_torch() -> None:
    code = (
        "import sys\n"
        "from cli.demo_sizing import HostProbe, size_demo\n"
        "size_demo(HostProbe(2.0, 0.5, 1.3, 'x', 'cpu', 2))\n"
        "assert not {'torch', 'transformers', 'openvino'} & set(sys.modules), 'the sizing loaded a framework'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# ---- the final message -------------------------------------------------------------------------------
def _m(precision: str, p90: float, sps: float) -> dict[str, Any]:
    return {"precision": precision, "p90_ms": p90, "throughput_sps": sps}


def _baselines(int8_p90: float, int8_sps: float) -> dict[str, dict[str, Any]]:
    return {"fp32": {"precision": "fp32", "f1": 60.0, "measurements": [_m("fp32", 40.0, 50.0)]},
            "int8": {"precision": "int8", "f1": 59.5, "measurements": [_m("int8", int8_p90, int8_sps)]}}  # fmt: skip


def test_best_report_names_precision_and_both_teachers() -> None:
    best = {"number": 3, "f1": 59.6, "config": {"layers": [0, 2, 4, 5], "heads": [12] * 4, "ffn": [1536] * 4},
            "measurements": [_m("int8", 10.0, 150.0)]}  # fmt: skip
    text = demo.best_report(best, _baselines(20.0, 100.0), floor=59.4)
    assert "INT8" in text and "fastest at the F1 floor 59.4" in text
    assert "vs the FP32 teacher (F1 60.0): 4.0x faster p90" in text and "3.0x the throughput" in text
    assert "vs the INT8 teacher (F1 59.5): 2.0x faster p90" in text and "SLOWER" not in text


def test_int8_slower_than_fp32_is_said_plainly() -> None:
    base = _baselines(52.0, 38.0)
    best = {"number": 1, "f1": 50.0, "config": {"layers": [0, 3, 5], "heads": [12] * 3, "ffn": [1536] * 3},
            "measurements": [_m("int8", 45.0, 45.0)]}  # fmt: skip
    text = demo.best_report(best, base, floor=59.4)
    assert "INT8 is SLOWER than FP32 in latency and throughput" in text and "no trial reached the F1 floor" in text
    assert "vs the FP32 teacher (F1 60.0): 1.1x slower p90" in text and "vs the INT8 teacher (F1 59.5): 1.2x faster" in text
    assert demo.int8_slower_note(_m("fp32", 40.0, 50.0), _m("int8", 20.0, 100.0)) is None
    assert "in throughput" in (demo.int8_slower_note(_m("fp32", 40.0, 50.0), _m("int8", 30.0, 45.0)) or "")


# ---- the repeats the demo asks for ---------------------------------------------------------------------
def test_max_repeats_spec_bounds() -> None:
    assert MeasureSpec().max_repeats == 5 and MeasureSpec(max_repeats=1).max_repeats == 1
    with pytest.raises(ValueError):
        MeasureSpec(max_repeats=0)


@pytest.mark.parametrize(("max_repeats", "min_repeats"), [(1, 1), (2, 2), (5, 2)])
def test_max_repeats_reaches_measure_ir(max_repeats: int, min_repeats: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import workers.benchmark
    from workers.runtimes import get_runtime

    spec = JobSpec.model_validate({**TODAY, "measure": {**TODAY["measure"], "max_repeats": max_repeats}})
    req = trial_request(spec, job_id="j", number=0, subnet=SubnetConfig((0,), (1,), (1,)), out=tmp_path, teacher_dir=str(tmp_path))
    assert req.measure_max_repeats == max_repeats
    seen: dict[str, Any] = {}
    monkeypatch.setattr(workers.benchmark, "measure_ir", lambda *a, **kw: seen.update(kw))
    get_runtime("openvino").measure(tmp_path / "m.xml", target="native", precision="int8", seq_len=128, throughput_batch=4,
                                    min_iterations=req.measure_iterations, min_seconds=req.measure_seconds,
                                    max_repeats=req.measure_max_repeats)  # fmt: skip
    assert (seen["min_repeats"], seen["max_repeats"]) == (min_repeats, max_repeats)


def test_repeats_are_part_of_the_reuse_key_but_the_default_keeps_stored_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib
    import json
    from dataclasses import replace

    from nas import dedupe

    spec = JobSpec.model_validate(TODAY)
    req = trial_request(spec, job_id="j", number=0, subnet=SubnetConfig((0,), (1,), (1,)), out=tmp_path, teacher_dir=str(tmp_path))
    key = dedupe.trial_cache_key(req, {})
    assert dedupe.trial_cache_key(replace(req, measure_max_repeats=2), {}) != key
    seen: list[dict[str, Any]] = []
    real_dumps = json.dumps

    def spy(obj: Any, **kw: Any) -> str:
        seen.append(obj)
        return real_dumps(obj, **kw)

    monkeypatch.setattr(dedupe.json, "dumps", spy)
    assert dedupe.trial_cache_key(req, {}) == key
    assert "measure_max_repeats" not in seen[-1]  # hashed as before the field existed
    assert key == hashlib.sha256(real_dumps(seen[-1], sort_keys=True, default=str).encode()).hexdigest()
