"""Pre- and post-processing with MiniLM's real tokenizer, on real and synthetic SQuAD data."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.qa.features import (
    EvalFeatures,
    TrainFeatures,
    check_questions_fit,
    iter_batches,
    max_question_tokens,
    postprocess_predictions,
    prepare_eval_features,
    prepare_train_features,
)
from core.qa.metric import normalize_answer, squad_scores
from core.qa.squad import QAExample, SquadFormatError, load_squad
from core.qa.synthetic import write_synthetic_squad

SEQ, STRIDE = 128, 32  # short windows, so most real contexts need several


def _squash(text: str) -> str:
    """Normalised answer without accents or spaces: the uncased tokenizer drops accents,
    and decoding re-spaces punctuation ("1,000" -> "1, 000")."""
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    return "".join(normalize_answer(text).split())


def _word_aligned(example: QAExample) -> bool:
    """Whether the gold answer starts and ends on word boundaries, hence on token boundaries."""
    start = example.answer_starts[0]
    end = start + len(example.answers[0])
    context = example.context
    return (start == 0 or not context[start - 1].isalnum()) and (end == len(context) or not context[end].isalnum())


@pytest.fixture(scope="module")
def real_examples(real_squad_dir: Path) -> list[QAExample]:
    return load_squad(real_squad_dir / "squad-v1.1-train-head.json", limit=300)


@pytest.fixture(scope="module")
def real_train(real_examples: list[QAExample], tokenizer: Any) -> TrainFeatures:
    return prepare_train_features(real_examples, tokenizer, max_seq_length=SEQ, doc_stride=STRIDE)


@pytest.fixture(scope="module")
def real_eval(real_examples: list[QAExample], tokenizer: Any) -> EvalFeatures:
    return prepare_eval_features(real_examples, tokenizer, max_seq_length=SEQ, doc_stride=STRIDE)


def test_shapes_and_dtypes(real_train: TrainFeatures, real_eval: EvalFeatures, real_examples: list[QAExample]) -> None:
    n = len(real_train)
    assert n > 2 * len(real_examples)  # long contexts were split
    for array in (real_train.input_ids, real_train.attention_mask, real_train.token_type_ids):
        assert array.shape == (n, SEQ) and array.dtype == np.int64
    for array in (real_train.start_positions, real_train.end_positions):
        assert array.shape == (n,) and array.dtype == np.int64
    # Train and eval features are the same windows, in the same order.
    assert len(real_eval) == n
    np.testing.assert_array_equal(real_eval.input_ids, real_train.input_ids)
    assert real_eval.example_index.dtype == np.int64
    assert sorted(set(real_eval.example_index.tolist())) == list(range(len(real_examples)))
    assert np.all(np.diff(real_eval.example_index) >= 0)
    assert all(len(row) == SEQ for row in real_eval.offset_mapping)


def test_train_labels_decode_to_the_answer(
    real_train: TrainFeatures, real_eval: EvalFeatures, real_examples: list[QAExample], tokenizer: Any
) -> None:
    labelled = real_train.start_positions != 0
    assert np.all(real_train.end_positions[~labelled] == 0)
    checked = 0
    for w in np.flatnonzero(labelled):
        example = real_examples[real_eval.example_index[w]]
        start, end = real_train.start_positions[w], real_train.end_positions[w]
        assert 0 < start <= end < SEQ
        assert real_eval.offset_mapping[w][start] is not None and real_eval.offset_mapping[w][end] is not None
        if _word_aligned(example):
            assert _squash(tokenizer.decode(real_train.input_ids[w, start : end + 1])) == _squash(example.answers[0])
            checked += 1
    assert checked > 0.9 * len(real_examples)
    # Every word-aligned answer is labelled in at least one window.
    labelled_examples = set(real_eval.example_index[labelled].tolist())
    assert all(i in labelled_examples for i, e in enumerate(real_examples) if _word_aligned(e))


def test_consecutive_windows_overlap_by_the_stride(real_eval: EvalFeatures) -> None:
    index = real_eval.example_index
    pairs = np.flatnonzero(index[1:] == index[:-1])
    assert len(pairs) > 0
    for w in pairs:
        first, second = (
            [t for t, o in enumerate(real_eval.offset_mapping[v]) if o is not None] for v in (w, w + 1)
        )
        np.testing.assert_array_equal(
            real_eval.input_ids[w, first[-STRIDE:]], real_eval.input_ids[w + 1, second[:STRIDE]]
        )
        # The next window starts STRIDE tokens before this one ends, in character terms too.
        assert real_eval.offset_mapping[w + 1][second[0]] == real_eval.offset_mapping[w][first[-STRIDE]]


def _gold_logits(train: TrainFeatures, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noise everywhere, a clear maximum on the gold span in every window that holds it."""
    rng = np.random.default_rng(seed)
    start_logits = rng.normal(size=train.input_ids.shape).astype(np.float32)
    end_logits = rng.normal(size=train.input_ids.shape).astype(np.float32)
    rows = np.flatnonzero(train.start_positions != 0)
    start_logits[rows, train.start_positions[rows]] = 10.0
    end_logits[rows, train.end_positions[rows]] = 10.0
    return start_logits, end_logits


def test_gold_logits_give_gold_answers_on_real_data(
    real_train: TrainFeatures, real_eval: EvalFeatures, real_examples: list[QAExample]
) -> None:
    predictions = postprocess_predictions(real_examples, real_eval, *_gold_logits(real_train))
    aligned = [e for e in real_examples if _word_aligned(e)]
    assert squad_scores(predictions, aligned)["f1"] == pytest.approx(100.0)
    # Examples spread over several windows are among them.
    assert np.bincount(real_eval.example_index).max() >= 3


def test_gold_logits_give_gold_answers_on_synthetic_data(tmp_path: Path, tokenizer: Any) -> None:
    examples = load_squad(write_synthetic_squad(tmp_path / "s.json", num_articles=4, seed=3))
    train = prepare_train_features(examples, tokenizer, max_seq_length=64, doc_stride=16)
    features = prepare_eval_features(examples, tokenizer, max_seq_length=64, doc_stride=16)
    assert len(features) > 2 * len(examples)
    predictions = postprocess_predictions(examples, features, *_gold_logits(train))
    scores = squad_scores(predictions, examples)
    assert scores == {"f1": 100.0, "exact_match": 100.0, "count": len(examples)}


def _toy_features(*windows: list[tuple[int, int] | None], example_index: list[int]) -> EvalFeatures:
    ids = np.zeros((len(windows), len(windows[0])), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[:, -1] = 0  # the last token is [PAD]
    return EvalFeatures(ids, mask, ids, np.array(example_index), [list(w) for w in windows])


TOY = QAExample("t", "", "alpha beta gamma delta", "q?", ("beta",), (6,))
# [CLS] q ? [SEP] alpha beta gamma delta [SEP] [PAD]
TOY_OFFSETS = [None, None, None, None, (0, 5), (6, 10), (11, 16), (17, 22), None, None]


def _logits(peaks: dict[int, float], length: int = 10) -> np.ndarray:
    row = np.zeros((1, length), dtype=np.float32)
    for token, value in peaks.items():
        row[0, token] = value
    return row


@pytest.mark.parametrize(
    ("start", "end", "kwargs", "answer"),
    [
        ({5: 5.0}, {5: 5.0}, {}, "beta"),
        ({5: 5.0, 6: 3.0}, {6: 5.0}, {}, "beta gamma"),
        ({6: 9.0, 5: 5.0}, {5: 9.0, 6: 1.0}, {}, "beta"),  # best pair has end < start
        ({1: 9.0, 5: 5.0}, {1: 9.0, 5: 4.0}, {}, "beta"),  # best pair lies in the question
        ({9: 9.0, 4: 2.0}, {9: 9.0, 7: 5.0}, {}, "alpha beta gamma delta"),  # padding is never an answer
        ({4: 9.0, 6: 2.0}, {7: 9.0, 6: 1.0}, {"max_answer_length": 3}, "gamma delta"),  # 4 tokens too long
        ({1: 9.0}, {2: 9.0}, {"n_best": 1}, ""),  # no valid candidate among the top 1
        ({9: 9.0, 5: 5.0}, {9: 9.0, 5: 5.0}, {"n_best": 1}, "beta"),  # padding takes no n-best place
    ],
)
def test_postprocess_span_rules(
    start: dict[int, float], end: dict[int, float], kwargs: dict[str, int], answer: str
) -> None:
    features = _toy_features(TOY_OFFSETS, example_index=[0])
    predictions = postprocess_predictions([TOY], features, _logits(start), _logits(end), **kwargs)
    assert predictions == {"t": answer}


def test_postprocess_takes_the_best_window() -> None:
    second = [None, None, None, None, (11, 16), (17, 22), None, None, None, None]
    features = _toy_features(TOY_OFFSETS, second, example_index=[0, 0])
    start = np.concatenate([_logits({5: 4.0}), _logits({5: 6.0})])
    end = np.concatenate([_logits({5: 4.0}), _logits({5: 6.0})])
    assert postprocess_predictions([TOY], features, start, end) == {"t": "delta"}
    with pytest.raises(ValueError):
        postprocess_predictions([TOY], features, start[:1], end[:1])


def test_overlong_question_is_an_error_naming_file_record_and_problem(tmp_path: Path, tokenizer: Any) -> None:
    context = "The answer is forty two. " * 10
    doc = {"data": [{"title": "t", "paragraphs": [{"context": context, "qas": [
        {"id": "short", "question": "what is it?", "answers": [{"text": "forty two", "answer_start": 14}]},
        {"id": "long-one", "question": "why " * 200 + "?", "answers": [{"text": "forty two", "answer_start": 14}]},
    ]}]}]}
    path = tmp_path / "long.json"
    path.write_text(json.dumps(doc))
    examples = load_squad(path)
    for prepare in (prepare_train_features, prepare_eval_features):
        with pytest.raises(SquadFormatError) as info:
            prepare(examples, tokenizer, max_seq_length=64, doc_stride=16)
        assert info.value.path == str(path) and info.value.record_id == "long-one"
        assert "201 tokens" in info.value.problem and "at most 44" in info.value.problem
    with pytest.raises(SquadFormatError, match="long-one"):
        check_questions_fit(examples, tokenizer, max_seq_length=64, doc_stride=16)
    check_questions_fit(examples[:1], tokenizer, max_seq_length=64, doc_stride=16)
    with pytest.raises(ValueError, match="doc_stride"):
        prepare_train_features(examples[:1], tokenizer, max_seq_length=64, doc_stride=60)


def test_question_length_limit_is_exact(tokenizer: Any) -> None:
    """The longest accepted question tokenises without the Rust panic; one token more is refused."""
    limit = max_question_tokens(tokenizer, 64, 16)
    assert limit == 64 - 3 - 16 - 1
    context = "The answer is forty two. " * 10
    fits = QAExample("fits", "", context, "why " * limit, ("forty two",), (14,))
    train = prepare_train_features([fits], tokenizer, max_seq_length=64, doc_stride=16)
    assert train.input_ids.shape[1] == 64 and (train.start_positions != 0).any()
    too_long = QAExample("too-long", "", context, "why " * (limit + 1), ("forty two",), (14,))
    with pytest.raises(SquadFormatError, match="record too-long"):
        prepare_eval_features([too_long], tokenizer, max_seq_length=64, doc_stride=16)


class _NoTokenTypes:
    """A tokenizer that, like some non-BERT ones, returns no token_type_ids."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        encoding = self._inner(*args, **kwargs)
        encoding.pop("token_type_ids", None)
        return encoding


def test_missing_token_type_ids_become_zeros(real_examples: list[QAExample], tokenizer: Any) -> None:
    train = prepare_train_features(real_examples[:5], _NoTokenTypes(tokenizer), max_seq_length=SEQ, doc_stride=STRIDE)
    assert train.token_type_ids.shape == train.input_ids.shape
    assert not train.token_type_ids.any()


def test_no_examples_give_empty_features(tokenizer: Any) -> None:
    train = prepare_train_features([], tokenizer, max_seq_length=SEQ, doc_stride=STRIDE)
    features = prepare_eval_features([], tokenizer, max_seq_length=SEQ, doc_stride=STRIDE)
    assert train.input_ids.shape == (0, SEQ) and train.start_positions.shape == (0,)
    assert len(features) == 0 and features.offset_mapping == []


def test_iter_batches(real_eval: EvalFeatures) -> None:
    batches = list(iter_batches(real_eval, 64))
    assert [len(b["input_ids"]) for b in batches[:-1]] == [64] * (len(batches) - 1)
    assert set(batches[0]) == {"input_ids", "attention_mask", "token_type_ids"}
    for key in batches[0]:
        np.testing.assert_array_equal(np.concatenate([b[key] for b in batches]), getattr(real_eval, key))
    assert np.shares_memory(batches[0]["input_ids"], real_eval.input_ids)
    with pytest.raises(ValueError):
        next(iter_batches(real_eval, 0))
