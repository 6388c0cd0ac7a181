"""A SQuAD v2.0 job end to end through the HTTP API: real Ray, NNCF and OpenVINO, the packaged MiniLM
fine-tuned as the teacher, on derived v2.0 files (unanswerable questions paired with another article's
paragraph: ``core.qa.derive_v2``) made at run time from the shared train slice and XQuAD-en.

The stored F1 of every trial is checked against an independent recomputation: the downloaded IR run with
OpenVINO directly on the eval windows, post-processed (run_qa style) with the threshold of its model card,
scored by a re-implementation of the official ``evaluate-v2.0.py`` written here (not the project's).
"""

from __future__ import annotations

import collections
import json
import re
import string
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from api.server import ServiceThread, free_port
from nas.config import Settings
from tests.helpers import unzip, wait_for_job

pytestmark = pytest.mark.slow
SOAK = pytest.mark.soak  # the job fine-tunes a 200-step MiniLM teacher: `make test-soak`, outside CI

EVAL_QUESTIONS = 60
TEACHER_STEPS = 200  # the teacher then answers some questions and abstains on others (60 and 120 steps abstained on every answerable one)
SEQ, STRIDE = 128, 48
METRIC = "SQuAD v2.0 F1 (official semantics; null threshold chosen on held-out train questions)"


@pytest.fixture(scope="module")
def v2_files(tmp_path_factory, squad_files) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    from core.qa.derive_v2 import write_derived_v2

    out = tmp_path_factory.mktemp("squad-v2-derived")
    train = write_derived_v2(squad_files[0], out / "train-head-v2.json", seed=0)
    evalf = write_derived_v2(squad_files[1], out / "xquad-en-v2.json", seed=1)
    return str(train), str(evalf)


def v2_spec(train: str, evalf: str) -> dict[str, Any]:
    return {
        "name": "minilm on derived squad v2.0",
        "base_model": "minilm",
        "task": {  # no version: read from the data
            "train_file": train,
            "eval_file": evalf,
            "max_seq_length": SEQ,
            "doc_stride": STRIDE,
            "max_eval_examples": EVAL_QUESTIONS,
            "calibration_samples": 8,
        },
        # the one trial (the largest anchor) is the teacher's own width: it answers, so the check below
        # compares real span-or-abstain decisions
        "search_space": {"layers": [6], "heads": [12], "ffn": [768, 1536]},
        "targets": ["native"],
        "budget": {"trials": 1},
        "sampler": "random",
        "teacher": {"max_steps": TEACHER_STEPS, "batch_size": 16, "learning_rate": 3e-4, "max_train_examples": 1200},
        "measure": {"iterations": 5, "seconds": 0.1, "throughput_batch": 2, "max_repeats": 1},
    }


@pytest.fixture(scope="module")
def service(tmp_path_factory, ray_local):  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path_factory.mktemp("hwnas-v2"), port=free_port(), db_url=None)
    with ServiceThread(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def finished_job(service, v2_files) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    began = time.perf_counter()
    r = service.post("/api/v1/jobs", json=v2_spec(*v2_files))
    assert r.status_code == 201, r.text
    job = wait_for_job(service, r.json()["id"], timeout=1800)
    job["_wall_s"] = time.perf_counter() - began
    return job


# ---------- an independent SQuAD v2.0 scorer (after the official evaluate-v2.0.py) ----------


def _normalize(s: str) -> str:
    s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def _f1(gold: str, pred: str) -> float:
    g, p = _normalize(gold).split(), _normalize(pred).split()
    if not g or not p:
        return float(g == p)
    same = sum((collections.Counter(g) & collections.Counter(p)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def _official_v2(raw: dict[str, Any], preds: dict[str, str], limit: int) -> dict[str, float]:
    """exact / f1 / HasAns_f1 / NoAns_f1 in percent over the first ``limit`` questions of a raw SQuAD file."""
    exact, f1, has = {}, {}, {}
    for article in raw["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                if len(exact) == limit:
                    break
                golds = [a["text"] for a in qa["answers"] if _normalize(a["text"])] or [""]
                has[qa["id"]] = golds != [""]
                exact[qa["id"]] = max(float(_normalize(g) == _normalize(preds[qa["id"]])) for g in golds)
                f1[qa["id"]] = max(_f1(g, preds[qa["id"]]) for g in golds)
    mean = lambda d, keys: 100.0 * sum(d[k] for k in keys) / len(keys)  # noqa: E731
    yes, no = [k for k in has if has[k]], [k for k in has if not has[k]]
    return {"exact": mean(exact, list(exact)), "f1": mean(f1, list(f1)), "HasAns_f1": mean(f1, yes), "NoAns_f1": mean(f1, no),
            "HasAns_total": len(yes), "NoAns_total": len(no)}  # fmt: skip


def _answers_run_qa_style(examples, feats, start, end, threshold: float, n_best: int = 20, max_len: int = 30) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Per question: the best valid span over its windows (top-n start x end, both in the context, end >= start,
    at most max_len tokens), the null score (CLS start + end) minimised over its windows, "" where
    null - best span > threshold."""
    windows = collections.defaultdict(list)
    for w, i in enumerate(feats.example_index):
        windows[int(i)].append(w)
    answers = {}
    for i, example in enumerate(examples):
        best, null = None, None
        for w in windows[i]:
            s, e, offsets = start[w], end[w], feats.offset_mapping[w]
            null = s[0] + e[0] if null is None else min(null, s[0] + e[0])
            for a in np.argsort(-s, kind="stable")[:n_best]:
                for b in np.argsort(-e, kind="stable")[:n_best]:
                    if offsets[a] is None or offsets[b] is None or b < a or b - a + 1 > max_len:
                        continue
                    if best is None or s[a] + e[b] > best[0]:
                        best = (s[a] + e[b], example.context[offsets[a][0] : offsets[b][1]])
        if best is None or float(null) - float(best[0]) > threshold:
            answers[example.id] = ""
        else:
            answers[example.id] = best[1]
    return answers


# ---------- the job ----------


@SOAK
def test_v2_job_reports_hasans_noans_and_the_threshold(service, finished_job) -> None:  # type: ignore[no-untyped-def]
    job = finished_job
    assert job["status"] == "completed", job["error"]
    assert job["spec"]["task"]["version"] == "squad-v2.0"  # read from the data and stored
    teacher = job["teacher_metrics"]
    assert teacher["task"] == "squad-v2.0" and teacher["metric"] == METRIC and teacher["heldout_titles"]
    assert {"HasAns_f1", "NoAns_f1", "threshold", "heldout_f1"} <= set(teacher) and teacher["steps"] == TEACHER_STEPS
    assert teacher["HasAns_total"] + teacher["NoAns_total"] == teacher["eval_questions"] == EVAL_QUESTIONS
    assert teacher["HasAns_f1"] > 0 and teacher["NoAns_f1"] > 0  # it answers some questions and abstains on others
    figures = {"wall_s": round(job["_wall_s"], 1), "teacher": {k: teacher[k] for k in ("f1", "exact", "HasAns_f1", "NoAns_f1", "threshold", "heldout_f1")}}
    for b in job["baselines"]:
        m = b["metrics"]
        assert m["task"] == "squad-v2.0" and m["f1"] == b["f1"] and m["exact"] == b["exact_match"]
        assert {"HasAns_f1", "NoAns_f1", "threshold"} <= set(m) and "teacher was not trained on" in m["threshold_chosen_on"]
        figures[f"baseline-{b['precision']}"] = {k: m[k] for k in ("f1", "HasAns_f1", "NoAns_f1", "threshold")}
    trials = service.get(f"/api/v1/jobs/{job['id']}/trials").json()
    done = [t for t in trials if t["state"] == "completed"]
    assert len(done) == 1, [t["error"] for t in trials]
    for t in done:
        m = t["metrics"]
        assert m["task"] == "squad-v2.0" and m["metric"] == METRIC and m["f1"] == t["f1"] and m["exact"] == t["exact_match"]
        assert m["HasAns_total"] + m["NoAns_total"] == t["eval_questions"] == EVAL_QUESTIONS and m["NoAns_total"] > 0
        assert 0 <= m["HasAns_f1"] <= 100 and 0 <= m["NoAns_f1"] <= 100 and m["threshold_questions"] > 0
        figures[f"trial-{t['number']}"] = {"layers": len(t["config"]["layers"]), "ffn": t["config"]["ffn"][0], **{k: m[k] for k in ("f1", "HasAns_f1", "NoAns_f1", "threshold")}}
    front = service.get(f"/api/v1/jobs/{job['id']}/pareto").json()
    assert front["trials"] and all(p["metrics"]["task"] == "squad-v2.0" for p in front["trials"])
    print("\nsquad-v2.0 job figures:", json.dumps(figures, indent=1))


@SOAK
def test_stored_f1_equals_an_independent_recomputation(service, finished_job, v2_files, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import openvino as ov
    from transformers import AutoTokenizer

    from core.qa.features import iter_batches, prepare_eval_features
    from core.qa.squad import load_squad

    job_id = finished_job["id"]
    raw = json.loads(Path(v2_files[1]).read_text())
    mixed = 0  # trials that answer some eval questions and abstain on others
    for t in [t for t in service.get(f"/api/v1/jobs/{job_id}/trials").json() if t["state"] == "completed"]:
        r = service.get(f"/api/v1/jobs/{job_id}/trials/{t['number']}/model")
        assert r.status_code == 200
        d = unzip(r.content, tmp_path / f"model-{t['number']}")
        card = json.loads((d / "model_card.json").read_text())["metrics"]
        assert card["task"] == "squad-v2.0" and card["metric"] == METRIC and card["threshold"] == t["metrics"]["threshold"]
        assert card["f1"] == t["f1"] and card["HasAns_f1"] == t["metrics"]["HasAns_f1"]

        compiled = ov.Core().compile_model(ov.Core().read_model(d / "openvino_model.xml"), "CPU")
        names = {port.get_any_name() for port in compiled.inputs}
        examples = load_squad(v2_files[1], limit=EVAL_QUESTIONS)  # the windows only; nothing of the project scores
        feats = prepare_eval_features(examples, AutoTokenizer.from_pretrained(d), max_seq_length=SEQ, doc_stride=STRIDE)
        request = compiled.create_infer_request()
        starts, ends = [], []
        for batch in iter_batches(feats, 16):
            out = request.infer({k: v for k, v in batch.items() if k in names})
            starts.append(out[compiled.output(0)].copy())
            ends.append(out[compiled.output(1)].copy())
        answers = _answers_run_qa_style(examples, feats, np.concatenate(starts), np.concatenate(ends), card["threshold"])
        mixed += 0 < sum(a == "" for a in answers.values()) < len(answers)
        ours = _official_v2(raw, answers, EVAL_QUESTIONS)
        assert ours["f1"] == pytest.approx(t["f1"], abs=1e-6)
        assert ours["exact"] == pytest.approx(t["exact_match"], abs=1e-6)
        for key in ("HasAns_f1", "NoAns_f1", "HasAns_total", "NoAns_total"):
            assert ours[key] == pytest.approx(card[key], abs=1e-6), key
    assert mixed, "every trial abstained everywhere (or nowhere): the threshold decided nothing to check"


def test_a_v2_eval_file_with_a_v11_train_file_is_a_422_naming_it(service, squad_files, v2_files) -> None:  # type: ignore[no-untyped-def]
    spec = v2_spec(squad_files[0], v2_files[1])
    r = service.post("/api/v1/jobs", json=spec)
    assert r.status_code == 422
    detail = r.json()["detail"][0]
    assert detail["loc"] == ["body", "task", "eval_file"] and v2_files[1] in detail["msg"] and "SQuAD v1.1" in detail["msg"]
    spec["task"] = {**spec["task"], "train_file": v2_files[0], "version": "squad-v1.1"}
    r = service.post("/api/v1/jobs", json=spec)
    assert r.status_code == 422 and "task.version is squad-v1.1" in r.json()["detail"][0]["msg"]
