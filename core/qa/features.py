"""Turn QA examples into fixed-length model windows, and model logits back into answers.

Follows the Hugging Face ``run_qa.py`` reference (question first, context cut into
overlapping windows of ``max_seq_length`` tokens that overlap by ``doc_stride``) so F1 is
comparable with published numbers, but works on numpy arrays, chunk by chunk, so the
full SQuAD train set is tokenised in bounded memory and post-processing is vectorised.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.qa.squad import QAExample, SquadFormatError

_CHUNK = 1000  # examples tokenised at a time
_CLS_INDEX = 0  # BERT-style inputs start with [CLS]; it labels "answer not in this window"


@dataclass
class TrainFeatures:
    """Model inputs [N, L] and gold token positions [N] for every window."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray
    start_positions: np.ndarray
    end_positions: np.ndarray

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class EvalFeatures:
    """Model inputs [N, L], the example each window came from, and per-token context offsets.

    ``offset_mapping[i][t]`` is the (start, end) character span of token t in the context,
    or None for question, special and padding tokens, which can never be part of an answer.
    """

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray
    example_index: np.ndarray
    offset_mapping: list[list[tuple[int, int] | None]]

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class _Windows:
    """One tokenised chunk of examples: inputs plus where each token lies in its context."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray
    example_index: np.ndarray  # into the whole examples sequence
    offsets: np.ndarray  # [n, L, 2] character span of each token
    encodings: list[Any]  # tokenizers.Encoding per window: sequence ids, offsets as tuples


def max_question_tokens(tokenizer: Any, max_seq_length: int, doc_stride: int) -> int:
    """The longest question (in tokens) that still leaves the windowing room for context.

    With a pair ``[CLS] question [SEP] context [SEP]`` the context part of a window has
    ``max_seq_length - specials - question`` tokens, and consecutive windows overlap by
    ``doc_stride`` of them, so that part must be longer than ``doc_stride``.
    """
    room = max_seq_length - tokenizer.num_special_tokens_to_add(pair=True) - doc_stride - 1
    if doc_stride < 0 or room < 1:
        raise ValueError(f"doc_stride={doc_stride} leaves no room in max_seq_length={max_seq_length}")
    return room


def check_questions_fit(
    examples: Sequence[QAExample], tokenizer: Any, *, max_seq_length: int, doc_stride: int, chunk: int = 10_000
) -> None:
    """Raise ``SquadFormatError`` (file, record id, problem) for the first question too long for a window.

    Tokenises the questions only (batched), which is cheap enough to run when a job is
    submitted. Such a question used to be cut silently; it is now an error because the
    model would be trained or scored on a question it never saw whole.
    """
    limit = max_question_tokens(tokenizer, max_seq_length, doc_stride)
    for begin in range(0, len(examples), chunk):
        part = examples[begin : begin + chunk]
        ids = tokenizer([e.question.lstrip() for e in part], add_special_tokens=False)["input_ids"]
        for example, tokens in zip(part, ids):
            if len(tokens) > limit:
                raise SquadFormatError(
                    example.source or "<examples>",
                    example.id,
                    f"the question is {len(tokens)} tokens long, but with max_seq_length={max_seq_length} and "
                    f"doc_stride={doc_stride} a question may have at most {limit} tokens to leave room for "
                    "context; shorten the question, raise max_seq_length or lower doc_stride",
                )


def _tokenize(
    examples: Sequence[QAExample], tokenizer: Any, max_seq_length: int, doc_stride: int
) -> Iterator[_Windows]:
    """Yield the windows of ``_CHUNK`` examples at a time.

    Questions lose their leading white space (it only wastes window room; ``run_qa.py``
    strips it too). A question too long to leave ``doc_stride`` context tokens is a
    ``SquadFormatError`` raised before the Rust tokenizer sees it (it would panic, which is
    not even an ``Exception``).
    """
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError("character offsets need a fast (Rust) tokenizer")
    max_question_tokens(tokenizer, max_seq_length, doc_stride)
    for begin in range(0, len(examples), _CHUNK):
        chunk = examples[begin : begin + _CHUNK]
        check_questions_fit(chunk, tokenizer, max_seq_length=max_seq_length, doc_stride=doc_stride)
        enc = tokenizer(
            [example.question.lstrip() for example in chunk],
            [example.context for example in chunk],
            truncation="only_second",
            max_length=max_seq_length,
            stride=doc_stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding="max_length",
            return_tensors="np",
        )
        input_ids = enc["input_ids"].astype(np.int64, copy=False)
        token_type_ids = enc.get("token_type_ids")
        yield _Windows(
            input_ids=input_ids,
            attention_mask=enc["attention_mask"].astype(np.int64, copy=False),
            token_type_ids=(
                np.zeros_like(input_ids) if token_type_ids is None else token_type_ids.astype(np.int64, copy=False)
            ),
            example_index=enc["overflow_to_sample_mapping"].astype(np.int64) + begin,
            offsets=context_offsets(enc, [chunk[i].context for i in enc["overflow_to_sample_mapping"]], _marker_ids(tokenizer)),
            encodings=enc.encodings,
        )


# str.isspace() code points: what a token span must not start with
_WHITESPACE = np.array([c for c in range(0x3001) if chr(c).isspace()], dtype=np.uint32)
_WORD_MARKERS = ("\u2581", "\u0120")  # SentencePiece's "▁" and byte-level BPE's "Ġ": a word start, when alone


def _marker_ids(tokenizer: Any) -> np.ndarray:
    """Vocabulary ids of a lone word-start marker token (none for WordPiece vocabularies)."""
    unk = getattr(tokenizer, "unk_token_id", None)
    ids = [tokenizer.convert_tokens_to_ids(m) for m in _WORD_MARKERS]
    return np.array([i for i in ids if isinstance(i, int) and i != unk], dtype=np.int64)


def context_offsets(enc: Any, contexts: Sequence[str], marker_ids: np.ndarray) -> np.ndarray:
    """Each window's token character spans [n, L, 2], context spans trimmed of white space.

    SentencePiece tokenizers without a white-space pre-split (DeBERTa-v2/v3) give ``▁word`` the span
    of the space before it as well, and a lone ``▁`` (DeBERTa, XLM-R) the span of that space or even
    of the next word's first character (overlapping that word's token: an answer ending there would
    be labelled end before start). Byte-level BPE with ``trim_offsets`` (RoBERTa) and WordPiece
    already exclude white space. So context spans lose their leading white space and a lone marker
    token an empty span at its start: labels and predicted answers then start on the word itself.
    ``contexts[i]`` is window i's context.
    """
    offsets = np.array(enc["offset_mapping"], dtype=np.int64)  # a copy: the encodings keep theirs
    if offsets.size == 0:
        return offsets
    is_context = np.array([e.sequence_ids for e in enc.encodings], dtype=np.float64) == 1
    if marker_ids.size:
        lone = is_context & np.isin(enc["input_ids"], marker_ids)
        offsets[..., 1] = np.where(lone, offsets[..., 0], offsets[..., 1])
    where: dict[int, int] = {}  # id of a context (an example's windows share it) -> its start in the joined contexts
    parts: list[str] = []
    base = np.empty(len(contexts), dtype=np.int64)
    size = 0
    for i, context in enumerate(contexts):
        if id(context) not in where:
            where[id(context)] = size
            parts.append(context)
            size += len(context)
        base[i] = where[id(context)]
    space = np.isin(np.frombuffer("".join(parts).encode("utf-32-le"), dtype=np.uint32), _WHITESPACE)
    start, end = offsets[..., 0], offsets[..., 1]  # views: trimmed in place
    while True:
        live = is_context & (start < end)
        live[live] = space[(base[:, None] + start)[live]]
        if not live.any():
            break
        start[live] += 1
    return offsets


def _answer_positions(windows: _Windows, examples: Sequence[QAExample]) -> tuple[np.ndarray, np.ndarray]:
    """Token span of the first gold answer in each window, or (CLS, CLS) where it is not inside.

    Unlike ``run_qa.py`` only context tokens are searched, so an answer ending the window
    cannot spill onto [SEP] or padding. Every window of an unanswerable question (SQuAD v2.0)
    is (CLS, CLS), as in ``run_qa.py``: its start (-1) precedes every context token.
    """
    start_char = np.array([(examples[i].answer_starts or (-1,))[0] for i in windows.example_index], dtype=np.int64)
    end_char = start_char + np.array([len((examples[i].answers or ("",))[0]) for i in windows.example_index], dtype=np.int64)
    # sequence ids: None for special tokens, 0 question, 1 context; None becomes NaN here.
    is_context = np.array([e.sequence_ids for e in windows.encodings], dtype=np.float64) == 1
    token = np.arange(windows.input_ids.shape[1])
    starts_at_or_before = is_context & (windows.offsets[..., 0] <= start_char[:, None])
    ends_at_or_after = is_context & (windows.offsets[..., 1] >= end_char[:, None])
    inside = starts_at_or_before.any(axis=1) & ends_at_or_after.any(axis=1)
    start = np.where(starts_at_or_before, token, -1).max(axis=1)
    end = np.where(ends_at_or_after, token, len(token)).min(axis=1)
    return np.where(inside, start, _CLS_INDEX), np.where(inside, end, _CLS_INDEX)


def _concat(parts: list[np.ndarray], *row_shape: int) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros((0, *row_shape), dtype=np.int64)


def prepare_train_features(
    examples: Sequence[QAExample], tokenizer: Any, *, max_seq_length: int, doc_stride: int
) -> TrainFeatures:
    """Windows labelled with the token span of the first gold answer (CLS where absent)."""
    columns: dict[str, list[np.ndarray]] = {k: [] for k in ("ids", "mask", "types", "start", "end")}
    for windows in _tokenize(examples, tokenizer, max_seq_length, doc_stride):
        start, end = _answer_positions(windows, examples)
        columns["ids"].append(windows.input_ids)
        columns["mask"].append(windows.attention_mask)
        columns["types"].append(windows.token_type_ids)
        columns["start"].append(start)
        columns["end"].append(end)
    return TrainFeatures(
        input_ids=_concat(columns.pop("ids"), max_seq_length),
        attention_mask=_concat(columns.pop("mask"), max_seq_length),
        token_type_ids=_concat(columns.pop("types"), max_seq_length),
        start_positions=_concat(columns.pop("start")),
        end_positions=_concat(columns.pop("end")),
    )


def prepare_eval_features(
    examples: Sequence[QAExample], tokenizer: Any, *, max_seq_length: int, doc_stride: int
) -> EvalFeatures:
    """Windows with the offsets needed to map predicted token spans back to context text."""
    columns: dict[str, list[np.ndarray]] = {k: [] for k in ("ids", "mask", "types", "example")}
    offset_mapping: list[list[tuple[int, int] | None]] = []
    for windows in _tokenize(examples, tokenizer, max_seq_length, doc_stride):
        columns["ids"].append(windows.input_ids)
        columns["mask"].append(windows.attention_mask)
        columns["types"].append(windows.token_type_ids)
        columns["example"].append(windows.example_index)
        offset_mapping.extend(
            [(span[0], span[1]) if sequence == 1 else None for span, sequence in zip(spans, e.sequence_ids)]
            for spans, e in zip(windows.offsets.tolist(), windows.encodings)
        )
    return EvalFeatures(
        input_ids=_concat(columns.pop("ids"), max_seq_length),
        attention_mask=_concat(columns.pop("mask"), max_seq_length),
        token_type_ids=_concat(columns.pop("types"), max_seq_length),
        example_index=_concat(columns.pop("example")),
        offset_mapping=offset_mapping,
    )


def _candidate_chars(offset_mapping: list[list[tuple[int, int] | None]], tokens: np.ndarray, side: int) -> np.ndarray:
    """Character start (side 0) or end (side 1) of each candidate token; -1 if not context."""
    chars = np.full(tokens.shape, -1, dtype=np.int64)
    for i, (offsets, row) in enumerate(zip(offset_mapping, tokens.tolist())):
        chars[i] = [-1 if offsets[t] is None else offsets[t][side] for t in row]
    return chars


def postprocess_predictions(
    examples: Sequence[QAExample],
    features: EvalFeatures,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    *,
    n_best: int = 20,
    max_answer_length: int = 30,
) -> dict[str, str]:
    """Best-scoring valid span per example over all its windows, as context text.

    Candidates are the ``n_best`` top start and end tokens of each window; a span is valid
    when both ends are context tokens, end >= start and it is at most ``max_answer_length``
    tokens (padding never is). Its score is start logit + end logit. Examples without a valid span get "".
    """
    return postprocess_with_null_odds(
        examples, features, start_logits, end_logits, n_best=n_best, max_answer_length=max_answer_length
    )[0]


def postprocess_with_null_odds(
    examples: Sequence[QAExample],
    features: EvalFeatures,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    *,
    n_best: int = 20,
    max_answer_length: int = 30,
) -> tuple[dict[str, str], dict[str, float]]:
    """``postprocess_predictions``'s best non-null spans, and each example's null odds (SQuAD v2.0).

    As in ``run_qa.py``: a window's null score is its CLS start + end logits, an example's is the
    minimum over its windows, and its odds are ``null score - best non-null span score``; ``inf``
    where no window has a valid span (the answer can only be "").
    """
    start_logits = np.asarray(start_logits)
    end_logits = np.asarray(end_logits)
    if start_logits.shape != end_logits.shape or start_logits.shape != features.input_ids.shape:
        raise ValueError(
            f"logits {start_logits.shape} / {end_logits.shape} do not match features {features.input_ids.shape}"
        )
    predictions = {example.id: "" for example in examples}
    null_odds = {example.id: float("inf") for example in examples}
    if len(features) == 0:
        return predictions, null_odds
    # padding is never a candidate: masked here, the n-best lists (and so F1) do not depend on how much
    # padding a window ran with (``core.qa.length_policy``)
    padding = np.asarray(features.attention_mask) == 0
    start_logits = np.where(padding, -np.inf, start_logits)
    end_logits = np.where(padding, -np.inf, end_logits)
    k = min(n_best, start_logits.shape[1])
    start_tokens = np.argsort(-start_logits, axis=1, kind="stable")[:, :k]
    end_tokens = np.argsort(-end_logits, axis=1, kind="stable")[:, :k]
    start_chars = _candidate_chars(features.offset_mapping, start_tokens, 0)
    end_chars = _candidate_chars(features.offset_mapping, end_tokens, 1)

    # [window, start candidate, end candidate]
    length = end_tokens[:, None, :] - start_tokens[:, :, None] + 1
    in_context = (start_chars[:, :, None] >= 0) & (end_chars[:, None, :] >= 0)
    valid = in_context & (length >= 1) & (length <= max_answer_length)
    rows = np.arange(len(features))[:, None]
    scores = start_logits[rows, start_tokens][:, :, None] + end_logits[rows, end_tokens][:, None, :]
    scores = np.where(valid, scores, -np.inf).reshape(len(features), -1)
    best_pair = scores.argmax(axis=1)
    best_score = scores[np.arange(len(features)), best_pair]
    best_start, best_end = np.divmod(best_pair, k)

    # Per example, the window with the highest best score.
    order = np.lexsort((-best_score, features.example_index))
    _, first = np.unique(features.example_index[order], return_index=True)
    null_score = start_logits[:, _CLS_INDEX] + end_logits[:, _CLS_INDEX]
    min_null = np.full(len(examples), np.inf)
    np.minimum.at(min_null, features.example_index, null_score)
    for w in order[first]:
        if np.isfinite(best_score[w]):
            example = examples[features.example_index[w]]
            predictions[example.id] = example.context[start_chars[w, best_start[w]] : end_chars[w, best_end[w]]]
            null_odds[example.id] = float(min_null[features.example_index[w]] - best_score[w])
    return predictions, null_odds


def iter_batches(features: TrainFeatures | EvalFeatures, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    """Consecutive model-input batches (views, not copies) in feature order."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    for begin in range(0, len(features), batch_size):
        end = begin + batch_size
        yield {
            "input_ids": features.input_ids[begin:end],
            "attention_mask": features.attention_mask[begin:end],
            "token_type_ids": features.token_type_ids[begin:end],
        }
