"""SQuAD v2.0 as a ``QATask``: questions may have no answer; scored by the official ``evaluate-v2.0.py``.

The functions below keep the official script's semantics, function for function (``normalize_answer``,
``compute_exact``, ``compute_f1``, ``get_raw_scores``, ``apply_no_ans_threshold``, ``make_eval_dict``,
``find_best_thresh``), on ``QAExample``s instead of the raw JSON:

- a question without a (non-empty after normalisation) gold answer is unanswerable; its gold is ``""``,
  matched only by the empty prediction (exact and F1 are 1 if both are empty, else 0);
- ``HasAns_*`` / ``NoAns_*`` are the same scores over the answerable / unanswerable questions;
- with the null odds of each question (``score_diff = null_score - best_non_null_score``, the model's
  preference for "no answer"), a question is answered "" where its odds exceed the threshold, and
  ``find_best_thresh`` walks the questions by increasing odds for the threshold that maximises a score
  (the official ``best_exact`` / ``best_f1``).

Two deliberate differences, both for a service that must never crash on a partial prediction set and
must apply the threshold it reports: a question with no prediction scores 0 (the official script leaves
it out of the totals, or raises a KeyError for HasAns/NoAns), and ``find_best_thresh``'s threshold,
applied with ``odds > threshold``, reproduces the best score it reports: where abstaining everywhere is
best it is below every odds (the official script says 0.0), and it never falls inside a run of equal odds.

Ground floor: imports nothing of the project outside ``core``.
"""

from __future__ import annotations

import collections
import math
import os
import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

from core.qa.squad import QAExample, load_squad
from core.qa.tasks import QATask

METRIC = "SQuAD v2.0 F1 (official semantics; null threshold chosen on held-out train questions)"


def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (the official function)."""

    def remove_articles(text: str) -> str:
        regex = re.compile(r"\b(a|an|the)\b", re.UNICODE)
        return re.sub(regex, " ", text)

    def white_space_fix(text: str) -> str:
        return " ".join(text.split())

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def get_tokens(s: str) -> list[str]:
    if not s:
        return []
    return normalize_answer(s).split()


def compute_exact(a_gold: str, a_pred: str) -> int:
    return int(normalize_answer(a_gold) == normalize_answer(a_pred))


def compute_f1(a_gold: str, a_pred: str) -> float:
    gold_toks = get_tokens(a_gold)
    pred_toks = get_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        # If either is no-answer, then F1 is 1 if they agree, 0 otherwise
        return float(gold_toks == pred_toks)
    if num_same == 0:
        return 0.0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def gold_answers(example: QAExample) -> list[str]:
    """The official script's gold list: answers that normalise to nothing are dropped; none left is ``[""]``."""
    golds = [a for a in example.answers if normalize_answer(a)]
    return golds or [""]


def has_answer(example: QAExample) -> bool:
    """The official ``qid_to_has_ans``: some gold answer that is not empty after normalisation."""
    return any(normalize_answer(a) for a in example.answers)


def get_raw_scores(examples: Sequence[QAExample], preds: Mapping[str, str]) -> tuple[dict[str, float], dict[str, float]]:
    """Exact (0/1) and F1 of each question's prediction against its best-matching gold; a question
    without a prediction scores 0 (the official script skips it)."""
    exact_scores: dict[str, float] = {}
    f1_scores: dict[str, float] = {}
    for example in examples:
        a_pred = preds.get(example.id)
        if a_pred is None:
            exact_scores[example.id] = f1_scores[example.id] = 0.0
            continue
        golds = gold_answers(example)
        exact_scores[example.id] = float(max(compute_exact(a, a_pred) for a in golds))
        f1_scores[example.id] = max(compute_f1(a, a_pred) for a in golds)
    return exact_scores, f1_scores


def apply_no_ans_threshold(
    scores: Mapping[str, float], na_probs: Mapping[str, float], qid_to_has_ans: Mapping[str, bool], na_prob_thresh: float
) -> dict[str, float]:
    """Scores where questions whose null odds exceed the threshold are answered "" (1 if unanswerable)."""
    new_scores = {}
    for qid, s in scores.items():
        pred_na = na_probs[qid] > na_prob_thresh
        new_scores[qid] = float(not qid_to_has_ans[qid]) if pred_na else s
    return new_scores


def make_eval_dict(
    exact_scores: Mapping[str, float], f1_scores: Mapping[str, float], qid_list: Sequence[str] | None = None
) -> dict[str, float]:
    if qid_list is None:
        total = len(exact_scores)
        return {
            "exact": 100.0 * sum(exact_scores.values()) / total,
            "f1": 100.0 * sum(f1_scores.values()) / total,
            "total": total,
        }
    total = len(qid_list)
    return {
        "exact": 100.0 * sum(exact_scores[k] for k in qid_list) / total,
        "f1": 100.0 * sum(f1_scores[k] for k in qid_list) / total,
        "total": total,
    }


def merge_eval(main_eval: dict[str, float], new_eval: Mapping[str, float], prefix: str) -> None:
    for k in new_eval:
        main_eval[f"{prefix}_{k}"] = new_eval[k]


def find_best_thresh(
    preds: Mapping[str, str], scores: Mapping[str, float], na_probs: Mapping[str, float], qid_to_has_ans: Mapping[str, bool]
) -> tuple[float, float]:
    """(best score in percent, its threshold): the official walk over the questions by increasing null
    odds, where answering one more question changes the score by its own score (answerable) or by -1
    (unanswerable answered with a span). Applied as ``odds > threshold``, the threshold gives the score:
    a new best is only taken at the end of a run of equal odds, and abstaining everywhere is below every odds."""
    num_no_ans = sum(1 for k in qid_to_has_ans if not qid_to_has_ans[k])
    cur_score = num_no_ans
    best_score = cur_score
    qid_list = sorted(na_probs, key=lambda k: na_probs[k])
    finite = [na_probs[k] for k in qid_list if math.isfinite(na_probs[k])]
    best_thresh = (finite[0] - 1.0) if finite else 0.0  # abstain everywhere
    for i, qid in enumerate(qid_list):
        if qid not in scores:
            continue
        if qid_to_has_ans[qid]:
            diff = scores[qid]
        else:
            diff = -1 if preds[qid] else 0
        cur_score += diff
        if i + 1 < len(qid_list) and na_probs[qid_list[i + 1]] == na_probs[qid]:
            continue  # inside a run of equal odds: no threshold separates these questions
        if cur_score > best_score and math.isfinite(na_probs[qid]):
            best_score = cur_score
            best_thresh = na_probs[qid]
    return 100.0 * best_score / len(scores), best_thresh


def find_all_best_thresh(
    main_eval: dict[str, float],
    preds: Mapping[str, str],
    exact_raw: Mapping[str, float],
    f1_raw: Mapping[str, float],
    na_probs: Mapping[str, float],
    qid_to_has_ans: Mapping[str, bool],
) -> None:
    best_exact, exact_thresh = find_best_thresh(preds, exact_raw, na_probs, qid_to_has_ans)
    best_f1, f1_thresh = find_best_thresh(preds, f1_raw, na_probs, qid_to_has_ans)
    main_eval["best_exact"] = best_exact
    main_eval["best_exact_thresh"] = exact_thresh
    main_eval["best_f1"] = best_f1
    main_eval["best_f1_thresh"] = f1_thresh


def official_eval(
    examples: Sequence[QAExample],
    preds: Mapping[str, str],
    na_probs: Mapping[str, float] | None = None,
    na_prob_thresh: float = 1.0,
) -> dict[str, float]:
    """The official ``main`` minus the file handling: ``exact``/``f1`` (at ``na_prob_thresh``),
    ``HasAns_*``/``NoAns_*`` and, with ``na_probs``, ``best_exact``/``best_f1`` and their thresholds;
    plus ``exact_match`` (= exact) and ``count`` (= the official ``total``)."""
    return _evaluate(examples, preds, na_probs, na_prob_thresh, best=na_probs is not None)


def _evaluate(
    examples: Sequence[QAExample], preds: Mapping[str, str], na_probs: Mapping[str, float] | None, thresh: float,
    *, best: bool = False,
) -> dict[str, float]:  # fmt: skip
    if not examples:
        raise ValueError("no examples to score")
    qid_to_has_ans = {e.id: has_answer(e) for e in examples}
    has_ans_qids = [k for k, v in qid_to_has_ans.items() if v]
    no_ans_qids = [k for k, v in qid_to_has_ans.items() if not v]
    exact_raw, f1_raw = get_raw_scores(examples, preds)
    probs = na_probs if na_probs is not None else {k: 0.0 for k in qid_to_has_ans}
    exact_thresh = apply_no_ans_threshold(exact_raw, probs, qid_to_has_ans, thresh)
    f1_thresh = apply_no_ans_threshold(f1_raw, probs, qid_to_has_ans, thresh)
    out_eval = make_eval_dict(exact_thresh, f1_thresh)
    if has_ans_qids:
        merge_eval(out_eval, make_eval_dict(exact_thresh, f1_thresh, qid_list=has_ans_qids), "HasAns")
    if no_ans_qids:
        merge_eval(out_eval, make_eval_dict(exact_thresh, f1_thresh, qid_list=no_ans_qids), "NoAns")
    if best:
        find_all_best_thresh(out_eval, preds, exact_raw, f1_raw, probs, qid_to_has_ans)
    # a side with no question has no scores, but its total (0) is always there
    out_eval.setdefault("HasAns_total", 0)
    out_eval.setdefault("NoAns_total", 0)
    out_eval["exact_match"] = out_eval["exact"]
    out_eval["count"] = out_eval.pop("total")
    return out_eval


def squad_v2_scores(predictions: Mapping[str, str], examples: Sequence[QAExample]) -> dict[str, float]:
    """Scores of final predictions ("" = no answer): ``exact``, ``f1``, ``HasAns_*``, ``NoAns_*``, in percent."""
    return _evaluate(examples, predictions, None, 1.0)


def apply_null_threshold(spans: Mapping[str, str], null_odds: Mapping[str, float], threshold: float) -> dict[str, str]:
    """The final answers: "" where the null odds exceed ``threshold``, else the best non-null span."""
    return {qid: "" if null_odds[qid] > threshold else span for qid, span in spans.items()}


def best_null_threshold(
    spans: Mapping[str, str], null_odds: Mapping[str, float], examples: Sequence[QAExample]
) -> tuple[float, float]:
    """(best F1 in percent, the threshold) over ``examples`` (``find_best_thresh`` on F1): choose it on
    held-out questions, then apply it (``apply_null_threshold``) to the evaluation file."""
    if not examples:
        raise ValueError("no examples to choose a null threshold on")
    qid_to_has_ans = {e.id: has_answer(e) for e in examples}
    full = {e.id: spans.get(e.id, "") for e in examples}  # no span: answered "" at every threshold
    _, f1_raw = get_raw_scores(examples, full)
    odds = {e.id: null_odds.get(e.id, math.inf) for e in examples}
    return find_best_thresh(full, f1_raw, odds, qid_to_has_ans)


def squad_v2_scores_at(
    spans: Mapping[str, str], null_odds: Mapping[str, float], examples: Sequence[QAExample], threshold: float
) -> dict[str, Any]:
    """Scores at ``threshold`` (``exact``, ``f1``, HasAns/NoAns), ``threshold`` itself and which task and
    metric they are (no best_*: those choose a threshold on these very questions). A question missing from
    ``spans`` / ``null_odds`` has no span: it is answered "" (no answer) at every threshold."""
    odds = {e.id: null_odds.get(e.id, math.inf) for e in examples}
    scores: dict[str, Any] = _evaluate(examples, {e.id: spans.get(e.id, "") for e in examples}, odds, threshold)
    scores.update(threshold=threshold, task=TASK.name, metric=METRIC)
    return scores


class SquadV20(QATask):
    name = "squad-v2.0"
    headline_metric = "f1"
    null_answers = True

    def load(self, path: str | os.PathLike[str], *, limit: int | None = None) -> list[QAExample]:
        return load_squad(path, limit=limit)

    def score(self, predictions: Mapping[str, str], examples: Sequence[Any]) -> dict[str, float]:
        """Official v2.0 ``exact``/``f1`` (also as ``exact_match``), ``HasAns_*``/``NoAns_*``, ``count``;
        "" predicts no answer; a question without a prediction scores 0."""
        return squad_v2_scores(predictions, examples)

    def best_null_threshold(
        self, spans: Mapping[str, str], null_odds: Mapping[str, float], examples: Sequence[Any]
    ) -> tuple[float, float]:
        return best_null_threshold(spans, null_odds, examples)

    def score_at_threshold(
        self, spans: Mapping[str, str], null_odds: Mapping[str, float], examples: Sequence[Any], threshold: float
    ) -> dict[str, Any]:
        return squad_v2_scores_at(spans, null_odds, examples, threshold)


TASK = SquadV20()
