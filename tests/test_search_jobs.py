"""The search engine through the HTTP API: grid and dedupe within a job, reuse across jobs,
constraints, the throughput objective and the latency predictor dropping candidates.
Real Ray, Optuna, NNCF and OpenVINO on a tiny random BERT."""

from __future__ import annotations

import optuna
import pytest

from api.server import ServiceThread, free_port
from nas.config import Settings
from tests.helpers import wait_for_job
from tests.test_loop_tiny import tiny_spec

import httpx


@pytest.fixture(scope="module")
def service(tmp_path_factory, ray_local):  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path_factory.mktemp("hwnas-search"), port=free_port())
    with ServiceThread(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, settings


def _run(client: httpx.Client, spec: dict, timeout: float = 600) -> dict:
    r = client.post("/api/v1/jobs", json=spec)
    assert r.status_code == 201, r.text
    job = wait_for_job(client, r.json()["id"], timeout=timeout)
    assert job["status"] == "completed", job["error"]
    return job


def _trials(client: httpx.Client, job_id: str) -> list[dict]:
    return client.get(f"/api/v1/jobs/{job_id}/trials").raise_for_status().json()


@pytest.fixture(scope="module")
def grid_job(service, tiny_qa_model, squad_files):  # type: ignore[no-untyped-def]
    client, _ = service
    space = {"layers": [1, 2], "heads": [2], "ffn": [32]}
    return _run(client, tiny_spec(tiny_qa_model, *squad_files, name="grid", search_space=space, sampler="grid", budget={"trials": 3}))


def test_grid_covers_the_space_and_repeats_are_answered_from_the_store(service, grid_job) -> None:  # type: ignore[no-untyped-def]
    client, settings = service
    trials = _trials(client, grid_job["id"])
    assert [t["state"] for t in trials] == ["completed"] * 3
    built = [t for t in trials if "reused_from_trial" not in t["stage_seconds"]]
    reused = [t for t in trials if "reused_from_trial" in t["stage_seconds"]]
    assert sorted(len(t["config"]["layers"]) for t in built) == [1, 2]  # the two grid points, each built once
    assert len(reused) == 1 and reused[0]["stage_seconds"]["reused_from_trial"] in [t["number"] for t in built]
    assert all(t["feasible"] is not None for t in trials)
    study = optuna.load_study(study_name=f"hwnas-{grid_job['id']}", storage=settings.resolved_db_url())
    assert study.metric_names == ["F1", "p90 latency native (ms)"]
    assert all(t.system_attrs.get("constraints") is not None or any(k.startswith("constraints:") for k in t.system_attrs) for t in study.trials)


def test_a_second_job_reuses_the_first_jobs_trials_and_survives_its_deletion(service, grid_job, tiny_qa_model, squad_files) -> None:  # type: ignore[no-untyped-def]
    client, _ = service
    space = {"layers": [1, 2], "heads": [2], "ffn": [32]}
    job = _run(client, tiny_spec(tiny_qa_model, *squad_files, name="again", search_space=space, sampler="grid", budget={"trials": 2}))
    trials = _trials(client, job["id"])
    sources = sorted(str(t["stage_seconds"].get("reused_from_trial")) for t in trials)
    assert all(s.startswith(grid_job["id"] + "/") for s in sources), sources  # nothing built again
    first = {t["number"]: t for t in _trials(client, grid_job["id"])}
    for t in trials:
        src = first[int(str(t["stage_seconds"]["reused_from_trial"]).split("/")[1])]
        assert t["f1"] == src["f1"] and t["measurements"][0]["p90_ms"] == src["measurements"][0]["p90_ms"]
    assert client.delete(f"/api/v1/jobs/{grid_job['id']}").status_code == 204
    r = client.get(f"/api/v1/jobs/{job['id']}/trials/{trials[0]['number']}/model")
    assert r.status_code == 200 and r.content[:2] == b"PK"  # its artifacts were linked, not borrowed


def test_throughput_objective_constraints_and_predictor_drops(service, grid_job, tiny_qa_model, squad_files) -> None:  # type: ignore[no-untyped-def]
    client, settings = service
    spec = tiny_spec(
        tiny_qa_model, *squad_files, name="capped", search_space={"layers": [1, 2, 4], "heads": [4], "ffn": [64, 128]},
        sampler="random", budget={"trials": 1}, objective="throughput",
        constraints={"max_latency_ms": 0.001, "min_f1_ratio": None}, predictor={"min_points": 3, "drop_margin": 0.25},
    )  # fmt: skip
    job = _run(client, spec)
    trials = _trials(client, job["id"])
    skipped = [t for t in trials if t["state"] == "skipped"]
    completed = [t for t in trials if t["state"] == "completed"]
    # the fixed anchors come first: the largest subnet, then uniform shrinks of it
    first = sorted(trials, key=lambda t: t["number"])[:2]
    assert [(len(t["config"]["layers"]), set(t["config"]["heads"]), set(t["config"]["ffn"])) for t in first] == [(4, {4}, {128}), (2, {4}, {128})]
    # warm-started from the earlier jobs' measurements, it rules out everything (no subnet runs in 1 us) ...
    assert skipped and all("predicted p90 on native" in t["error"] for t in skipped)
    assert all(t["predicted"]["native"]["points"] >= 3 for t in skipped)
    # ... until it has dropped 20 in a row; then one is measured, found infeasible, and the budget is spent
    assert len(skipped) == 20 and len(completed) == 1 and completed[0]["feasible"] is False
    assert job["progress"]["skipped"] == 20 and job["progress"]["completed"] == 1
    front = client.get(f"/api/v1/jobs/{job['id']}/pareto", params={"target": "native"}).json()
    assert front["objectives"] == ["maximize f1", "maximize throughput_sps"]
    assert front["constraint"]["max_latency_ms"] == 0.001 and front["best"] is None
    assert {t["number"] for t in front["trials"]} <= {t["number"] for t in completed}  # skipped never on a front
    study = optuna.load_study(study_name=f"hwnas-{job['id']}", storage=settings.resolved_db_url())
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MAXIMIZE"]


def test_refine_without_a_supernet_is_a_422(service, tiny_qa_model, squad_files) -> None:  # type: ignore[no-untyped-def]
    client, _ = service
    r = client.post("/api/v1/jobs", json=tiny_spec(tiny_qa_model, *squad_files, refine={"top_k": 2}))
    assert r.status_code == 422 and "supernet.enabled" in r.text


def test_refine_stage_distils_the_front_member_nearest_the_floor_into_a_new_trial(service, tiny_qa_model, squad_files, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from bench.teacher import quick_subset

    client, _ = service
    train = quick_subset(squad_files[0], tmp_path, articles=4, per_article=5)  # refinement distils over the whole train file
    spec = tiny_spec(
        tiny_qa_model, train, squad_files[1], name="refined", search_space={"layers": [1, 2], "heads": [2, 4], "ffn": [32, 64]},
        budget={"trials": 3}, objective="throughput", anchor_trials=2,
        supernet={"enabled": True, "max_steps": 2, "batch_size": 4, "max_train_examples": 40},
        constraints={"min_f1_ratio": None, "min_f1": 100},  # nothing is feasible: the most accurate front member is refined
        refine={"top_k": 1, "steps": 2, "learning_rate": 5e-5},
    )  # fmt: skip
    job = _run(client, spec, timeout=1200)  # supernet, 3 trials, refinement: minutes on a shared 2-core host
    trials = sorted(_trials(client, job["id"]), key=lambda t: t["number"])
    searched, extra = trials[:3], trials[3:]
    assert len(extra) == 1 and extra[0]["state"] == "completed", extra
    done = [t for t in searched if t["state"] == "completed"]
    # the front the refine stage saw: the searched trials only (the refined one may dominate them all now)
    from nas.pareto import pareto_keys

    speed = {t["number"]: t["measurements"][0]["throughput_sps"] for t in done}
    on_front = set(pareto_keys([(t["number"], (t["f1"], speed[t["number"]])) for t in done], ["maximize", "maximize"]))
    top = max((t for t in done if t["number"] in on_front), key=lambda t: (t["f1"], speed[t["number"]]))
    refined = extra[0]
    assert refined["config"] == top["config"] and refined["f1_before_refine"] == top["f1"]
    assert refined["stage_seconds"]["refine_steps"] == 2.0 and "distil" in refined["stage_seconds"]
    assert refined["measurements"] and all(t.get("f1_before_refine") is None for t in searched)
