"""Which QA task a job is: ``task.version`` or read from the data; 422s for files that disagree; the task
reaching the workers (TrialRequest), the caches (teacher and trial keys), the threshold slice and the card."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from core.types import SubnetConfig, TrialRequest, TrialResult
from nas.config import Settings
from nas.spec import JobSpec
from nas.validation import SpecError, data_task, validate_job, with_local_data_files, with_task_version

CONTEXT = "Paris is the capital of France. The Seine flows through Paris."


def _doc(*, v2: bool, title: str = "Paris") -> dict[str, Any]:
    qas = [{"id": f"{title}-q1", "question": "What is the capital of France?", "answers": [{"text": "Paris", "answer_start": 0}]}]
    if v2:
        qas.append({"id": f"{title}-q2", "question": "Who built the Seine?", "answers": [], "is_impossible": True})
    return {"version": "v2.0" if v2 else "1.1", "data": [{"title": title, "paragraphs": [{"context": CONTEXT, "qas": qas}]}]}


def _spec(train: str, evalf: str, **task: Any) -> JobSpec:
    return JobSpec.model_validate({
        "base_model": "minilm",
        "task": {"train_file": train, "eval_file": evalf, "max_seq_length": 64, "doc_stride": 16, **task},
        "search_space": {"layers": [2], "heads": [12], "ffn": [1536]},
        "budget": {"trials": 1},
    })  # fmt: skip


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    out = {}
    for name, v2 in (("v1", False), ("v2", True)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(_doc(v2=v2)))
        out[name] = str(path)
    return out


def test_the_version_is_read_from_the_data_unless_the_spec_says_it(tmp_path: Path, files: dict[str, str]) -> None:
    settings = Settings(data_dir=tmp_path)
    assert data_task(None, files["v1"], files["v1"]) == "squad-v1.1"
    assert data_task(None, files["v2"], files["v2"]) == "squad-v2.0"
    assert data_task("squad-v2.0", files["v1"], files["v1"]) == "squad-v2.0"  # a v1.1 file is a valid v2.0 file
    assert data_task("squad-v2.0", files["v1"], files["v2"]) == "squad-v2.0"
    for train, evalf, version in (("v1", "v1", None), ("v2", "v2", None), ("v1", "v2", "squad-v2.0")):
        spec = _spec(files[train], files[evalf], **({"version": version} if version else {}))
        assert validate_job(spec, settings) is False
        filled = with_task_version(spec, settings)
        assert filled.task.version == (version or ("squad-v2.0" if train == "v2" else "squad-v1.1"))
        assert filled.task.train_file == spec.task.train_file  # only the version is filled in
        assert with_local_data_files(spec, settings).task.version == filled.task.version
    explicit = _spec(files["v1"], files["v1"], version="squad-v1.1")
    assert with_task_version(explicit, settings) is explicit


@pytest.mark.parametrize(
    ("train", "evalf", "version", "field", "problem"),
    [
        ("v2", "v2", "squad-v1.1", "task.train_file", "is a SQuAD v2.0 file .* but task.version is squad-v1.1"),
        ("v1", "v2", "squad-v1.1", "task.eval_file", "is a SQuAD v2.0 file .* but task.version is squad-v1.1"),
        ("v1", "v2", None, "task.eval_file", "is a SQuAD v2.0 file .* but task.train_file .* is SQuAD v1.1 .* task.version: squad-v2.0"),
        ("v2", "v1", None, "task.train_file", "is a SQuAD v2.0 file .* but task.eval_file .* is SQuAD v1.1"),
    ],
)
def test_a_v2_file_the_task_cannot_read_is_refused_naming_the_file(
    tmp_path: Path, files: dict[str, str], train: str, evalf: str, version: str | None, field: str, problem: str
) -> None:
    spec = _spec(files[train], files[evalf], **({"version": version} if version else {}))
    with pytest.raises(SpecError) as info:
        validate_job(spec, Settings(data_dir=tmp_path))
    named = files["v2"] if field == ("task.train_file" if train == "v2" else "task.eval_file") else None
    assert info.value.field == field
    assert info.value.message.startswith(f"{named or files['v2']} is a SQuAD v2.0 file")
    import re

    assert re.search(problem, info.value.message), info.value.message


def test_task_version_in_the_spec() -> None:
    assert _spec("a", "b").task.version is None
    assert _spec("a", "b", version="squad-v2.0").task.version == "squad-v2.0"
    with pytest.raises(ValueError, match="version"):
        _spec("a", "b", version="squad-v3")
    assert "held-out train questions" in JobSpec.model_json_schema()["$defs"]["TaskSpec"]["properties"]["version"]["description"]


def _request(tmp_path: Path, **kw: Any) -> TrialRequest:
    return TrialRequest(job_id="j", trial_number=0, subnet=SubnetConfig((0,), (2,), (32,)), teacher_dir=str(tmp_path / "teacher"),
                        train_file=str(tmp_path / "train.json"), eval_file=str(tmp_path / "eval.json"), max_seq_length=64,
                        doc_stride=16, max_eval_examples=None, calibration_samples=8, targets=("native",),
                        output_dir=str(tmp_path / "out"), **kw)  # fmt: skip


def test_the_task_reaches_the_trial_request_and_its_cache_key(tmp_path: Path, files: dict[str, str]) -> None:
    from nas.context import trial_request
    from nas.dedupe import trial_cache_key

    spec = _spec(files["v2"], files["v2"], version="squad-v2.0")
    req = trial_request(spec, job_id="j", number=0, subnet=SubnetConfig((0,), (2,), (32,)), out=tmp_path, teacher_dir="t")
    assert req.task == "squad-v2.0"
    v1 = trial_request(_spec(files["v1"], files["v1"]), job_id="j", number=0, subnet=req.subnet, out=tmp_path, teacher_dir="t")
    assert v1.task == "squad-v1.1"
    # a v1.1 trial keeps the key it had before the field existed; another task is another key
    key = trial_cache_key(v1, {})
    assert key == trial_cache_key(replace(v1, task="squad-v1.1"), {}) != trial_cache_key(replace(v1, task="squad-v2.0"), {})


def test_teacher_key_unchanged_for_v11_and_different_for_v20(tmp_path: Path, files: dict[str, str]) -> None:
    from nas.stages.teacher import teacher_key

    base = tmp_path / "base"
    base.mkdir()
    (base / "model.safetensors").write_bytes(b"w")
    v1 = _spec(files["v1"], files["v1"])
    assert teacher_key(base, v1) == teacher_key(base, _spec(files["v1"], files["v1"], version="squad-v1.1"))
    assert teacher_key(base, v1) != teacher_key(base, _spec(files["v1"], files["v1"], version="squad-v2.0"))


def _articles(n_articles: int, per_article: int) -> dict[str, Any]:
    data = []
    for a in range(n_articles):
        qas = [{"id": f"A{a}-{q}", "question": "What is the capital?", "answers": [{"text": "Paris", "answer_start": 0}]}
               for q in range(per_article)]  # fmt: skip
        data.append({"title": f"Article {a}", "paragraphs": [{"context": CONTEXT, "qas": qas}]})
    return {"version": "1.1", "data": data}


def test_threshold_slice_is_held_out_train_questions(tmp_path: Path) -> None:
    from workers.null_threshold import THRESHOLD_QUESTIONS, threshold_slice

    train = tmp_path / "train.json"
    train.write_text(json.dumps(_articles(10, 60)))
    req = _request(tmp_path, task="squad-v2.0", seed=3)
    # no teacher metrics: a seeded split of the train articles, at most THRESHOLD_QUESTIONS questions, in file order
    held, source = threshold_slice(req)
    assert "seeded" in source and len(held) == min(THRESHOLD_QUESTIONS, 2 * 60)
    assert len({e.title for e in held}) == 2 and [e.id for e in held] == sorted((e.id for e in held), key=lambda i: tuple(map(int, i[1:].split("-"))))
    assert held == threshold_slice(req)[0]  # seeded
    # the teacher's held-out articles, when it recorded them for this train file
    teacher = Path(req.teacher_dir)
    teacher.mkdir()
    (teacher / "metrics.json").write_text(json.dumps({"train_file": str(train), "heldout_titles": ["Article 7"]}))
    held, source = threshold_slice(req)
    assert "teacher was not trained on" in source and {e.title for e in held} == {"Article 7"} and len(held) == 60
    (teacher / "metrics.json").write_text(json.dumps({"train_file": str(tmp_path / "other.json"), "heldout_titles": ["Article 7"]}))
    assert "seeded" in threshold_slice(req)[1]  # another train file's titles are not this one's


def test_model_card_and_task_metrics(tmp_path: Path) -> None:
    from workers import pipeline

    v2_scores = {"exact": 50.0, "exact_match": 50.0, "f1": 55.0, "count": 120, "HasAns_f1": 40.0, "NoAns_f1": 85.0,
                 "threshold": -1.5, "task": "squad-v2.0", "metric": "SQuAD v2.0 F1 (...)"}  # fmt: skip
    metrics = pipeline.task_metrics(v2_scores)
    assert "count" not in metrics and "exact_match" not in metrics and metrics["threshold"] == -1.5
    assert pipeline.task_metrics({"f1": 50.0, "exact_match": 40.0, "count": 10}) == {}  # v1.1: nothing besides F1/EM
    req = _request(tmp_path, task="squad-v2.0")
    Path(req.teacher_dir).mkdir()
    (Path(req.teacher_dir) / "config.json").write_text(json.dumps(
        {"model_type": "bert", "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "intermediate_size": 128}
    ))  # fmt: skip
    base = TrialResult(0, req.subnet, 55.0, 50.0, 120, 1000, 4096, (), {}, str(tmp_path))
    config = {"hidden_size": 64, "hwnas_head_size": 16}
    v1_card = pipeline.model_card(replace(req, task="squad-v1.1"), base, config, "int8")["metrics"]
    assert set(v1_card) == {"f1", "exact_match", "eval_questions", "evaluated_on"}  # unchanged for v1.1
    card = pipeline.model_card(req, replace(base, metrics=metrics), config, "int8")["metrics"]
    assert card["task"] == "squad-v2.0" and card["threshold"] == -1.5 and card["f1"] == 55.0 and card["HasAns_f1"] == 40.0
