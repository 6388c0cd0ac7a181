"""SQuAD v2.0: reading v2 files, training labels of unanswerable questions, null odds, and the official
v2.0 metric against hand-worked cases (no-answer golds, HasAns/NoAns, the best threshold)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.qa import squad_v20 as v2
from core.qa.squad import QAExample, SquadFormatError, load_squad, squad_version
from core.qa.tasks import get_task

PARIS = "Paris is the capital of France. The Seine flows through Paris. The Eiffel Tower was finished in 1889."


def _ex(qid: str, *answers: str, context: str = PARIS) -> QAExample:
    return QAExample(qid, "T", context, f"question {qid}?", tuple(answers), tuple(context.index(a) for a in answers))


# five questions: three answerable, two not
A1, A2, A3 = _ex("a1", "Paris"), _ex("a2", "The Seine"), _ex("a3", "1889")
N1, N2 = _ex("n1"), _ex("n2")
FIVE = [A1, A2, A3, N1, N2]


# ---------- the per-question scores ----------


def test_no_answer_gold_is_matched_only_by_the_empty_prediction() -> None:
    assert v2.compute_exact("", "") == 1 and v2.compute_f1("", "") == 1.0  # both empty: 1
    assert v2.compute_exact("", "Paris") == 0 and v2.compute_f1("", "Paris") == 0.0  # no-answer gold vs a span
    assert v2.compute_exact("Paris", "") == 0 and v2.compute_f1("Paris", "") == 0.0  # answerable gold vs ""
    assert v2.compute_f1("", "the") == 1.0  # "the" normalises to nothing: it is the empty answer
    assert v2.compute_f1("The Seine", "Seine river") == pytest.approx(2 / 3)  # P 1/2, R 1
    assert v2.compute_exact("The Seine!", "seine") == 1
    assert v2.gold_answers(N1) == [""] and not v2.has_answer(N1)
    # a gold answer that normalises to nothing is dropped: such a question is unanswerable
    assert v2.gold_answers(_ex("x", "The")) == [""] and not v2.has_answer(_ex("x", "The"))


def test_official_eval_exact_f1_hasans_noans_by_hand() -> None:
    preds = {"a1": "Paris", "a2": "Seine river", "a3": "", "n1": "", "n2": "France"}
    # exact: a1 1, a2 0, a3 0, n1 1, n2 0; F1: a1 1, a2 2/3, a3 0, n1 1, n2 0
    out = v2.official_eval(FIVE, preds)
    assert out["exact"] == pytest.approx(100 * 2 / 5) and out["exact_match"] == out["exact"]
    assert out["f1"] == pytest.approx(100 * (1 + 2 / 3 + 1) / 5)
    assert out["HasAns_exact"] == pytest.approx(100 / 3) and out["HasAns_f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    assert out["NoAns_exact"] == pytest.approx(50.0) and out["NoAns_f1"] == pytest.approx(50.0)
    assert (out["HasAns_total"], out["NoAns_total"], out["count"]) == (3, 2, 5)
    assert "best_f1" not in out  # no null odds, no threshold search
    assert get_task("squad-v2.0").score(preds, FIVE) == out


def test_a_missing_prediction_scores_zero_even_for_an_unanswerable_question() -> None:
    out = v2.squad_v2_scores({"a1": "Paris"}, [A1, N1])
    assert out["f1"] == pytest.approx(50.0) and out["NoAns_f1"] == 0.0 and out["HasAns_f1"] == pytest.approx(100.0)
    with pytest.raises(ValueError):
        v2.squad_v2_scores({}, [])


def test_only_one_side_present() -> None:
    out = v2.squad_v2_scores({"n1": "", "n2": "x"}, [N1, N2])
    assert out["NoAns_f1"] == pytest.approx(50.0) and out["HasAns_total"] == 0 and "HasAns_f1" not in out
    out = v2.squad_v2_scores({"a1": "Paris"}, [A1])
    assert out["f1"] == pytest.approx(100.0) and out["NoAns_total"] == 0 and "NoAns_f1" not in out


# ---------- the threshold ----------

SPANS = {"a1": "Paris", "a2": "Seine river", "a3": "1889", "n1": "France", "n2": "Paris"}
ODDS = {"a1": -3.0, "a2": -1.0, "a3": 2.0, "n1": 1.0, "n2": 4.0}


def test_best_threshold_by_hand() -> None:
    """Raw F1 of the spans: a1 1, a2 2/3, a3 1, n1 0, n2 0. Abstaining everywhere scores 2 (n1, n2);
    answering by increasing odds: a1 (-3) 3, a2 (-1) 3 2/3, n1 (1) 2 2/3, a3 (2) 3 2/3 (a tie: not
    better), n2 (4) 2 2/3. Best F1 3 2/3 / 5 at threshold -1. Exact (a2's exact is 0): 2, 3 at a1 (-3), 3,
    2, 3, 2: best 3 / 5 at -3."""
    best, threshold = v2.best_null_threshold(SPANS, ODDS, FIVE)
    assert threshold == -1.0 and best == pytest.approx(100 * (3 + 2 / 3) / 5)
    out = v2.official_eval(FIVE, SPANS, ODDS)
    assert out["best_f1"] == pytest.approx(best) and out["best_f1_thresh"] == -1.0
    assert out["best_exact"] == pytest.approx(60.0) and out["best_exact_thresh"] == -3.0
    # at the official default (na_prob_thresh 1.0): n2 (4) and a3 (2) abstain, n1 (1) does not
    assert out["f1"] == pytest.approx(100 * (1 + 2 / 3 + 0 + 0 + 1) / 5)
    # applied, the threshold gives the best F1: a1, a2 answered; a3, n1, n2 answered ""
    at = v2.squad_v2_scores_at(SPANS, ODDS, FIVE, threshold)
    assert at["f1"] == pytest.approx(best) and at["exact"] == pytest.approx(60.0)
    assert at["HasAns_f1"] == pytest.approx(100 * (1 + 2 / 3) / 3) and at["NoAns_f1"] == pytest.approx(100.0)
    assert (at["HasAns_total"], at["NoAns_total"]) == (3, 2)
    assert at["threshold"] == -1.0 and at["task"] == "squad-v2.0" and "held-out train questions" in at["metric"]
    assert v2.apply_null_threshold(SPANS, ODDS, threshold) == {"a1": "Paris", "a2": "Seine river", "a3": "", "n1": "", "n2": ""}


def test_abstaining_everywhere_is_below_every_odds() -> None:
    """Every span wrong: answering never helps, so the best is to abstain on all; the threshold the
    official script would give (0.0) would answer the question at odds -2 and score less."""
    spans, odds = {"a1": "France", "n1": "Paris", "n2": "Seine"}, {"a1": -2.0, "n1": 0.5, "n2": 3.0}
    best, threshold = v2.best_null_threshold(spans, odds, [A1, N1, N2])
    assert best == pytest.approx(100 * 2 / 3) and threshold < -2.0
    assert v2.squad_v2_scores_at(spans, odds, [A1, N1, N2], threshold)["f1"] == pytest.approx(best)


def test_a_threshold_never_splits_equal_odds() -> None:
    """a1 (right) and n1 (answered with a span) share odds 0.5: no threshold answers one and not the other,
    so answering both (1 of 2) ties abstaining on both (1 of 2) and the best stays "abstain"."""
    spans, odds = {"a1": "Paris", "n1": "Paris"}, {"a1": 0.5, "n1": 0.5}
    best, threshold = v2.best_null_threshold(spans, odds, [A1, N1])
    assert best == pytest.approx(50.0) and threshold < 0.5
    assert v2.squad_v2_scores_at(spans, odds, [A1, N1], threshold)["f1"] == pytest.approx(best)


def test_no_span_means_no_answer_at_every_threshold() -> None:
    """A question without a valid span (infinite odds, or none given) is answered "" whatever the threshold."""
    out = v2.squad_v2_scores_at({"a1": ""}, {"a1": math.inf}, [A1, N1], 10.0)
    assert out["HasAns_f1"] == 0.0 and out["NoAns_f1"] == pytest.approx(100.0)
    best, threshold = v2.best_null_threshold({"a1": "Paris"}, {"a1": -1.0}, [A1, N1])
    assert best == pytest.approx(100.0) and threshold == -1.0


def _official_find_best_thresh(preds, scores, na_probs, qid_to_has_ans):  # type: ignore[no-untyped-def]
    """evaluate-v2.0.py's find_best_thresh, verbatim."""
    num_no_ans = sum(1 for k in qid_to_has_ans if not qid_to_has_ans[k])
    cur_score = num_no_ans
    best_score = cur_score
    best_thresh = 0.0
    qid_list = sorted(na_probs, key=lambda k: na_probs[k])
    for i, qid in enumerate(qid_list):
        if qid not in scores:
            continue
        if qid_to_has_ans[qid]:
            diff = scores[qid]
        else:
            if preds[qid]:
                diff = -1
            else:
                diff = 0
        cur_score += diff
        if cur_score > best_score:
            best_score = cur_score
            best_thresh = na_probs[qid]
    return 100.0 * best_score / len(scores), best_thresh


def test_same_best_as_the_official_script_on_random_sets() -> None:
    """Without ties in the odds and where answering something helps, both agree on score and threshold."""
    rng = random.Random(0)
    words = ["Paris", "Seine", "France", "1889", "Eiffel Tower", "capital"]
    for _ in range(200):
        examples = [_ex(f"a{i}", rng.choice(["Paris", "The Seine", "1889", "France"])) for i in range(rng.randint(1, 8))]
        examples += [_ex(f"n{i}") for i in range(rng.randint(0, 6))]
        spans = {e.id: rng.choice(words) for e in examples}
        odds = {e.id: rng.uniform(-5, 5) for e in examples}
        has = {e.id: v2.has_answer(e) for e in examples}
        _, f1_raw = v2.get_raw_scores(examples, spans)
        official = _official_find_best_thresh(spans, f1_raw, odds, has)
        ours = v2.best_null_threshold(spans, odds, examples)
        assert ours[0] == pytest.approx(official[0])
        if official[0] > 100.0 * sum(not h for h in has.values()) / len(has):  # answering something helps
            assert ours[1] == official[1]
        assert v2.squad_v2_scores_at(spans, odds, examples, ours[1])["f1"] == pytest.approx(ours[0])


# ---------- reading v2 files ----------


def _write(tmp_path: Path, qas: list[dict[str, Any]], **top: Any) -> Path:
    path = tmp_path / "v2.json"
    path.write_text(json.dumps({**top, "data": [{"title": "T", "paragraphs": [{"context": PARIS, "qas": qas}]}]}))
    return path


def _qa(qid: str, answers: list[str], **extra: Any) -> dict[str, Any]:
    return {"id": qid, "question": "q?", "answers": [{"text": a, "answer_start": PARIS.index(a)} for a in answers], **extra}


def test_reading_v2_files(tmp_path: Path) -> None:
    path = _write(tmp_path, [_qa("a", ["Paris"], is_impossible=False), _qa("n", [], is_impossible=True,
                  plausible_answers=[{"text": "France", "answer_start": 24}])], version="v2.0")  # fmt: skip
    a, n = load_squad(path)
    assert a.answers == ("Paris",) and not a.is_impossible
    assert n.answers == () and n.answer_starts == () and n.is_impossible
    assert squad_version(path) == "squad-v2.0"
    assert get_task("squad-v2.0").load(path) == [a, n]
    with pytest.raises(SquadFormatError, match="record n: an unanswerable question .* squad-v1.1"):
        get_task("squad-v1.1").load(path)
    # is_impossible alone makes a file v2, whatever its version says
    assert squad_version(_write(tmp_path, [_qa("n", [], is_impossible=True)], version="1.1")) == "squad-v2.0"
    # an empty answer list without is_impossible: unanswerable in a v2.0 file only
    assert load_squad(_write(tmp_path, [_qa("n", [])], version="v2.0"))[0].is_impossible
    with pytest.raises(SquadFormatError, match='record n: question has no answers .*"is_impossible": true'):
        load_squad(_write(tmp_path, [_qa("n", [])], version="1.1"))


def test_v2_records_are_validated(tmp_path: Path) -> None:
    with pytest.raises(SquadFormatError, match="record n: an unanswerable question .* must have no answers, got 1"):
        load_squad(_write(tmp_path, [_qa("n", ["Paris"], is_impossible=True)], version="v2.0"))
    with pytest.raises(SquadFormatError, match="record n: question has no answers but \"is_impossible\" is false"):
        load_squad(_write(tmp_path, [_qa("n", [], is_impossible=False)], version="v2.0"))
    with pytest.raises(SquadFormatError, match="'is_impossible' must be a boolean, got a string"):
        load_squad(_write(tmp_path, [_qa("n", [], is_impossible="yes")], version="v2.0"))


def test_v11_files_read_as_before(real_squad_dir: Path) -> None:
    for name in ("squad-v1.1-train-head.json", "xquad-en.json"):
        path = real_squad_dir / name
        assert squad_version(path) == "squad-v1.1"
        examples = load_squad(path)
        assert not any(e.is_impossible for e in examples)
        assert get_task("squad-v1.1").load(path) == examples


# ---------- windows: labels and null odds ----------


def test_training_labels_of_unanswerable_questions_and_windows_without_the_answer(tokenizer: Any) -> None:
    """Every window of an unanswerable question is labelled (CLS, CLS) = (0, 0); so is every window of an
    answerable one that does not contain its whole answer (as run_qa does), while the windows that do
    contain it are labelled with its tokens."""
    from core.qa.features import prepare_train_features

    long = " ".join(f"Sentence {i} is filler about nothing in particular." for i in range(30)) + " The answer is Zanzibar."
    answerable = QAExample("a", "T", long, "What is the answer?", ("Zanzibar",), (long.index("Zanzibar"),))
    unanswerable = QAExample("n", "T", long, "Who wrote it?", (), ())
    feats = prepare_train_features([answerable, unanswerable], tokenizer, max_seq_length=64, doc_stride=16)
    windows = len(feats) // 2
    assert windows > 2 and len(feats) == 2 * windows  # same context: as many windows for each question
    starts, ends = feats.start_positions, feats.end_positions
    assert (starts[windows:] == 0).all() and (ends[windows:] == 0).all()
    inside = [w for w in range(windows) if starts[w] != 0]
    assert inside and len(inside) < windows  # windows without the answer are (0, 0)
    assert all(ends[w] == 0 for w in range(windows) if w not in inside)
    for w in inside:
        text = tokenizer.decode(feats.input_ids[w][starts[w] : ends[w] + 1])
        assert text.strip().lower() == "zanzibar"


def test_null_odds_are_min_cls_score_minus_the_best_span(tokenizer: Any) -> None:
    from core.qa.features import postprocess_predictions, postprocess_with_null_odds, prepare_eval_features

    long = " ".join(f"Sentence {i} is filler about nothing in particular." for i in range(30))
    example = QAExample("n", "T", long, "Who wrote it?", (), ())
    feats = prepare_eval_features([example], tokenizer, max_seq_length=64, doc_stride=16)
    assert len(feats) >= 3
    start = np.full(feats.input_ids.shape, -5.0, dtype=np.float32)
    end = start.copy()
    cls = np.arange(len(feats), dtype=np.float32)  # window w: CLS start w, end 2w -> null score 3w; min 0
    start[:, 0], end[:, 0] = cls, 2 * cls
    token = next(t for t, span in enumerate(feats.offset_mapping[1]) if span is not None)
    start[1, token], end[1, token] = 4.0, 3.5  # the best span: one token of window 1, score 7.5
    spans, odds = postprocess_with_null_odds([example], feats, start, end)
    s, e = feats.offset_mapping[1][token]
    assert spans == {"n": long[s:e]} == postprocess_predictions([example], feats, start, end)
    assert odds["n"] == pytest.approx(0.0 - 7.5)


def test_per_question_f1_of_a_v2_task_averages_to_its_best_f1(tokenizer: Any) -> None:
    """NNCF's accuracy control scores each question: for squad-v2.0 at the best threshold on those questions,
    so their mean is ``evaluate_qa``'s F1 without a threshold given (the official best_f1 there)."""
    from core.qa.features import prepare_eval_features
    from workers.evaluate import evaluate_qa, per_question_f1

    examples = [A1, A2, A3, N1, N2, _ex("a4", "France"), _ex("n3")]
    feats = prepare_eval_features(examples, tokenizer, max_seq_length=64, doc_stride=16)
    logits = np.random.default_rng(1).normal(size=(2, *feats.input_ids.shape)).astype(np.float32)

    def run(batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        rows = [next(order) for _ in range(len(batch["input_ids"]))]
        return logits[0, rows], logits[1, rows]

    order = iter(range(len(feats)))
    scores = per_question_f1(run, examples, feats, batch_size=3, task="squad-v2.0")
    order = iter(range(len(feats)))
    best = evaluate_qa(run, examples, feats, batch_size=3, task="squad-v2.0")
    assert len(scores) == len(examples) and float(np.mean(scores)) == pytest.approx(best["f1"])
    assert all(0.0 <= s <= 100.0 for s in scores)
