"""Each family's tokenizer conventions through the windowing and post-processing of ``core.qa.features``.

WordPiece (BERT, DistilBERT, ELECTRA), byte-level BPE with ``Ġ`` and ``trim_offsets`` (RoBERTa) and
SentencePiece ``▁`` pieces (XLM-R, DeBERTa-v2: the latter's spans include the space before a word, a
lone ``▁`` may overlap the next word's first character) must all label the gold answer's tokens and
map predicted tokens back to the answer's text. The tokenizers are trained here (tests/families.py)
on the shared SQuAD slice; the questions are real ones from it, spread over its articles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from core.qa.features import prepare_eval_features, prepare_train_features
from core.qa.metric import normalize_answer
from core.qa.squad import QAExample, load_squad
from tests.families import FAMILIES, family_tokenizer
from workers.evaluate import evaluate_qa, subset_features

SEQ, STRIDE = 128, 32  # short windows: many answers near a window's edge, many windows per question
QUESTIONS = 50
MAX_ANSWER_TOKENS = 30  # postprocess_predictions' max_answer_length


@pytest.fixture(scope="module")
def train_file(real_squad_dir: Path) -> str:
    return str(real_squad_dir / "squad-v1.1-train-head.json")


@pytest.fixture(scope="module")
def examples(train_file: str) -> list[QAExample]:
    every = load_squad(train_file)
    return every[:: len(every) // QUESTIONS][:QUESTIONS]  # every article of the slice, not just the first


class PerFamily(dict):  # type: ignore[type-arg]
    """Made on first use: only the families a test run selects are trained and tokenised."""

    def __init__(self, make: Callable[[str], Any]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, family: str) -> Any:
        self[family] = value = self.make(family)
        return value


@pytest.fixture(scope="module")
def tokenizers(train_file: str) -> PerFamily:
    return PerFamily(lambda family: family_tokenizer(family, train_file))


@pytest.fixture(scope="module")
def windows(tokenizers: PerFamily, examples: list[QAExample]) -> PerFamily:
    """(train features, eval features) of the examples, per family."""
    return PerFamily(
        lambda family: (
            prepare_train_features(examples, tokenizers[family], max_seq_length=SEQ, doc_stride=STRIDE),
            prepare_eval_features(examples, tokenizers[family], max_seq_length=SEQ, doc_stride=STRIDE),
        )
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_labelled_spans_are_the_answers(family: str, windows: PerFamily, examples: list[QAExample]) -> None:
    train, evals = windows[family]
    assert np.array_equal(train.input_ids, evals.input_ids)  # the same windows, in the same order
    answerable = np.flatnonzero(train.start_positions != 0)
    assert len(answerable) >= QUESTIONS  # every question's answer is in at least one window
    assert (train.start_positions[answerable] <= train.end_positions[answerable]).all()
    matches, leading_space = 0, 0
    for w in answerable:
        example = examples[evals.example_index[w]]
        start, end = evals.offset_mapping[w][train.start_positions[w]], evals.offset_mapping[w][train.end_positions[w]]
        assert start is not None and end is not None  # context tokens only
        text = example.context[start[0] : end[1]]
        matches += normalize_answer(text) == normalize_answer(example.answers[0])
        leading_space += text[:1].isspace()
    assert matches / len(answerable) >= 0.98, f"{family}: {matches} of {len(answerable)} labelled spans are the answer"
    assert leading_space == 0  # SentencePiece spans are trimmed: an answer never starts with the space before it


@pytest.mark.parametrize("family", FAMILIES)
def test_no_context_span_starts_on_white_space(family: str, windows: PerFamily, examples: list[QAExample]) -> None:
    _, evals = windows[family]
    for w, spans in enumerate(evals.offset_mapping):
        context = examples[evals.example_index[w]].context
        assert not any(context[s].isspace() for span in spans if span is not None for s in (span[0],) if span[0] < span[1])


@pytest.mark.parametrize("family", FAMILIES)
def test_perfect_logits_give_f1_100(family: str, windows: PerFamily, examples: list[QAExample]) -> None:
    """One-hot logits at the labelled tokens, through ``evaluate_qa``'s post-processing and scoring. Answers
    longer than its ``max_answer_length`` (30 tokens, as in run_qa.py) cannot be predicted whole: left out."""
    train, evals = windows[family]
    answerable = train.start_positions != 0
    too_long = set(evals.example_index[answerable & (train.end_positions - train.start_positions + 1 > MAX_ANSWER_TOKENS)].tolist())
    assert len(too_long) <= 3, f"{family}: {len(too_long)} answers longer than {MAX_ANSWER_TOKENS} tokens"
    keep = [i for i in range(len(examples)) if i not in too_long]
    rows = np.flatnonzero(np.isin(evals.example_index, keep))
    start_logits = np.zeros(train.input_ids.shape, dtype=np.float32)
    end_logits = np.zeros(train.input_ids.shape, dtype=np.float32)
    every = np.arange(len(train))
    start_logits[every, train.start_positions] = 10.0  # CLS (0) where the answer is not in the window
    end_logits[every, train.end_positions] = 10.0
    gold = iter(zip(np.array_split(start_logits[rows], range(16, len(rows), 16)), np.array_split(end_logits[rows], range(16, len(rows), 16))))

    def run(batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:  # the gold logits of each batch in turn
        s, e = next(gold)
        assert len(s) == len(batch["input_ids"])
        return s, e

    scores = evaluate_qa(run, [examples[i] for i in keep], subset_features(evals, keep), batch_size=16)
    assert scores["count"] == len(keep)
    assert scores["f1"] == pytest.approx(100.0)
    assert scores["exact_match"] == pytest.approx(100.0)


@pytest.mark.parametrize("family", ["roberta", "xlm-roberta", "deberta-v2", "bert"])
def test_leading_white_space_of_a_question_is_no_token(family: str, tokenizers: PerFamily, examples: list[QAExample]) -> None:
    """A RoBERTa tokenizer makes ``Ġ`` tokens of a question's leading spaces (run_qa.py strips them too)."""
    from dataclasses import replace

    tok = tokenizers[family]
    padded = [replace(e, question="   " + e.question) for e in examples[:5]]
    plain = prepare_eval_features(examples[:5], tok, max_seq_length=SEQ, doc_stride=STRIDE)
    spaced = prepare_eval_features(padded, tok, max_seq_length=SEQ, doc_stride=STRIDE)
    assert np.array_equal(plain.input_ids, spaced.input_ids)


def test_lone_sentencepiece_marker_never_ends_a_label_before_it_starts(tokenizers: PerFamily) -> None:
    """XLM-R gives a lone ``▁`` the span of the next word's first character: a one-character answer would be
    labelled (start: the word, end: the ``▁`` before it) without the empty span the marker now gets."""
    tok = tokenizers["xlm-roberta"]
    context = "The grade was Q in 1850, then B."
    example = QAExample(id="q", title="t", context=context, question="What grade?", answers=("Q",), answer_starts=(14,))
    ids = tok(example.question, context)["input_ids"]
    assert "\u2581" in tok.convert_ids_to_tokens(ids)  # the case at hand: "▁" then "Q"
    train = prepare_train_features([example], tok, max_seq_length=SEQ, doc_stride=STRIDE)
    evals = prepare_eval_features([example], tok, max_seq_length=SEQ, doc_stride=STRIDE)
    s, e = int(train.start_positions[0]), int(train.end_positions[0])
    assert 0 < s <= e
    assert context[evals.offset_mapping[0][s][0] : evals.offset_mapping[0][e][1]] == "Q"
