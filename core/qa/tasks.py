"""QA tasks by name: how a task's files are read and how its predictions are scored.

``TASKS`` maps a task name to the module that defines its ``TASK`` (a ``QATask``), imported only
when asked for. Adding a task is one module beside ``squad_v11`` / ``squad_v20`` and one line
here, and passing ``tests/data/test_task_conformance.py``.

Ground floor: this module and every task module import nothing of the project outside ``core``.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from core.registry import load_entry

TASKS: dict[str, str] = {
    "squad-v1.1": "core.qa.squad_v11",
    "squad-v2.0": "core.qa.squad_v20",
}

DEFAULT_TASK = "squad-v1.1"


class QATask(ABC):
    """Narrow on purpose: read a file into examples, score predictions, name the headline metric.

    Examples are whatever ``load`` returns (each has an ``id``); predictions map an example's ``id``
    to the predicted answer text. Every score is in percent, except ``count`` (examples scored).
    """

    name: str
    headline_metric: str  # the key of ``score``'s result a search optimises and a model card leads with
    # True: a question may have no answer, predicted as "" where the model's null odds exceed a threshold
    # (SQuAD v2.0); the evaluator then post-processes with null scores (``workers.evaluate``).
    null_answers: bool = False

    @abstractmethod
    def load(self, path: str | os.PathLike[str], *, limit: int | None = None) -> list[Any]:
        """The examples of a file in this task's format, validated; ``limit`` keeps the first N."""

    @abstractmethod
    def score(self, predictions: Mapping[str, str], examples: Sequence[Any]) -> dict[str, float]:
        """Scores of ``predictions`` over ``examples``: at least ``headline_metric`` and ``count``."""

    # Tasks with ``null_answers`` only: predictions are each question's best non-null span and its null
    # odds (how much the model prefers "no answer"); a threshold on the odds turns them into answers.
    def best_null_threshold(
        self, spans: Mapping[str, str], null_odds: Mapping[str, float], examples: Sequence[Any]
    ) -> tuple[float, float]:
        """(the best headline score over ``examples``, the null-odds threshold that gives it)."""
        raise NotImplementedError(f"task {self.name!r} has no unanswerable questions")

    def score_at_threshold(
        self, spans: Mapping[str, str], null_odds: Mapping[str, float], examples: Sequence[Any], threshold: float
    ) -> dict[str, Any]:
        """``score`` of the answers at ``threshold`` ("" where the odds exceed it), with ``threshold``."""
        raise NotImplementedError(f"task {self.name!r} has no unanswerable questions")


@lru_cache(maxsize=None)
def get_task(name: str = DEFAULT_TASK) -> QATask:
    """The registered task called ``name``; ``ValueError`` lists the known ones."""
    return load_entry(TASKS, name, attr="TASK", kind=QATask, what="QA task")


__all__ = ["DEFAULT_TASK", "QATask", "TASKS", "get_task"]
