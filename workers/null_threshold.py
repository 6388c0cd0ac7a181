"""Where a SQuAD v2.0 model's null-score threshold is chosen: held-out questions of the TRAIN file.

The threshold (answer "" where a question's null odds exceed it) is a parameter of the model as
deployed, so it is chosen like one: never on the eval file. A trial picks the threshold that
maximises F1 on a slice of train articles, first found of

1. the articles its supernet held out of training (``validation_split``: the slice
   ``workers.training_articles`` keeps refinement and calibration away from; read from the supernet's
   train file, so a refined trial, whose own train file lacks them, uses them too),
2. the articles the teacher was not trained on (``heldout_titles`` of the teacher's ``metrics.json``:
   a SQuAD v2.0 teacher always holds out ``TEACHER_HOLDOUT`` of its train articles),
3. a seeded ``TEACHER_HOLDOUT`` split of the train file's articles (the model may have trained on them:
   a base model that came with its QA head),

at most ``THRESHOLD_QUESTIONS`` of their questions (a seeded sample, in file order), then applies that
one threshold to the eval file.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from core.qa.squad import QAExample, split_by_article
from core.types import TrialRequest

THRESHOLD_QUESTIONS = 200  # held-out train questions the threshold is chosen on
TEACHER_HOLDOUT = 0.2  # share of the train articles a SQuAD v2.0 teacher holds out for its threshold


def threshold_slice(req: TrialRequest) -> tuple[list[QAExample], str]:
    """(the held-out train questions the trial's null threshold is chosen on, where they come from)."""
    from workers import datasets

    chosen, source = _supernet_heldout(req), "train articles the supernet held out"
    if not chosen:
        everything = datasets.examples(req.train_file)
        titles, source = _teacher_heldout(req), "train articles the teacher was not trained on"
        if not titles:
            _, held = split_by_article(everything, TEACHER_HOLDOUT, seed=req.seed)
            titles = {e.title for e in held}
            source = f"a seeded {TEACHER_HOLDOUT:.0%} split of the train articles"
        chosen = [e for e in everything if e.title in titles]
    if len(chosen) > THRESHOLD_QUESTIONS:
        keep = sorted(random.Random(req.seed).sample(range(len(chosen)), THRESHOLD_QUESTIONS))
        chosen = [chosen[i] for i in keep]
    return chosen, source


def _same_file(a: str, b: str) -> bool:
    return bool(a) and bool(b) and Path(a).resolve() == Path(b).resolve()


def _supernet_heldout(req: TrialRequest) -> list[QAExample]:
    """The questions of the articles the trial's supernet held out of its training (``validation_split``),
    read from the train file it was trained on (a refined trial's own ``train_file`` lacks them)."""
    from workers import datasets
    from workers.supernet import SUPERNET_FILE

    if not req.supernet_dir or not (Path(req.supernet_dir) / SUPERNET_FILE).is_file():
        return []
    info = json.loads((Path(req.supernet_dir) / SUPERNET_FILE).read_text())
    settings = info.get("settings", {})
    fraction = settings.get("validation_split") or 0.0
    train_file = info.get("train_file") or ""
    if not fraction or not Path(train_file).is_file():
        return []
    _, held = split_by_article(
        datasets.examples(train_file, settings.get("max_train_examples")), fraction, seed=settings.get("seed", 0)
    )
    titles = {e.title for e in held}
    return [e for e in datasets.examples(train_file) if e.title in titles]


def _teacher_heldout(req: TrialRequest) -> set[str]:
    """Titles the fine-tuned teacher held out of its training (its ``metrics.json``), if any."""
    metrics_file = Path(req.teacher_dir) / "metrics.json"
    if not metrics_file.is_file():
        return set()
    metrics = json.loads(metrics_file.read_text())
    if not _same_file(metrics.get("train_file") or "", req.train_file):
        return set()
    return set(metrics.get("heldout_titles") or ())
