"""Pruning and QAT through the HTTP API: real Ray, Optuna, NNCF (torch pruning and fake quantizers) and OpenVINO."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from api.server import ServiceThread, free_port
from nas.config import Settings
from tests.helpers import unzip, wait_for_job
from tests.test_loop_tiny import tiny_spec


@pytest.fixture(scope="module")
def service(tmp_path_factory, ray_local):  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path_factory.mktemp("hwnas-data"), port=free_port(), db_url=None)
    with ServiceThread(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def _trials(client: httpx.Client, job_id: str) -> list[dict]:
    return sorted(client.get(f"/api/v1/jobs/{job_id}/trials").json(), key=lambda t: t["number"])


@pytest.fixture(scope="module")
def sparse_qat_job(service, tiny_qa_model, squad_files, tmp_path_factory):  # type: ignore[no-untyped-def]
    """A grid over one subnet x sparsity {0, 0.8} (two QAT trials: 4 took 234 s of CI on zen3): every trial QAT (qat_scope all), the sparse ones pruned
    while distilled. On a host without AMX no target gains speed from zeros: for_size keeps the dimension."""
    from bench.teacher import quick_subset

    train = quick_subset(squad_files[0], tmp_path_factory.mktemp("train"), articles=4, per_article=5)
    spec = tiny_spec(
        tiny_qa_model, train, squad_files[1], name="sparse qat", sampler="grid", anchor_trials=0,
        search_space={"layers": [2], "heads": [4], "ffn": [128]}, budget={"trials": 2},
        sparsity={"choices": [0, 0.8], "steps": 6, "for_size": True},
        quantization={"method": "qat", "qat_scope": "all", "qat_steps": 3},
    )  # fmt: skip
    r = service.post("/api/v1/jobs", json=spec)
    assert r.status_code == 201, r.text
    return wait_for_job(service, r.json()["id"], timeout=1200)


def test_every_trial_is_qat_and_the_sparse_ones_carry_their_zeros(service, sparse_qat_job) -> None:  # type: ignore[no-untyped-def]
    job = sparse_qat_job
    assert job["status"] == "completed", job["error"]
    decision = job["deployment"]["sparsity"]
    assert decision["choices"] == [0.0, 0.8] and "for size" in decision["reason"]
    trials = _trials(service, job["id"])
    assert len(trials) == 2 and all(t["state"] == "completed" for t in trials), [t["error"] for t in trials]
    by_sparsity: dict[float, list[dict]] = {}
    for t in trials:
        by_sparsity.setdefault(t["config"].get("sparsity", 0.0), []).append(t)
        c = t["metrics"]["compression"]
        assert c["quantization"] == "QAT" and c["qat_steps"] == 3 and "qat" in t["stage_seconds"]
        assert "quantize" not in t["stage_seconds"]  # no post-training INT8 on top
    assert sorted(by_sparsity) == [0.0, 0.8] and all(len(v) == 1 for v in by_sparsity.values())  # the grid covered both
    for t in by_sparsity[0.8]:
        c = t["metrics"]["compression"]
        assert c["sparsity"] == 0.8 and c["prune_steps"] == 6 and abs(c["weight_sparsity"] - 0.8) < 0.03
        assert "prune" in t["stage_seconds"]
    for t in by_sparsity[0.0]:
        assert t["metrics"]["compression"]["weight_sparsity"] < 0.05 and "prune" not in t["stage_seconds"]
    baselines = {b["precision"]: b for b in job["baselines"]}
    assert not (baselines["int8"]["metrics"] or {}).get("compression")  # the INT8 teacher stays PTQ: the reference


def test_the_zip_of_a_sparse_qat_trial_carries_the_zeros_and_reproduces_its_f1(service, sparse_qat_job, tmp_path, squad_files) -> None:  # type: ignore[no-untyped-def]
    import json

    import openvino as ov
    from transformers import AutoTokenizer

    from core.qa.features import prepare_eval_features
    from core.qa.squad import load_squad
    from workers.evaluate import evaluate_qa, openvino_runner
    from workers.export import weight_sparsity

    sparse = [t for t in _trials(service, sparse_qat_job["id"]) if t["config"].get("sparsity")]
    t = max(sparse, key=lambda t: t["f1"])
    r = service.get(f"/api/v1/jobs/{sparse_qat_job['id']}/trials/{t['number']}/model")
    assert r.status_code == 200
    d = unzip(r.content, tmp_path / "model")
    model = ov.Core().read_model(d / "openvino_model.xml")
    assert abs(weight_sparsity(model) - 0.8) < 0.03  # the zeros survive INT8 and the download
    assert sum(op.get_type_name() == "FakeQuantize" for op in model.get_ops()) > 5 or any(
        op.get_type_name() == "Constant" and op.get_element_type() == ov.Type.i8 for op in model.get_ops()
    )
    card = json.loads((d / "model_card.json").read_text())
    assert card["compression"]["quantization"] == "QAT" and card["compression"]["sparsity"] == 0.8
    assert "quantization-aware" in json.loads((d / "deployment.json").read_text())["quantization"]
    task = sparse_qat_job["spec"]["task"]
    examples = load_squad(squad_files[1])[: task["max_eval_examples"]]
    feats = prepare_eval_features(examples, AutoTokenizer.from_pretrained(d), max_seq_length=task["max_seq_length"], doc_stride=task["doc_stride"])
    run = openvino_runner(ov.Core().compile_model(model, "CPU"))
    assert evaluate_qa(run, examples, feats, batch_size=16)["f1"] == pytest.approx(t["f1"], abs=1e-9)


def test_sparsity_and_qat_in_the_refine_stage(service, tiny_qa_model, squad_files, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """qat_scope refine (the default) and sparsity.stage refine: the search's trials stay dense PTQ, the refined
    member is pruned to each choice while distilled, then QAT."""
    from bench.teacher import quick_subset

    train = quick_subset(squad_files[0], tmp_path, articles=4, per_article=5)
    spec = tiny_spec(
        tiny_qa_model, train, squad_files[1], name="refine compression", search_space={"layers": [1, 2], "heads": [2, 4], "ffn": [32, 64]},
        budget={"trials": 2}, anchor_trials=2, objective="throughput",
        supernet={"enabled": True, "max_steps": 2, "batch_size": 4, "max_train_examples": 40},
        constraints={"min_f1_ratio": None, "min_f1": 100},  # nothing is feasible: the most accurate front member is refined
        refine={"top_k": 1, "steps": 2, "learning_rate": 5e-5},
        sparsity={"choices": [0.5], "stage": "refine", "steps": 4, "for_size": True},
        quantization={"method": "qat", "qat_steps": 2},
    )  # fmt: skip
    r = service.post("/api/v1/jobs", json=spec)
    assert r.status_code == 201, r.text
    job = wait_for_job(service, r.json()["id"], timeout=1200)
    assert job["status"] == "completed", job["error"]
    trials = _trials(service, job["id"])
    searched, refined = trials[:2], trials[2:]
    assert all(not (t["metrics"] or {}).get("compression") and "quantize" in t["stage_seconds"] for t in searched)
    assert len(refined) == 1 and refined[0]["state"] == "completed", refined
    c = refined[0]["metrics"]["compression"]
    assert refined[0]["config"]["sparsity"] == 0.5 and c["quantization"] == "QAT" and abs(c["weight_sparsity"] - 0.5) < 0.03
    assert {"distil", "prune", "qat"} <= set(refined[0]["stage_seconds"]) and refined[0]["f1_before_refine"] is not None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sparsity": {"choices": [0.5, 1.0]}}, "sparsity choices must be in [0, 0.99]"),
        ({"quantization": {"method": "qat"}}, "qat_scope refine"),
        ({"quantization": {"method": "qat", "qat_scope": "all"}, "precision": "fp32"}, "precision fp32"),
        ({"sparsity": {"choices": [0.5], "stage": "refine"}}, "sparsity.stage refine"),
        ({"quantization": {"method": "qat", "qat_scope": "all", "max_f1_drop": 1.0}}, "max_f1_drop"),
    ],
)
def test_bad_compression_specs_are_422s_that_name_the_field(service, tiny_qa_model, squad_files, overrides, message) -> None:  # type: ignore[no-untyped-def]
    r = service.post("/api/v1/jobs", json=tiny_spec(tiny_qa_model, *squad_files, **overrides))
    assert r.status_code == 422 and message in r.text, r.text


def test_a_deepsparse_target_is_measured_where_installed_and_dropped_with_its_reason_where_not(service, tiny_qa_model, squad_files, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """DeepSparse is optional (``make deepsparse-venv``): with it, a pruned QAT trial's model.onnx is measured on the
    ``deepsparse`` target and labelled; without it (CI's clean checkout) the job drops the target, says why and completes."""
    import json
    import subprocess
    import sys

    from workers.runtimes import get_runtime

    why = get_runtime("deepsparse").unavailable()
    # with DeepSparse: a pruned QAT trial (its ONNX is the QAT model); without it the job only has to drop the target
    compression = {} if why is not None else {
        "sparsity": {"choices": [0.8], "steps": 4, "for_size": True}, "quantization": {"method": "qat", "qat_scope": "all", "qat_steps": 2},
    }  # fmt: skip
    spec = tiny_spec(tiny_qa_model, *squad_files, name="deepsparse", targets=["native", "deepsparse"], budget={"trials": 1}, anchor_trials=1, **compression)
    r = service.post("/api/v1/jobs", json=spec)
    assert r.status_code == 201, r.text
    job = wait_for_job(service, r.json()["id"], timeout=1800)  # with DeepSparse: its engine compiles per shape (minutes)
    assert job["status"] == "completed", job["error"]
    (trial,) = _trials(service, job["id"])
    assert trial["state"] == "completed", trial["error"]
    by_target = {m["target"]: m for m in trial["measurements"]}
    if why is not None:
        assert job["deployment"]["unavailable_targets"] == {"deepsparse": f"target deepsparse: {why}"}
        assert set(by_target) == {"native"} and "make deepsparse-venv" in why
        return
    assert "unavailable_targets" not in job["deployment"] and set(by_target) == {"native", "deepsparse"}
    ds = by_target["deepsparse"]["fingerprint"]
    assert ds["runtime"] == "deepsparse" and ds["runtime_label"] == "DeepSparse 1.8, end-of-life, evaluation licence"
    assert by_target["deepsparse"]["throughput_sps"] > 0
    zip_path = tmp_path / "model.zip"
    zip_path.write_bytes(service.get(f"/api/v1/jobs/{job['id']}/trials/{trial['number']}/model").content)
    assert (unzip(zip_path.read_bytes(), tmp_path / "unpacked") / "model.onnx").is_file()
    out = subprocess.run([sys.executable, "-m", "cli.main", "bench", str(zip_path), "--target", "deepsparse", "--json", "--seconds", "0.2",
                          "--iterations", "5", "--max-repeats", "1", "--min-repeats", "1"], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr
    measured = json.loads(out.stdout.strip().splitlines()[-1])["measurement"]
    assert measured["fingerprint"]["runtime_label"] == "DeepSparse 1.8, end-of-life, evaluation licence"
