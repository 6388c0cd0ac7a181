"""The SQuAD v1.1 metric against cases worked by hand from the official definition."""

from __future__ import annotations

import pytest

from core.qa.metric import (
    exact_match_score,
    f1_score,
    metric_max_over_ground_truths,
    normalize_answer,
    squad_scores,
)
from core.qa.squad import QAExample


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("The Eiffel Tower", "eiffel tower"),  # case and a leading article
        ("an apple a day", "apple day"),  # every article, anywhere
        ("theatre and another", "theatre and another"),  # articles only as whole words
        ("U.S.A.!", "usa"),  # punctuation removed, not replaced by space
        ("  New\tYork \n City ", "new york city"),  # white space collapsed
        ("rock-n-roll", "rocknroll"),
        ("", ""),
    ],
)
def test_normalize_answer(raw: str, normalized: str) -> None:
    assert normalize_answer(raw) == normalized


def test_exact_match_after_normalization() -> None:
    assert exact_match_score("the Eiffel  tower.", "Eiffel Tower")
    assert not exact_match_score("Eiffel", "Eiffel Tower")
    assert not exact_match_score("", "Eiffel Tower")


def test_f1_partial_overlap() -> None:
    # prediction -> [big, red, barn]; gold -> [red, barn, on, hill]; 2 common tokens.
    # precision 2/3, recall 2/4, F1 = 2 * (2/3) * (1/2) / (2/3 + 1/2) = 4/7.
    assert f1_score("the big red barn", "red barn on the hill") == pytest.approx(4 / 7)


def test_f1_counts_repeated_tokens_once_per_gold_occurrence() -> None:
    # [paris, paris] vs [paris]: 1 common, precision 1/2, recall 1, F1 = 2/3.
    assert f1_score("Paris Paris", "Paris") == pytest.approx(2 / 3)


def test_f1_no_overlap_and_empty_prediction() -> None:
    assert f1_score("London", "Paris") == 0.0
    assert f1_score("", "Paris") == 0.0
    # Official quirk: both normalise to "", exact match holds but F1 has no common token.
    assert exact_match_score("the.", "a")
    assert f1_score("the.", "a") == 0.0


def test_max_over_multiple_gold_answers() -> None:
    golds = ["barn", "the red barn", "hill"]
    assert metric_max_over_ground_truths(f1_score, "red barn", golds) == pytest.approx(1.0)
    assert metric_max_over_ground_truths(exact_match_score, "Red barn!", golds) is True
    # "big red barn" vs "red barn": p=2/3, r=1, F1=0.8; vs "barn": p=1/3, r=1, F1=0.5; vs "hill": 0.
    assert metric_max_over_ground_truths(f1_score, "big red barn", golds) == pytest.approx(0.8)


def _example(qid: str, *answers: str) -> QAExample:
    return QAExample(qid, "t", "context", "question?", answers, tuple(0 for _ in answers))


def test_squad_scores_percent_and_missing_predictions_count_zero() -> None:
    examples = [
        _example("a", "Eiffel Tower"),
        _example("b", "red barn on the hill", "a hill"),
        _example("c", "Paris"),  # no prediction
    ]
    scores = squad_scores({"a": "the eiffel tower", "b": "the big red barn"}, examples)
    assert scores["count"] == 3
    assert scores["exact_match"] == pytest.approx(100 / 3)
    # b: max(4/7 vs first gold, 0 vs "hill") = 4/7
    assert scores["f1"] == pytest.approx(100 * (1 + 4 / 7 + 0) / 3)


def test_squad_scores_rejects_no_examples() -> None:
    with pytest.raises(ValueError):
        squad_scores({}, [])
