"""Synthetic SQuAD data: deterministic per seed, valid, marked, and different across seeds."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from core.qa.squad import is_synthetic, load_squad
from core.qa.synthetic import generate_synthetic_squad, write_synthetic_squad


def test_deterministic_per_seed_without_global_state() -> None:
    random.seed(1)
    expected = random.random()
    random.seed(1)
    first = generate_synthetic_squad(seed=7)
    assert random.random() == expected  # the module's own Random, not the global one
    assert json.dumps(generate_synthetic_squad(seed=7)) == json.dumps(first)


def test_written_file_is_valid_and_marked(tmp_path: Path) -> None:
    path = write_synthetic_squad(tmp_path / "new" / "train.json", num_articles=3, paragraphs_per_article=2, seed=0)
    assert path == tmp_path / "new" / "train.json"
    assert json.loads(path.read_text()) == generate_synthetic_squad(num_articles=3, paragraphs_per_article=2, seed=0)
    examples = load_squad(path)  # checks every answer_start against its context
    assert len(examples) == 3 * 2 * 4
    assert is_synthetic(path)
    assert json.loads(path.read_text())["version"] == "synthetic-1"


def test_default_size_and_question_types(tmp_path: Path) -> None:
    examples = load_squad(write_synthetic_squad(tmp_path / "s.json"))
    assert len(examples) == 20 * 5 * 4
    for kind in ("Who ", "When ", "Where ", "What ", "How many "):
        assert any(e.question.startswith(kind) for e in examples), kind


def test_numeric_answers_have_distractors(tmp_path: Path) -> None:
    """A question about a number or year is asked of a paragraph holding other numbers too."""
    examples = load_squad(write_synthetic_squad(tmp_path / "s.json"))
    numeric = [e for e in examples if e.answers[0].replace(",", "").isdigit()]
    assert numeric
    for e in numeric:
        assert len(set(re.findall(r"\d+(?:,\d{3})*", e.context)) - {e.answers[0]}) >= 1, e.context


def test_seeds_give_disjoint_data() -> None:
    def paragraphs(seed: int) -> set[str]:
        data = generate_synthetic_squad(seed=seed)["data"]
        return {p["context"] for article in data for p in article["paragraphs"]}

    def ids(seed: int) -> set[str]:
        data = generate_synthetic_squad(seed=seed)["data"]
        return {qa["id"] for article in data for p in article["paragraphs"] for qa in p["qas"]}

    assert not paragraphs(0) & paragraphs(1)
    assert not ids(0) & ids(1)
