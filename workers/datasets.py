"""Tokenised task data, cached per worker process so consecutive trials on one Ray worker share it."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from core.qa.features import EvalFeatures, TrainFeatures, prepare_eval_features, prepare_train_features
from core.qa.squad import QAExample, load_squad


def _key(path: str) -> tuple[str, float, int]:
    st = os.stat(path)
    return str(Path(path).resolve()), st.st_mtime, st.st_size


@functools.lru_cache(maxsize=8)
def _tokenizer(tokenizer_dir: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


def tokenizer(tokenizer_dir: str | Path) -> Any:
    return _tokenizer(str(tokenizer_dir))


@functools.lru_cache(maxsize=4)
def _examples(key: tuple[str, float, int], limit: int | None) -> list[QAExample]:
    return load_squad(key[0], limit=limit)


def examples(path: str, limit: int | None = None) -> list[QAExample]:
    return _examples(_key(path), limit)


@functools.lru_cache(maxsize=4)
def _eval(key: tuple[str, float, int], limit: int | None, tok_dir: str, seq: int, stride: int) -> EvalFeatures:
    return prepare_eval_features(_examples(key, limit), _tokenizer(tok_dir), max_seq_length=seq, doc_stride=stride)


def eval_features(path: str, limit: int | None, tokenizer_dir: str | Path, seq: int, stride: int) -> EvalFeatures:
    return _eval(_key(path), limit, str(tokenizer_dir), seq, stride)


@functools.lru_cache(maxsize=2)
def _train(key: tuple[str, float, int], limit: int | None, tok_dir: str, seq: int, stride: int) -> TrainFeatures:
    return prepare_train_features(_examples(key, limit), _tokenizer(tok_dir), max_seq_length=seq, doc_stride=stride)


def train_features(path: str, limit: int | None, tokenizer_dir: str | Path, seq: int, stride: int) -> TrainFeatures:
    return _train(_key(path), limit, str(tokenizer_dir), seq, stride)


_SOFT_TARGETS: dict[tuple[Any, ...], tuple[Any, Any]] = {}


def teacher_soft_targets(teacher: Any, teacher_dir: str, path: str, seq: int, stride: int) -> tuple[Any, Any]:
    """Teacher logits on the train windows, once per worker process and (teacher, data, windowing)."""
    from search_spaces.bert.training import teacher_logits

    key = (str(teacher_dir), _key(path), seq, stride)
    if key not in _SOFT_TARGETS:
        _SOFT_TARGETS.clear()  # one teacher at a time is what a worker serves
        _SOFT_TARGETS[key] = teacher_logits(teacher, train_features(path, None, teacher_dir, seq, stride))
    return _SOFT_TARGETS[key]
