"""QA tasks by name: how a task's files are read and how its predictions are scored.

``TASKS`` maps a task name to the module that defines its ``TASK`` (a ``QATask``), imported only
when asked for. Adding a task (SQuAD v2.0 next) is one module beside ``squad_v11`` and one line
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
}

DEFAULT_TASK = "squad-v1.1"


class QATask(ABC):
    """Narrow on purpose: read a file into examples, score predictions, name the headline metric.

    Examples are whatever ``load`` returns (each has an ``id``); predictions map an example's ``id``
    to the predicted answer text. Every score is in percent, except ``count`` (examples scored).
    """

    name: str
    headline_metric: str  # the key of ``score``'s result a search optimises and a model card leads with

    @abstractmethod
    def load(self, path: str | os.PathLike[str], *, limit: int | None = None) -> list[Any]:
        """The examples of a file in this task's format, validated; ``limit`` keeps the first N."""

    @abstractmethod
    def score(self, predictions: Mapping[str, str], examples: Sequence[Any]) -> dict[str, float]:
        """Scores of ``predictions`` over ``examples``: at least ``headline_metric`` and ``count``."""


@lru_cache(maxsize=None)
def get_task(name: str = DEFAULT_TASK) -> QATask:
    """The registered task called ``name``; ``ValueError`` lists the known ones."""
    return load_entry(TASKS, name, attr="TASK", kind=QATask, what="QA task")


__all__ = ["DEFAULT_TASK", "QATask", "TASKS", "get_task"]
