"""Samplers by name, the speed predictor, objectives and constraints, dedupe keys: real Optuna, no service."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import numpy as np
import optuna
import pytest

from core.artifact_store import LocalArtifactStore
from nas.dedupe import same_machine, trial_cache_key
from nas.objectives import JobObjectives, directions, objective_names
from nas.predictors import make_predictor, mape
from nas.predictors.tracker import SpeedPredictors
from nas.samplers import SAMPLERS, grid_of, make_sampler
from nas.spec import JobSpec
from core.types import Measurement, SubnetConfig, TrialRequest, TrialResult

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _space(trial: optuna.Trial) -> SubnetConfig:
    n = trial.suggest_categorical("layers", [1, 2, 3, 4])
    h = trial.suggest_categorical("heads", [2, 4, 8])
    f = trial.suggest_categorical("ffn", [64, 128, 256])
    return SubnetConfig(tuple(range(n)), (h,) * n, (f,) * n)


def _cost(s: SubnetConfig) -> tuple[float, float]:
    """A made-up machine: p90 and throughput linear in the work, as the predictor assumes."""
    p90 = 0.4 + 0.05 * s.num_layers + 0.02 * sum(s.heads) + 0.001 * sum(s.ffn)
    return p90, 1000.0 / (0.2 + 0.3 * p90)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_sampler_runs_a_two_objective_study_with_constraints(name: str) -> None:
    grid = grid_of(_space) if name == "grid" else None
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler(name, seed=0, grid=grid))
    for _ in range(12):
        trial = study.ask()
        s = _space(trial)
        p90, _ = _cost(s)
        f1 = 50 + 10 * math.log(sum(s.heads) * sum(s.ffn))
        trial.set_constraint("f1_floor", 80 - f1)
        study.tell(trial, [f1, p90])
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 12
    assert study.best_trials  # a front exists


def test_grid_enumerates_every_subnet_once() -> None:
    grid = grid_of(_space)
    assert grid == {"layers": [1, 2, 3, 4], "heads": [2, 4, 8], "ffn": [64, 128, 256]}
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler("grid", seed=0, grid=grid))
    seen = set()
    for _ in range(36):
        trial = study.ask()
        seen.add(_space(trial).encoding())
        study.tell(trial, [0.0, 1.0])
    assert len(seen) == 36


def test_unknown_sampler_and_conditional_grid_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown sampler 'cmaes'"):
        make_sampler("cmaes", seed=0)

    def conditional(trial: optuna.Trial) -> None:
        n = trial.suggest_categorical("layers", [1, 2])
        for i in range(n):
            trial.suggest_categorical(f"heads_{i}", [2, 4])

    with pytest.raises(ValueError, match="do not depend on each other"):
        grid_of(conditional, probes=16)


def _subnets(n: int, seed: int) -> list[SubnetConfig]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(1, 6)
        out.append(SubnetConfig(tuple(range(k)), tuple(rng.choice([2, 4, 6, 12]) for _ in range(k)), tuple(rng.choice([192, 384, 768, 1536]) for _ in range(k))))
    return out


def test_linear_predictor_learns_a_cost_model_from_few_points() -> None:
    rng = np.random.default_rng(0)
    train, test = _subnets(10, 1), _subnets(40, 2)
    noisy = [(_cost(s)[0] * rng.normal(1, 0.01), _cost(s)[1] * rng.normal(1, 0.01)) for s in train]
    model = make_predictor("linear", base_hidden=384)
    model.fit(train, [p for p, _ in noisy], [t for _, t in noisy])
    assert model.n_points == 10
    err_p90 = mape([(model.predict(s).p90_ms, _cost(s)[0]) for s in test])
    err_tpt = mape([(model.predict(s).throughput_sps, _cost(s)[1]) for s in test])
    assert err_p90 < 3.0 and err_tpt < 3.0, (err_p90, err_tpt)


def test_linear_predictor_shrugs_off_disturbed_measurements() -> None:
    """Two of 20 measurements taken while another process held the cores (p90 1.8x, throughput /1.8):
    the Huber-reweighted fit stays close to the machine; the plain least squares is pulled away."""
    from nas.predictors.linear import LinearCostPredictor

    rng = np.random.default_rng(0)
    train, test = _subnets(20, 3), _subnets(40, 4)
    p90 = [_cost(s)[0] * rng.normal(1, 0.01) * (1.8 if i in (3, 11) else 1.0) for i, s in enumerate(train)]
    tpt = [_cost(s)[1] * rng.normal(1, 0.01) / (1.8 if i in (3, 11) else 1.0) for i, s in enumerate(train)]
    errors = {}
    for robust in (True, False):
        model = LinearCostPredictor(base_hidden=384, robust=robust)
        model.fit(train, p90, tpt)
        errors[robust] = mape([(model.predict(s).p90_ms, _cost(s)[0]) for s in test])
    assert errors[True] < 2.0 and errors[True] < errors[False] / 2, errors


def test_predictor_refuses_to_predict_unfitted_and_unknown_kinds() -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        make_predictor("linear", base_hidden=384).predict(_subnets(1, 0)[0])
    with pytest.raises(ValueError, match="unknown predictor"):
        make_predictor("xgboost", base_hidden=384)


def test_tracker_warm_starts_only_from_the_same_fingerprint_and_keeps_held_out_error() -> None:
    tracker = SpeedPredictors("linear", base_hidden=384, keys={"native": "k1"})
    samples = [(s, *_cost(s)) for s in _subnets(8, 3)]
    assert tracker.warm_start("native", "other-machine", samples) == 0
    assert tracker.points("native") == 0 and tracker.predict(samples[0][0]) == {}
    assert tracker.warm_start("native", "k1", samples) == 8
    s = _subnets(1, 9)[0]
    pred = tracker.predict(s)["native"]
    tracker.record("native", pred.p90_ms, _cost(s)[0])
    tracker.add("native", s, *_cost(s))
    assert tracker.points("native") == 9
    assert 0 <= tracker.error_pct("native") < 1.0


def _spec(**overrides) -> JobSpec:  # type: ignore[no-untyped-def]
    base = {
        "base_model": "minilm",
        "task": {"train_file": "t.json", "eval_file": "e.json"},
        "search_space": {"layers": [1, 2], "heads": [4], "ffn": [64]},
        "budget": {"trials": 2},
        "targets": ["native", "icelake"],
    }
    base.update(overrides)
    return JobSpec.model_validate(base)


def _result(f1: float, p90: dict[str, float], size_mb: float = 10.0) -> TrialResult:
    ms = tuple(
        Measurement(target=t, precision="int8", seq_len=128, latency_batch=1, p50_ms=v * 0.9, p90_ms=v, p99_ms=v * 1.1, latency_iterations=10, throughput_batch=16, throughput_sps=1000 / v)
        for t, v in p90.items()
    )
    return TrialResult(
        trial_number=0, subnet=SubnetConfig((0,), (4,), (64,)), f1=f1, exact_match=f1 - 5, num_eval_questions=10,
        parameters=1, ir_size_bytes=int(size_mb * 2**20), measurements=ms, stage_seconds={}, artifact_dir="",
    )  # fmt: skip


def test_objectives_follow_the_job() -> None:
    assert objective_names(["native"], "throughput") == ["F1", "throughput native (samples/s)"]
    assert directions(["a", "b"], "latency") == ["maximize", "minimize", "minimize"]
    lat = JobObjectives.of(_spec(), teacher_fp32_f1=80.0)
    r = _result(79.0, {"native": 2.0, "icelake": 3.0})
    assert lat.values(r) == [79.0, 2.0, 3.0]
    assert lat.min_f1 == pytest.approx(79.2)  # 0.99 x 80
    assert lat.constraints(r) == {"f1_floor": pytest.approx(0.2)} and not lat.feasible(r)
    tpt = JobObjectives.of(_spec(objective="throughput", constraints={"min_f1_ratio": None, "min_f1": 70, "max_latency_ms": 2.5, "max_model_mb": 12}), None)
    assert tpt.directions == ["maximize", "maximize", "maximize"]
    assert tpt.values(r) == [79.0, 500.0, pytest.approx(333.33, rel=1e-3)]
    c = tpt.constraints(r)
    assert c["f1_floor"] == -9.0 and c["p90_cap"] == pytest.approx(0.5) and c["size_cap"] == pytest.approx(-2.0)
    assert not tpt.feasible(r) and tpt.feasible(_result(79.0, {"native": 2.0, "icelake": 2.4}))
    # the ratio floor needs the teacher's FP32 F1; without a baseline only the absolute floor applies
    assert JobObjectives.of(_spec(), teacher_fp32_f1=None).min_f1 is None


def test_grid_sampler_on_a_huge_space_is_a_spec_error() -> None:
    with pytest.raises(ValueError, match="grid"):
        _spec(sampler="grid", search_space={"layers": {"min": 1, "max": 6}, "heads": {"min": 1, "max": 12}, "ffn": {"min": 64, "max": 1536, "step": 8}})


def _request(tmp_path, **kw) -> TrialRequest:  # type: ignore[no-untyped-def]
    train = tmp_path / "train.json"
    if not train.exists():
        train.write_text('{"data": []}')
    base = dict(
        job_id="j1", trial_number=3, subnet=SubnetConfig((0, 1), (4, 4), (64, 64)), teacher_dir=str(tmp_path),
        train_file=str(train), eval_file=str(train), max_seq_length=128, doc_stride=48, max_eval_examples=None,
        calibration_samples=8, targets=("native",), output_dir=str(tmp_path / "out-a"),
    )  # fmt: skip
    base.update(kw)
    return TrialRequest(**base)


def test_cache_key_ignores_job_and_output_but_not_what_changes_the_result(tmp_path) -> None:  # type: ignore[no-untyped-def]
    prof = {"native": {"name": "native"}}
    a = _request(tmp_path)
    assert trial_cache_key(a, prof) == trial_cache_key(replace(a, job_id="j2", trial_number=7, output_dir="/elsewhere"), prof)
    assert trial_cache_key(a, prof) != trial_cache_key(replace(a, subnet=SubnetConfig((0,), (4,), (64,))), prof)
    assert trial_cache_key(a, prof) != trial_cache_key(replace(a, quant_smooth_quant=False), prof)
    assert trial_cache_key(a, prof) != trial_cache_key(a, {"native": {"name": "native", "threads": 1}})
    before = trial_cache_key(a, prof)
    (tmp_path / "train.json").write_text('{"data": [], "version": "changed"}')
    assert trial_cache_key(a, prof) != before  # same path, new bytes


def test_reuse_needs_the_same_machine_setup_and_keeps_artifacts_of_a_deleted_job(tmp_path) -> None:  # type: ignore[no-untyped-def]
    fp = {"microarchitecture": "zen5", "emulated": False, "isa_cap": None, "threads": 2, "streams": 2, "inference_precision": "bf16", "openvino_version": "x"}
    assert same_machine({"native": fp}, {"native": dict(fp)})
    assert not same_machine({"native": fp}, {"native": {**fp, "threads": 1}})
    assert not same_machine({}, {"native": fp})
    src = tmp_path / "a"
    src.mkdir()
    (src / "openvino_model.bin").write_bytes(b"weights")
    LocalArtifactStore(tmp_path).link(src, tmp_path / "b", ["openvino_model.bin"])
    (src / "openvino_model.bin").unlink()  # the first job is deleted
    assert (tmp_path / "b" / "openvino_model.bin").read_bytes() == b"weights"
