"""The whole loop through the HTTP API: real Ray, real Optuna, real NNCF and OpenVINO, a tiny random BERT."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from api.server import ServiceThread, free_port
from nas.config import Settings
from tests.helpers import dominated, unzip, wait_for_job

EVAL_QUESTIONS = 24


def tiny_spec(model_dir: Path, train: str, evalf: str, **overrides) -> dict:  # type: ignore[no-untyped-def]
    spec = {
        "name": "tiny loop",
        "base_model": str(model_dir),
        "task": {
            "train_file": train,
            "eval_file": evalf,
            "max_seq_length": 128,
            "doc_stride": 48,
            "max_eval_examples": EVAL_QUESTIONS,
            "calibration_samples": 4,
        },
        "search_space": {"layers": [1, 2, 4], "heads": [2, 4], "ffn": [32, 128]},
        "targets": ["native"],
        "budget": {"trials": 4},
        "sampler": "random",
        "seed": 3,
        # the shortest measurement the service allows: these tests check the loop, not the figures (one repeat:
        # each is a fresh process, about 3 s of a tiny trial on zen3; the tests of repeats are tests/workers/test_benchmark.py)
        "measure": {"iterations": 5, "seconds": 0.1, "throughput_batch": 2, "max_repeats": 1},
        # the deployment sweep (about 3 s per measurement) is left to the tests that check it: the zip test
        # below, the families' jobs, the dashboard's job, the runtime conformance suite
        "deployment": {"enabled": False},
    }
    spec.update(overrides)
    return spec


@pytest.fixture(scope="module")
def service(tmp_path_factory, ray_local):  # type: ignore[no-untyped-def]
    data_dir = tmp_path_factory.mktemp("hwnas-data")
    settings = Settings(data_dir=data_dir, port=free_port(), db_url=None)
    with ServiceThread(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, settings


@pytest.fixture(scope="module")
def finished_job(service, tiny_qa_model, squad_files):  # type: ignore[no-untyped-def]
    client, _ = service
    r = client.post("/api/v1/jobs", json=tiny_spec(tiny_qa_model, *squad_files))
    assert r.status_code == 201, r.text
    job = wait_for_job(client, r.json()["id"], timeout=600)
    return job


def test_job_completes_and_every_trial_is_accounted_for(service, finished_job) -> None:  # type: ignore[no-untyped-def]
    client, _ = service
    assert finished_job["status"] == "completed", finished_job["error"]
    trials = client.get(f"/api/v1/jobs/{finished_job['id']}/trials").json()
    assert len(trials) == 4
    for t in trials:
        assert t["state"] in ("completed", "failed")
        if t["state"] == "failed":
            assert t["error"], "a failed trial must carry its reason"
        else:
            m = t["measurements"][0]
            assert 0 <= t["f1"] <= 100 and m["p50_ms"] <= m["p90_ms"] and m["throughput_sps"] > 0
            assert m["fingerprint"]["openvino_version"] and m["fingerprint"]["native"] is True
            assert set(t["stage_seconds"]) >= {"extract", "convert", "quantize", "evaluate", "measure"} or (
                "reused_from_trial" in t["stage_seconds"]
            )
    precisions = {b["precision"]: b for b in finished_job["baselines"]}
    assert set(precisions) == {"fp32", "int8"}
    assert precisions["fp32"]["measurements"][0]["fingerprint"]["inference_precision"] == "f32"
    assert finished_job["progress"]["completed"] + finished_job["progress"]["failed"] == 4


def test_pareto_is_non_dominated_and_non_empty(service, finished_job) -> None:  # type: ignore[no-untyped-def]
    client, _ = service
    job_id = finished_job["id"]
    front = client.get(f"/api/v1/jobs/{job_id}/pareto", params={"target": "native"}).json()["trials"]
    assert front
    everything = [t for t in client.get(f"/api/v1/jobs/{job_id}/trials").json() if t["state"] == "completed"]
    point = lambda t: (t["f1"], t["measurements"][0]["p90_ms"])  # noqa: E731
    front_numbers = {t["number"] for t in front}
    for t in front:
        assert not any(dominated(point(t), point(o)) for o in everything)
    for t in everything:  # and everything left out is dominated by someone (or ties a front member)
        if t["number"] not in front_numbers:
            assert any(dominated(point(t), point(o)) or point(o) == point(t) for o in everything)


def test_downloaded_model_loads_and_reproduces_stored_f1(service, finished_job, tmp_path, squad_files) -> None:  # type: ignore[no-untyped-def]
    import openvino as ov
    from transformers import AutoTokenizer

    from core.qa.features import prepare_eval_features
    from core.qa.squad import load_squad
    from workers.evaluate import evaluate_qa, openvino_runner

    client, _ = service
    job_id = finished_job["id"]
    best = client.get(f"/api/v1/jobs/{job_id}/pareto").json()["trials"][0]
    r = client.get(f"/api/v1/jobs/{job_id}/trials/{best['number']}/model")
    assert r.status_code == 200
    assert r.headers["X-Checksum-SHA256"] == hashlib.sha256(r.content).hexdigest()
    d = unzip(r.content, tmp_path / "model")
    for name in ("openvino_model.xml", "openvino_model.bin", "config.json", "model_card.json", "tokenizer.json"):
        assert (d / name).is_file(), name
    card = json.loads((d / "model_card.json").read_text())
    assert card["metrics"]["f1"] == pytest.approx(best["f1"])
    assert card["architecture"]["layers"] == best["config"]["layers"]

    model = ov.Core().read_model(d / "openvino_model.xml")
    compiled = ov.Core().compile_model(model, "CPU")
    tok = AutoTokenizer.from_pretrained(d)
    examples = load_squad(squad_files[1], limit=EVAL_QUESTIONS)
    feats = prepare_eval_features(examples, tok, max_seq_length=128, doc_stride=48)
    scores = evaluate_qa(openvino_runner(compiled), examples, feats)
    assert scores["f1"] == pytest.approx(best["f1"], abs=1e-6)

    one = tok(examples[0].question, examples[0].context, truncation="only_second", max_length=128, return_tensors="np")
    out = compiled({k: one[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")})
    assert out[compiled.output(0)].shape == one["input_ids"].shape


@pytest.fixture(scope="module")
def small_qa_model(tmp_path_factory: pytest.TempPathFactory, tiny_qa_model: Path) -> Path:
    """A 4-layer, 256-wide random BERT QA model (MiniLM's tokenizer): enough work per sample (about 1 ms
    here) that a second of Offline timing is not dominated by the per-request overhead a 64-wide model has
    (its figures, above 2,000 samples/s, moved 20% between two runs of the same IR on zen4)."""
    import torch
    import transformers

    out = tmp_path_factory.mktemp("small-bert-qa")
    cfg = transformers.BertConfig.from_pretrained(tiny_qa_model)
    cfg.hidden_size, cfg.intermediate_size = 256, 512
    torch.manual_seed(0)
    transformers.BertForQuestionAnswering(cfg).save_pretrained(out)
    transformers.AutoTokenizer.from_pretrained(tiny_qa_model).save_pretrained(out)
    return out


@pytest.mark.serial  # a throughput within 10% of the stored one needs the host to itself (no second test process)
def test_zip_carries_its_deployment_and_its_example_reproduces_f1_and_throughput(service, small_qa_model, squad_files, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Every trial chooses a deployment per target by measurement (length policy, Offline batch, streams),
    stores it with the fixed-length figures beside it, and the zip's ``run_deployment.py`` (openvino, numpy
    and the tokenizer only) applies ``deployment.json``: the stored F1 exactly and, timed in this same run,
    at least 90% of the stored Offline throughput. LoadGen runs 1.5 s per scenario; the example 3 s.
    The model is 256 wide: a 64-wide one's figures are per-request overhead more than inference."""
    client, _ = service
    spec = tiny_spec(small_qa_model, *squad_files, budget={"trials": 1}, anchor_trials=1, seed=5, deployment={},
                     search_space={"layers": [4], "heads": [4], "ffn": [512]},
                     measure={"iterations": 20, "seconds": 3.0, "throughput_batch": 4, "max_repeats": 2})  # fmt: skip
    r = client.post("/api/v1/jobs", json=spec)
    assert r.status_code == 201, r.text
    job = wait_for_job(client, r.json()["id"], timeout=600)
    assert job["status"] == "completed", job
    trial = client.get(f"/api/v1/jobs/{job['id']}/trials").json()[0]
    m = trial["measurements"][0]
    deployment = m["fingerprint"]["deployment"]
    assert {r["policy"]["name"] for r in deployment["sweep"]} == {"buckets", "dynamic", "fixed"}
    assert m["throughput_sps"] == deployment["loadgen"]["offline"]["samples_per_second"]
    assert m["fingerprint"]["fixed_length"]["seq_len"] == 128 and "vs fixed 128" in deployment["reason"]
    assert deployment["loadgen"]["label"] == "LoadGen, not a valid MLPerf run"
    assert m["deployment"]["reason"] == deployment["reason"] and m["deployment"]["fixed_length"]["seq_len"] == 128
    deployed = client.get(f"/api/v1/jobs/{job['id']}/pareto").json()
    fixed = client.get(f"/api/v1/jobs/{job['id']}/pareto", params={"view": "fixed"}).json()
    assert deployed["objectives"][1] == "minimize p90_ms" and fixed["objectives"][1] == "minimize p90_ms at fixed length"
    assert [t["number"] for t in fixed["trials"]] == [trial["number"]]
    assert client.get(f"/api/v1/jobs/{job['id']}/pareto", params={"view": "padded"}).status_code == 422

    d = unzip(client.get(f"/api/v1/jobs/{job['id']}/trials/{trial['number']}/model").content, tmp_path / "model")
    doc = json.loads((d / "deployment.json").read_text())
    target = doc["targets"][0]
    assert (doc["max_seq_length"], doc["doc_stride"], target["target"]) == (128, 48, "native")
    assert target["offline"]["length_policy"] == deployment["offline"]["length_policy"]
    assert target["offline"]["samples_per_second"] == m["throughput_sps"] and target["reason"] == deployment["reason"]
    card = json.loads((d / "model_card.json").read_text())
    assert card["deployment"]["native"]["reason"] == deployment["reason"]
    # f32 (bf16 is opt-in; its scoring as deployed against the example: tests/workers/test_deployment_precision.py)
    assert target["inference_precision"] == "f32" == m["deployment"]["inference_precision"] and target["f1"] is None
    assert target["openvino_config"]["offline"]["INFERENCE_PRECISION_HINT"] == "f32"
    expected_f1 = card["metrics"]["f1"]

    cmd = [sys.executable, str(d / "run_deployment.py"), "--eval", squad_files[1], "--limit", str(EVAL_QUESTIONS), "--seconds", "3"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    runs = []  # this VM's 1-3 s throughput figures of one IR moved by up to 15% run to run (zen4, 2026-12-03): up to 3 tries
    for _ in range(3):
        out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)  # not the project's cwd
        assert out.returncode == 0, out.stderr[-3000:]
        got = json.loads(out.stdout.strip().splitlines()[-1])
        assert got["count"] == EVAL_QUESTIONS and got["f1"] == pytest.approx(expected_f1, abs=1e-9)  # every time
        assert got["stored_f1"] == expected_f1 and got["inference_precision"] == target["inference_precision"]
        runs.append(got["samples_per_second"])
        if got["samples_per_second"] >= 0.9 * m["throughput_sps"]:
            break
    hwnas_sps = deployment["offline"]["samples_per_second"]  # the sweep's own harness, beside LoadGen's stored figure
    assert max(runs) >= 0.9 * m["throughput_sps"], (runs, m["throughput_sps"], hwnas_sps, deployment["offline"])
    answer = subprocess.run([sys.executable, str(d / "run_deployment.py"), "--question", "Who wrote it?", "--context",
                             "The book was written by Ada Lovelace in London."], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert answer.returncode == 0 and answer.stdout.strip() in "The book was written by Ada Lovelace in London.", answer.stderr[-2000:]


def test_auto_precision_builds_the_subnets_in_the_faster_precision(service, tiny_qa_model, squad_files) -> None:  # type: ignore[no-untyped-def]
    """``precision: auto``: the job measures its teacher in FP32 and INT8, keeps the faster one for every
    subnet (on this host, whichever it is), stores why, and the trials' measurements and zips follow it."""
    client, _ = service
    spec = tiny_spec(tiny_qa_model, *squad_files, budget={"trials": 2}, anchor_trials=2, seed=21, precision="auto")
    r = client.post("/api/v1/jobs", json=spec)
    assert r.status_code == 201, r.text
    job = wait_for_job(client, r.json()["id"], timeout=600)
    assert job["status"] == "completed", job["error"]
    d = job["deployment"]
    base = {b["precision"]: b["measurements"][0] for b in job["baselines"]}
    int8_faster = base["int8"]["p90_ms"] <= base["fp32"]["p90_ms"]  # the job's objective: latency
    assert d["chosen_by"] == "measured" and d["precision"] == ("int8" if int8_faster else "fp32"), d
    assert ("INT8 faster" if int8_faster else "INT8 slower than FP32") in d["reason"]
    trials = [t for t in client.get(f"/api/v1/jobs/{job['id']}/trials").json() if t["state"] == "completed"]
    assert trials and all(m["precision"] == d["precision"] for t in trials for m in t["measurements"])
    front = client.get(f"/api/v1/jobs/{job['id']}/pareto", params={"target": "native"}).json()
    assert front["trials"], "the front reads the job's precision"
    r = client.get(f"/api/v1/jobs/{job['id']}/trials/{front['trials'][0]['number']}/model")
    assert r.status_code == 200 and d["precision"] in r.headers["content-disposition"]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"budget": {"trials": 0}}, "budget"),
        ({"targets": ["nehalem"]}, "targets"),
        ({"sampler": "hillclimb"}, "sampler"),
        ({"search_space": {"layers": [9], "heads": [2], "ffn": [32]}}, "search_space"),
        ({"base_model": "no-such-model"}, "base_model"),
    ],
)
def test_invalid_specs_get_422_naming_the_field(service, tiny_qa_model, squad_files, patch, field) -> None:  # type: ignore[no-untyped-def]
    client, _ = service
    r = client.post("/api/v1/jobs", json=tiny_spec(tiny_qa_model, *squad_files, **patch))
    assert r.status_code == 422
    assert field in json.dumps(r.json()["detail"])


def test_missing_data_file_is_422_naming_the_file(service, tiny_qa_model, squad_files) -> None:  # type: ignore[no-untyped-def]
    client, _ = service
    task = tiny_spec(tiny_qa_model, *squad_files)["task"] | {"eval_file": "/nonexistent/dev.json"}
    r = client.post("/api/v1/jobs", json=tiny_spec(tiny_qa_model, *squad_files, task=task))
    assert r.status_code == 422
    assert "task" in json.dumps(r.json()["detail"]) and "/nonexistent/dev.json" in r.text


def test_unknown_job_and_target_are_clear_errors(service, finished_job) -> None:  # type: ignore[no-untyped-def]
    client, _ = service
    assert client.get("/api/v1/jobs/doesnotexist").status_code == 404
    r = client.get(f"/api/v1/jobs/{finished_job['id']}/pareto", params={"target": "icelake"})
    assert r.status_code == 422 and "icelake" in r.text


def test_corrupted_ir_is_refused_not_served(service, finished_job) -> None:  # type: ignore[no-untyped-def]
    client, _ = service
    job_id = finished_job["id"]
    trials = [t for t in client.get(f"/api/v1/jobs/{job_id}/trials").json() if t["state"] == "completed"]
    victim = trials[-1]
    card = client.get(f"/api/v1/jobs/{job_id}/trials/{victim['number']}").json()
    assert card["state"] == "completed"
    from nas.store.db import make_engine, session_factory
    from nas.store import repo

    _, settings = service
    with session_factory(make_engine(settings.resolved_db_url()))() as s:
        row = repo.get_trial(s, job_id, victim["number"])
        directory = Path(row.artifact_dir)
        assert {a.name for a in row.artifacts} >= {"openvino_model.xml", "openvino_model.bin"}
    (directory / "model.zip").unlink(missing_ok=True)
    binary = directory / "openvino_model.bin"
    data = bytearray(binary.read_bytes())
    data[len(data) // 2] ^= 0xFF
    binary.write_bytes(bytes(data))
    r = client.get(f"/api/v1/jobs/{job_id}/trials/{victim['number']}/model")
    assert r.status_code == 409 and "openvino_model.bin" in r.text and "corrupted" in r.text


def test_cancel_stops_a_running_search(service, tiny_qa_model, squad_files) -> None:  # type: ignore[no-untyped-def]
    import time

    client, _ = service
    spec = tiny_spec(tiny_qa_model, *squad_files, budget={"trials": 200}, seed=11)
    job_id = client.post("/api/v1/jobs", json=spec).json()["id"]
    deadline = time.monotonic() + 300
    while client.get(f"/api/v1/jobs/{job_id}").json()["progress"]["completed"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    r = client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert r.status_code == 200
    assert r.json()["cancel_requested"] is True or r.json()["status"] == "cancelled"  # flagged for the coordinator
    job = wait_for_job(client, job_id, timeout=60)
    assert job["status"] == "cancelled"
    trials = client.get(f"/api/v1/jobs/{job_id}/trials").json()
    assert len(trials) < 200 and all(t["state"] in ("completed", "failed") for t in trials)
    assert all(t["error"] == "cancelled" for t in trials if t["state"] == "failed")
    assert client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 409
