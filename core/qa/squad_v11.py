"""SQuAD v1.1 as a ``QATask``: every question has an answer; scored by the official v1.1 script's F1/EM."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from core.qa.metric import squad_scores
from core.qa.squad import QAExample, SquadFormatError, load_squad
from core.qa.tasks import QATask


class SquadV11(QATask):
    name = "squad-v1.1"
    headline_metric = "f1"

    def load(self, path: str | os.PathLike[str], *, limit: int | None = None) -> list[QAExample]:
        """The file's questions; an unanswerable one (a SQuAD v2.0 file) is a ``SquadFormatError``."""
        examples = load_squad(path, limit=limit)
        for example in examples:
            if example.is_impossible:
                raise SquadFormatError(
                    path, example.id, "an unanswerable question (SQuAD v2.0) in a squad-v1.1 task: read the file as squad-v2.0"
                )
        return examples

    def score(self, predictions: Mapping[str, str], examples: Sequence[Any]) -> dict[str, float]:
        """``{"f1", "exact_match", "count"}``; a question without a prediction scores 0."""
        return squad_scores(predictions, examples)


TASK = SquadV11()
