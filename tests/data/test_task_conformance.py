"""Conformance suite of the QA-task registry (``core.qa.tasks.TASKS``): every registered task passes it.

A new task adds its registry line and, here, a sample file in its own format (``SAMPLES``) with the
predictions that score 100 on it; every check below then runs on it too. A task with unanswerable
questions (``null_answers``) predicts "" for them, and is also checked through its null-odds path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.qa.tasks import TASKS, QATask, get_task

ROOT = Path(__file__).resolve().parents[2]
WRONG = "qqqq zzzz"  # a prediction that shares no token with any answer of the samples


def _squad_v11_sample() -> tuple[dict[str, Any], dict[str, str]]:
    """Two articles, five questions (one with two gold answers): the file and its perfect predictions."""
    paragraphs = [
        ("Rivers", "The Nile flows north through eleven countries into the Mediterranean Sea.",
         [("r1", "Where does the Nile flow into?", ["the Mediterranean Sea", "Mediterranean Sea"]),
          ("r2", "How many countries does the Nile cross?", ["eleven"])]),
        ("Rivers", "The Amazon carries more water than any other river on Earth.",
         [("r3", "Which river carries the most water?", ["The Amazon"])]),
        ("Towers", "The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
         [("t1", "When was the Eiffel Tower completed?", ["1889"]),
          ("t2", "In which city is the Eiffel Tower?", ["Paris"])]),
    ]
    data: dict[str, dict[str, Any]] = {}
    for title, context, qas in paragraphs:
        article = data.setdefault(title, {"title": title, "paragraphs": []})
        article["paragraphs"].append({
            "context": context,
            "qas": [{"id": qid, "question": q, "answers": [{"text": a, "answer_start": context.index(a)} for a in answers]}
                    for qid, q, answers in qas],
        })  # fmt: skip
    perfect = {qid: answers[-1] for _, _, qas in paragraphs for qid, _, answers in qas}
    return {"version": "1.1", "data": list(data.values())}, perfect


def _squad_v20_sample() -> tuple[dict[str, Any], dict[str, str]]:
    """The v1.1 sample's articles with two unanswerable questions among them (r2b, t3): five questions,
    so that the shared checks (half right, one missing) hold as for v1.1."""
    data, _ = _squad_v11_sample()
    rivers, towers = data["data"]
    first = rivers["paragraphs"][0]["qas"]
    first[1:] = [{"id": "r2b", "question": "How long is the Nile in miles?", "answers": [], "is_impossible": True}]
    towers["paragraphs"][0]["qas"].append(
        {"id": "t3", "question": "Who painted the Eiffel Tower red?", "answers": [], "is_impossible": True}
    )
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                qa.setdefault("is_impossible", False)
    perfect = {qa["id"]: (qa["answers"][-1]["text"] if qa["answers"] else "")
               for article in data["data"] for paragraph in article["paragraphs"] for qa in paragraph["qas"]}  # fmt: skip
    return {"version": "v2.0", "data": data["data"]}, perfect


# task name -> (a small file of that task's format, the predictions that score 100 on it)
SAMPLES: dict[str, Callable[[], tuple[dict[str, Any], dict[str, str]]]] = {
    "squad-v1.1": _squad_v11_sample,
    "squad-v2.0": _squad_v20_sample,
}

NAMES = sorted(TASKS)


@pytest.fixture(params=NAMES)
def name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture()
def task(name: str) -> QATask:
    return get_task(name)


@pytest.fixture()
def sample(name: str, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    data, perfect = SAMPLES[name]()
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    return path, perfect


def test_every_registered_task_has_a_sample() -> None:
    assert set(TASKS) <= set(SAMPLES), f"add a sample file for {sorted(set(TASKS) - set(SAMPLES))} to SAMPLES"


def test_the_registry_is_lazy_and_the_tasks_stay_on_the_ground_floor() -> None:
    """Looking the registry up imports no task; loading every task imports nothing of the project outside core."""
    code = (
        "import sys; import core.qa.tasks as t\n"
        "assert not any(m in sys.modules for m in t.TASKS.values()), 'a task was imported by the registry'\n"
        "for n in t.TASKS: t.get_task(n)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('workers', 'nas', 'api', 'cli', 'search_spaces', 'targets', 'bench', 'torch', 'openvino', 'nncf'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_lookup(name: str, task: QATask) -> None:
    assert isinstance(task, QATask) and task.name == name
    assert get_task(name) is task
    assert isinstance(task.headline_metric, str) and task.headline_metric
    with pytest.raises(ValueError, match="unknown QA task 'no-such-task'.*" + name):
        get_task("no-such-task")


def test_load_reads_every_question_and_honours_limit(task: QATask, sample: tuple[Path, dict[str, str]]) -> None:
    path, perfect = sample
    examples = task.load(path)
    assert [e.id for e in examples] == list(perfect)  # every question, in file order
    assert len({e.id for e in examples}) == len(examples)
    assert [e.id for e in task.load(str(path), limit=2)] == list(perfect)[:2]


def test_load_rejects_a_malformed_file(task: QATask, sample: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    raw = json.loads(sample[0].read_text())
    del raw["data"][0]["paragraphs"][0]["context"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="context"):
        task.load(bad)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        task.load(tmp_path / "broken.json")


def test_score_perfect_wrong_and_half(task: QATask, sample: tuple[Path, dict[str, str]]) -> None:
    path, perfect = sample
    examples = task.load(path)
    head = task.headline_metric
    best = task.score(perfect, examples)
    assert best[head] == pytest.approx(100.0) and best["count"] == len(examples)
    worst = task.score({e.id: WRONG for e in examples}, examples)
    assert worst[head] == pytest.approx(0.0) and worst["count"] == len(examples)
    chosen = examples[:2] + examples[3:5]  # four questions, two answered right
    half = {e.id: (perfect[e.id] if i % 2 else WRONG) for i, e in enumerate(chosen)}
    assert task.score(half, chosen)[head] == pytest.approx(50.0)
    missing = task.score({e.id: perfect[e.id] for e in chosen[:1]}, chosen)  # no prediction scores as wrong
    assert missing[head] == pytest.approx(25.0)
    assert all(0.0 <= v <= 100.0 for k, v in best.items() if k != "count" and not k.endswith("_total"))


def test_score_of_nothing_is_an_error(task: QATask) -> None:
    with pytest.raises(ValueError):
        task.score({}, [])


def test_evaluate_qa_scores_through_the_task(name: str, task: QATask, sample: tuple[Path, dict[str, str]], tokenizer: Any) -> None:
    """``workers.evaluate.evaluate_qa(..., task=name)`` returns the task's scores of the post-processed predictions."""
    from core.qa.features import iter_batches, postprocess_predictions, prepare_eval_features
    from workers.evaluate import evaluate_qa

    examples = task.load(sample[0])
    feats = prepare_eval_features(examples, tokenizer, max_seq_length=64, doc_stride=16)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, *feats.input_ids.shape)).astype(np.float32)
    offset = 0

    def run(batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        nonlocal offset
        n = len(batch["input_ids"])
        offset += n
        return logits[0, offset - n : offset], logits[1, offset - n : offset]

    scores = evaluate_qa(run, examples, feats, batch_size=3, task=name)
    if not task.null_answers:
        assert scores == task.score(postprocess_predictions(examples, feats, logits[0], logits[1]), examples)
    else:  # the best non-null spans and null odds, at the threshold given (else the best one on these questions)
        from core.qa.features import postprocess_with_null_odds

        spans, odds = postprocess_with_null_odds(examples, feats, logits[0], logits[1])
        assert spans == postprocess_predictions(examples, feats, logits[0], logits[1])
        best, threshold = task.best_null_threshold(spans, odds, examples)
        assert scores == task.score_at_threshold(spans, odds, examples, threshold) and scores[task.headline_metric] == best
        middle = sorted(odds.values())[len(odds) // 2]
        offset = 0
        at = evaluate_qa(run, examples, feats, batch_size=3, task=name, null_threshold=middle)
        answers = {qid: "" if odds[qid] > middle else span for qid, span in spans.items()}
        assert at == task.score_at_threshold(spans, odds, examples, middle)
        assert at[task.headline_metric] == task.score(answers, examples)[task.headline_metric] and at["threshold"] == middle

    def never(batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        raise AssertionError("the model ran for an unknown task")

    with pytest.raises(ValueError, match="unknown QA task"):
        evaluate_qa(never, examples, feats, task="no-such-task")


def test_null_answer_tasks_score_100_with_gold_spans_and_cls_for_the_unanswerable(
    name: str, task: QATask, sample: tuple[Path, dict[str, str]], tokenizer: Any
) -> None:
    """Logits at the gold span of each answerable question and at CLS for the unanswerable ones score 100
    at threshold 0 (odds = CLS score - best span score: -40 answerable, +40 unanswerable), and 0 is a best."""
    if not task.null_answers:
        pytest.skip(f"{name} has no unanswerable questions")
    from core.qa.features import postprocess_with_null_odds, prepare_eval_features
    from workers.evaluate import choose_null_threshold, evaluate_qa

    examples = task.load(sample[0])
    assert any(e.is_impossible for e in examples) and not all(e.is_impossible for e in examples)
    feats = prepare_eval_features(examples, tokenizer, max_seq_length=64, doc_stride=16)
    start = np.full(feats.input_ids.shape, -10.0, dtype=np.float32)
    end = start.copy()
    for row, (index, offsets) in enumerate(zip(feats.example_index, feats.offset_mapping)):
        ex = examples[int(index)]
        if ex.is_impossible:
            start[row, 0] = end[row, 0] = 10.0
            continue
        first, last = ex.answer_starts[0], ex.answer_starts[0] + len(ex.answers[0])
        tokens = [t for t, span in enumerate(offsets) if span is not None and span[0] >= first and span[1] <= last]
        if tokens:
            start[row, tokens[0]], end[row, tokens[-1]] = 10.0, 10.0
    spans, odds = postprocess_with_null_odds(examples, feats, start, end)
    assert all((odds[e.id] > 0) == e.is_impossible for e in examples), odds
    rows = iter(range(len(feats)))

    def run(batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        idx = [next(rows) for _ in range(len(batch["input_ids"]))]
        return start[idx], end[idx]

    scores = evaluate_qa(run, examples, feats, task=name, null_threshold=0.0)
    assert scores[task.headline_metric] == pytest.approx(100.0) and scores["exact_match"] == pytest.approx(100.0)
    assert scores["threshold"] == 0.0 and scores["count"] == len(examples)
    rows = iter(range(len(feats)))
    chosen = choose_null_threshold(run, examples, feats, task=name)
    assert chosen["f1"] == pytest.approx(100.0) and -40.0 <= chosen["threshold"] < 40.0


def test_evaluate_qa_default_task_is_squad_v11_and_gold_spans_score_100(tokenizer: Any, tmp_path: Path) -> None:
    """Logits that point at the gold answer's tokens score 100 through the default task."""
    from core.qa.features import prepare_eval_features
    from workers.evaluate import evaluate_qa

    data, _ = _squad_v11_sample()
    path = tmp_path / "sample.json"
    path.write_text(json.dumps(data))
    examples = get_task("squad-v1.1").load(path)
    feats = prepare_eval_features(examples, tokenizer, max_seq_length=64, doc_stride=16)
    start = np.full(feats.input_ids.shape, -10.0, dtype=np.float32)
    end = start.copy()
    for row, (index, offsets) in enumerate(zip(feats.example_index, feats.offset_mapping)):
        ex = examples[int(index)]
        first, last = ex.answer_starts[0], ex.answer_starts[0] + len(ex.answers[0])
        tokens = [t for t, span in enumerate(offsets) if span is not None and span[0] >= first and span[1] <= last]
        if tokens:
            start[row, tokens[0]], end[row, tokens[-1]] = 10.0, 10.0
    rows = iter(range(len(feats)))

    def run(batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        idx = [next(rows) for _ in range(len(batch["input_ids"]))]
        return start[idx], end[idx]

    scores = evaluate_qa(run, examples, feats)
    assert scores["f1"] == pytest.approx(100.0) and scores["exact_match"] == pytest.approx(100.0)
    assert scores["count"] == len(examples)
