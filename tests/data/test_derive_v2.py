"""The derived SQuAD v2.0 data set: unanswerable questions are questions moved to another article's paragraph."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.qa.derive_v2 import NOTE, _occurs, derive_v2, write_derived_v2
from core.qa.squad import load_squad, squad_version


def _article(title: str, n_paragraphs: int, word: str) -> dict[str, Any]:
    paragraphs = []
    for p in range(n_paragraphs):
        context = f"In {title} paragraph {p} the answer is {word}{p}. Nothing else is said here."
        answer = f"{word}{p}"
        paragraphs.append({"context": context, "qas": [
            {"id": f"{title}-{p}-{q}", "question": f"What is {title} question {q} of paragraph {p}?",
             "answers": [{"text": answer, "answer_start": context.index(answer)}]}
            for q in range(3)
        ]})  # fmt: skip
    return {"title": title, "paragraphs": paragraphs}


SRC = {"version": "1.1", "data": [_article("Alpha", 4, "apple"), _article("Beta", 3, "banana"), _article("Gamma", 5, "cherry")]}


def _qas(data: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(a["title"], p["context"], qa) for a in data["data"] for p in a["paragraphs"] for qa in p["qas"]]


def test_unanswerable_questions_sit_in_another_articles_paragraph() -> None:
    before = json.dumps(SRC)
    out = derive_v2(SRC, unanswerable_share=0.33, seed=1, source_name="src.json")
    assert json.dumps(SRC) == before  # the source is not changed
    assert out["version"] == "v2.0" and out["derived_from"] == "src.json" and out["note"] == NOTE
    qas = _qas(out)
    original = {qa["id"]: (title, qa) for title, _, qa in _qas(SRC)}
    assert sorted(qa["id"] for _, _, qa in qas) == sorted(original)  # every question once, ids kept
    impossible = [(title, context, qa) for title, context, qa in qas if qa["is_impossible"]]
    assert len(impossible) == out["unanswerable_questions"] == round(0.33 * len(original)) - out["pairs_dropped"]
    for title, context, qa in impossible:
        source_title, source = original[qa["id"]]
        assert qa["answers"] == [] and qa["question"] == source["question"]
        assert title != source_title == qa["derived_from_article"]  # another article
        assert not any(a["text"].lower() in context.lower() for a in source["answers"])
    for title, context, qa in qas:
        if not qa["is_impossible"]:
            assert original[qa["id"]] == (title, {k: v for k, v in qa.items() if k != "is_impossible"})


def test_seeded_and_share() -> None:
    assert derive_v2(SRC, seed=3) == derive_v2(SRC, seed=3)
    assert derive_v2(SRC, seed=3) != derive_v2(SRC, seed=4)
    half = derive_v2(SRC, unanswerable_share=0.5, seed=0)
    assert half["unanswerable_questions"] == 18 - half["pairs_dropped"] and half["questions"] == 36
    for share in (0, 1, 1.5):
        with pytest.raises(ValueError, match="unanswerable_share"):
            derive_v2(SRC, unanswerable_share=share)
    with pytest.raises(ValueError, match="at least 2 articles"):
        derive_v2({"data": [_article("Alpha", 3, "apple")]})


def test_a_pair_whose_answer_is_in_the_new_paragraph_is_dropped() -> None:
    """Every paragraph of Beta mentions Alpha's answers: an Alpha question is never moved there; with Beta
    the only other article, chosen Alpha questions stay answerable and are counted as dropped."""
    beta = _article("Beta", 2, "banana")
    for p in beta["paragraphs"]:
        p["context"] += " " + " ".join(f"APPLE{i}" for i in range(4))
    src = {"data": [_article("Alpha", 4, "apple"), beta]}
    out = derive_v2(src, unanswerable_share=0.5, seed=0)
    assert out["pairs_dropped"] > 0
    for title, _, qa in _qas(out):
        if qa["is_impossible"]:
            assert qa["derived_from_article"] == "Beta" and title == "Alpha"
    # verbatim (any case, even inside a word: on the safe side) or as whole normalised words
    assert _occurs("apple1", "... APPLE1 ...") and _occurs("Seine", "Seinez") and _occurs("the  Seine!", "a seine.")
    assert not _occurs("Seine", "the river Rhine")


def test_write_derived_v2_reads_back_as_v2(tmp_path: Path) -> None:
    src = tmp_path / "v11.json"
    src.write_text(json.dumps(SRC))
    out = write_derived_v2(src, tmp_path / "out" / "v2.json", seed=0)
    assert squad_version(src) == "squad-v1.1" and squad_version(out) == "squad-v2.0"
    examples = load_squad(out)
    assert len(examples) == 36 and sum(e.is_impossible for e in examples) == json.loads(out.read_text())["unanswerable_questions"]
    assert not list(tmp_path.glob("out/*.tmp"))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="bad.json"):
        write_derived_v2(tmp_path / "bad.json", tmp_path / "never.json")
    assert not (tmp_path / "never.json").exists()


def test_derived_from_the_shared_files(real_squad_dir: Path, tmp_path: Path) -> None:
    for name, questions in (("squad-v1.1-train-head.json", 4370), ("xquad-en.json", 1190)):
        out = write_derived_v2(real_squad_dir / name, tmp_path / name, seed=0)
        examples = load_squad(out)
        share = sum(e.is_impossible for e in examples) / len(examples)
        assert len(examples) == questions and 0.3 < share < 0.34
