"""A SQuAD v2.0-format data set derived from a SQuAD v1.1 file, for tests and benchmarks.

Real SQuAD v2.0 data is not part of the project; this makes unanswerable questions from a v1.1 file
by moving a seeded share of its questions to a paragraph of ANOTHER article, where their answer is
very unlikely to be (a move whose answer text occurs in the new paragraph is not made: another
paragraph is tried, and after a few the question stays answerable where it was). Every question
keeps its id; the answerable ones say ``"is_impossible": false``. The file says at its top level that
it is derived (``derived_from``, ``note``, the seed and the counts), so it is never taken for SQuAD 2.0.

Written at run time (never committed): ``write_derived_v2(src, out, seed=...)``.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from core.qa.metric import normalize_answer
from core.qa.squad import load_squad

NOTE = "derived by hwnas: unanswerable questions are questions paired with a paragraph of another article"
TRIES = 5  # paragraphs tried for a moved question before it stays answerable


def _occurs(answer: str, context: str) -> bool:
    """The answer's text in the context: verbatim (case-insensitive) or as whole normalised words."""
    if answer.strip().lower() in context.lower():
        return True
    norm = normalize_answer(answer)
    return bool(norm) and f" {norm} " in f" {normalize_answer(context)} "


def derive_v2(src: dict[str, Any], *, unanswerable_share: float = 0.33, seed: int = 0, source_name: str = "") -> dict[str, Any]:
    """The v2.0 data of a parsed v1.1 file (``src`` is not changed): about ``unanswerable_share`` of the
    questions become unanswerable, each moved into a paragraph of another article."""
    if not 0 < unanswerable_share < 1:
        raise ValueError(f"unanswerable_share must be between 0 and 1, got {unanswerable_share}")
    data = json.loads(json.dumps(src["data"]))  # a deep copy
    if len({a["title"] for a in data}) < 2:
        raise ValueError("deriving unanswerable questions needs at least 2 articles")
    rng = random.Random(seed)
    paragraphs = [(a, p) for a, article in enumerate(data) for p in range(len(article["paragraphs"]))]
    questions = [(a, p, q) for a, p in paragraphs for q in range(len(data[a]["paragraphs"][p]["qas"]))]
    chosen = rng.sample(questions, round(unanswerable_share * len(questions)))
    moves: dict[tuple[int, int], list[dict[str, Any]]] = {}
    moved: set[tuple[int, int, int]] = set()
    dropped = 0
    for a, p, q in chosen:
        qa = data[a]["paragraphs"][p]["qas"][q]
        for _ in range(TRIES):
            a2, p2 = paragraphs[rng.randrange(len(paragraphs))]
            if data[a2]["title"] == data[a]["title"]:
                continue
            context = data[a2]["paragraphs"][p2]["context"]
            if any(_occurs(ans["text"], context) for ans in qa["answers"]):
                continue
            moves.setdefault((a2, p2), []).append(
                {"id": qa["id"], "question": qa["question"], "answers": [], "is_impossible": True,
                 "derived_from_article": data[a]["title"]}
            )  # fmt: skip
            moved.add((a, p, q))
            break
        else:
            dropped += 1
    for a, article in enumerate(data):
        for p, paragraph in enumerate(article["paragraphs"]):
            kept = [{**qa, "is_impossible": False} for q, qa in enumerate(paragraph["qas"]) if (a, p, q) not in moved]
            for extra in moves.get((a, p), []):
                kept.insert(rng.randrange(len(kept) + 1), extra)
            paragraph["qas"] = kept
    return {
        "version": "v2.0",
        "derived_from": source_name or "a SQuAD v1.1 file",
        "note": NOTE,
        "seed": seed,
        "unanswerable_share": unanswerable_share,
        "questions": len(questions),
        "unanswerable_questions": len(moved),
        "pairs_dropped": dropped,  # chosen questions that stayed answerable: their answer was in every paragraph tried
        "data": data,
    }


def write_derived_v2(
    src_v11_file: str | os.PathLike[str], out_file: str | os.PathLike[str], *, unanswerable_share: float = 0.33, seed: int = 0
) -> Path:
    """Write the derived v2.0 file of ``src_v11_file`` (validated first as a SQuAD file) to ``out_file``."""
    load_squad(src_v11_file)  # a bad source fails here, naming the file and record
    src = json.loads(Path(src_v11_file).read_text(encoding="utf-8"))
    derived = derive_v2(src, unanswerable_share=unanswerable_share, seed=seed, source_name=Path(src_v11_file).name)
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(derived), encoding="utf-8")
    tmp.replace(out)
    return out
