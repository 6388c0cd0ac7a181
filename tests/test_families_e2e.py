"""A whole job per model family through the HTTP API: real Ray, Optuna, NNCF and OpenVINO on a tiny random
model of each family with its own locally trained tokenizer (tests/families.py).

For every family the downloaded zips load with ``transformers`` (the family's own config and
``*ForQuestionAnswering`` class where a config can describe the subnet, hwnas's documented sliced class
otherwise) and with ``openvino.Core().read_model``, and reproduce the stored F1 exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.server import ServiceThread, free_port
from nas.config import Settings
from tests.families import FAMILIES, qa_class, tiny_family_model
from tests.helpers import unzip, wait_for_job

EVAL_QUESTIONS = 24
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(tmp_path_factory, ray_local):  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path_factory.mktemp("hwnas-families"), port=free_port(), db_url=None)
    with ServiceThread(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def _spec(model_dir: Path, train: str, evalf: str, family: str) -> dict[str, Any]:
    return {
        "name": f"{family} tiny job",
        "base_model": str(model_dir),
        "task": {"train_file": train, "eval_file": evalf, "max_seq_length": 128, "doc_stride": 32,
                 "max_eval_examples": EVAL_QUESTIONS, "calibration_samples": 8},  # fmt: skip
        # the anchors come first: the full model (own class), then uniform shrinks (fewer heads and FFN)
        "search_space": {"layers": [1, 2], "heads": [2, 4], "ffn": [64, 128]},
        "targets": ["native"],
        "budget": {"trials": 2},
        "anchor_trials": 2,
        "sampler": "random",
        "seed": 1,
        "measure": {"iterations": 5, "seconds": 0.1, "throughput_batch": 2, "max_repeats": 1},
    }


def _reproduce_f1(d: Path, eval_file: str, card: dict[str, Any]) -> float:
    import openvino as ov
    from transformers import AutoTokenizer

    from core.qa.features import prepare_eval_features
    from core.qa.squad import load_squad
    from workers.evaluate import evaluate_qa, openvino_runner

    # as the service scored it: FP32, and INT8's non-quantized ops, in f32 (bf16's rounding depends on the shape)
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    compiled = ov.Core().compile_model(ov.Core().read_model(d / "openvino_model.xml"), "CPU", config)
    tok = AutoTokenizer.from_pretrained(d)
    examples = load_squad(eval_file, limit=EVAL_QUESTIONS)
    data = card["data"]
    feats = prepare_eval_features(examples, tok, max_seq_length=data["max_seq_length"], doc_stride=data["doc_stride"])
    return evaluate_qa(openvino_runner(compiled), examples, feats)["f1"]


# CI (make test) runs the two families whose IRs differ most (BERT's token types, DeBERTa-v2's relative positions);
# RoBERTa, XLM-RoBERTa (RoBERTa's graph, another tokenizer), ELECTRA (BERT's graph with an embedding projection) and
# DistilBERT (no token types) run in `make test-soak`: the six together took 11 of CI's 30 minutes on a zen3 host.
IN_SOAK = ("roberta", "xlm-roberta", "electra", "distilbert")


@pytest.mark.parametrize("family", [pytest.param(f, marks=pytest.mark.soak) if f in IN_SOAK else f for f in FAMILIES])
def test_a_job_runs_end_to_end_and_its_models_stay_in_the_family(service, family, squad_files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import transformers

    started = time.monotonic()
    base = tiny_family_model(family, tmp_path / f"tiny-{family}", squad_files[0], hidden=32, layers=2, heads=4, ffn=128)
    r = service.post("/api/v1/jobs", json=_spec(base, *squad_files, family))
    assert r.status_code == 201, r.text
    job = wait_for_job(service, r.json()["id"], timeout=600)
    assert job["status"] == "completed", job["error"]
    assert job["teacher_metrics"].get("given") is True  # the base has a QA head: it is the teacher
    assert {b["precision"] for b in job["baselines"]} == {"fp32", "int8"}
    trials = [t for t in service.get(f"/api/v1/jobs/{job['id']}/trials").json() if t["state"] == "completed"]
    assert len(trials) == 2, [t.get("error") for t in service.get(f"/api/v1/jobs/{job['id']}/trials").json()]
    own = qa_class(family).__name__
    for t in trials:
        r = service.get(f"/api/v1/jobs/{job['id']}/trials/{t['number']}/model")
        assert r.status_code == 200
        d = unzip(r.content, tmp_path / f"trial{t['number']}")
        card = json.loads((d / "model_card.json").read_text())
        assert card["family"] == family
        config = json.loads((d / "config.json").read_text())
        full_heads = all(h == 4 for h in t["config"]["heads"]) and len(set(t["config"]["ffn"])) == 1
        if full_heads:  # a config can say it: the family's own class
            assert config["architectures"] == [own], config["architectures"]
            cfg = transformers.AutoConfig.from_pretrained(d)
            model = transformers.AutoModelForQuestionAnswering.from_config(cfg)
            assert type(model).__name__ == own
        else:  # fewer heads or per-layer widths: hwnas's documented sliced class, beside the config
            assert config["model_type"] in ("hwnas_sliced", "hwnas_bert"), config["model_type"]
            cfg = transformers.AutoConfig.from_pretrained(d, trust_remote_code=True)
            model = transformers.AutoModelForQuestionAnswering.from_config(cfg, trust_remote_code=True)
        assert sum(p.numel() for p in model.parameters()) > 0
        assert _reproduce_f1(d, squad_files[1], card) == pytest.approx(t["f1"], abs=1e-6)
        # the zip's own example (openvino, numpy, the tokenizer; none of hwnas) applies deployment.json and scores alike
        assert t["measurements"][0]["deployment"]["reason"] == json.loads((d / "deployment.json").read_text())["targets"][0]["reason"]
        example = subprocess.run([sys.executable, str(d / "run_deployment.py"), "--eval", squad_files[1], "--limit", str(EVAL_QUESTIONS)],
                                 cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert example.returncode == 0, example.stderr[-3000:]
        deployed_f1 = json.loads((d / "deployment.json").read_text())["targets"][0]["f1"]  # a bf16 deployment's own F1, else None
        expected = t["f1"] if deployed_f1 is None else deployed_f1["f1"]
        assert json.loads(example.stdout.strip().splitlines()[-1])["f1"] == pytest.approx(expected, abs=1e-9)
    print(f"{family}: whole job {time.monotonic() - started:.0f} s")  # the note quotes these (pytest -s)
