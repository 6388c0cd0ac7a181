"""The train file without the articles a supernet held out: what refinement and INT8 calibration may read.

A subnet's held-out F1 is scored on the articles the supernet split off (``validation_split``);
anything that trains with labels or collects activation statistics for such a subnet reads this
file instead, so that no figure comes from the articles it is judged on.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from pathlib import Path

from core.types import TrialRequest
from workers.supernet import SUPERNET_FILE


def training_articles_file(request: TrialRequest) -> str:
    """``request.train_file`` without the articles the supernet held out (``validation_split``), as a
    SQuAD file beside the trial's directory: refinement trains with labels, so it must never see the
    articles a held-out F1 is scored on. The train file itself when the supernet held nothing out of it.
    Cached per process (the coordinator asks again for every trial's model card)."""
    from workers import datasets

    info_file = Path(str(request.supernet_dir)) / SUPERNET_FILE
    keys = (datasets._key(request.train_file), datasets._key(str(info_file)), str(Path(request.output_dir).parent))
    out = _training_articles_file(*keys)
    if out and not Path(out).is_file():  # removed since: write it again
        _training_articles_file.cache_clear()
        out = _training_articles_file(*keys)
    return out or request.train_file


@functools.lru_cache(maxsize=16)
def _training_articles_file(train_key: tuple[str, float, int], info_key: tuple[str, float, int], out_parent: str) -> str:
    """The training-articles file's path, or "" when the supernet split nothing off this train file."""
    from core.qa.squad import split_by_article
    from workers import datasets

    train_file = train_key[0]
    info = json.loads(Path(info_key[0]).read_text())
    settings = info.get("settings", {})
    fraction = settings.get("validation_split") or 0.0
    if not fraction or Path(info.get("train_file", "")).resolve() != Path(train_file):
        return ""
    _, held = split_by_article(datasets.examples(train_file, settings.get("max_train_examples")), fraction, seed=settings.get("seed", 0))
    titles = {e.title for e in held}
    raw = json.loads(Path(train_file).read_text())
    raw["data"] = [a for a in raw["data"] if a.get("title") not in titles]
    text = json.dumps(raw)
    out = Path(out_parent) / f"train-articles-{hashlib.sha256(text.encode()).hexdigest()[:16]}.json"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{time.time_ns()}.tmp")
        tmp.write_text(text)
        tmp.replace(out)
    return str(out)
