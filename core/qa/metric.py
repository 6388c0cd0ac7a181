"""The official SQuAD v1.1 evaluation (exact match and token F1).

Kept line-for-line equivalent to ``evaluate-v1.1.py`` so that the scores the search
reports can be compared with published SQuAD numbers.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from core.qa.squad import QAExample

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")

Score = TypeVar("Score", bool, float)


def normalize_answer(s: str) -> str:
    """Lower case, drop punctuation and the articles a/an/the, collapse white space."""
    return " ".join(_ARTICLES.sub(" ", s.lower().translate(_PUNCTUATION)).split())


def exact_match_score(prediction: str, ground_truth: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def f1_score(prediction: str, ground_truth: str) -> float:
    """Harmonic mean of token precision and recall after normalisation; 0 with no common token."""
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    num_same = sum((Counter(prediction_tokens) & Counter(ground_truth_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(ground_truth_tokens)
    return 2 * precision * recall / (precision + recall)


def metric_max_over_ground_truths(
    metric_fn: Callable[[str, str], Score], prediction: str, ground_truths: Sequence[str]
) -> Score:
    """A prediction scores as well as its best match among the gold answers."""
    return max(metric_fn(prediction, ground_truth) for ground_truth in ground_truths)


def squad_scores(predictions: Mapping[str, str], examples: Sequence[QAExample]) -> dict[str, float]:
    """F1 and exact match in percent over all examples; a missing prediction scores 0."""
    if not examples:
        raise ValueError("no examples to score")
    f1 = exact_match = 0.0
    for example in examples:
        prediction = predictions.get(example.id)
        if prediction is None:
            continue
        exact_match += metric_max_over_ground_truths(exact_match_score, prediction, example.answers)
        f1 += metric_max_over_ground_truths(f1_score, prediction, example.answers)
    n = len(examples)
    return {"f1": 100.0 * f1 / n, "exact_match": 100.0 * exact_match / n, "count": n}
