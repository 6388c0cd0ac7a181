"""Synthetic SQuAD-format data, so the demo runs offline and fast without the real files.

Paragraphs are templated facts about invented people, organisations, cities and rivers.
Every fact kind appears at least twice in a paragraph with different entities, so a model
has to match the question's entity rather than the sentence shape. Answers are whole
words whose ``answer_start`` is recorded while the sentence is built.
"""

from __future__ import annotations

import json
import os
import random
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_ONSETS = ("b", "br", "c", "d", "dr", "f", "g", "h", "k", "l", "m", "n", "p", "qu", "r", "s", "t", "th", "v", "w", "z")
_VOWELS = ("a", "e", "i", "o", "u", "ae", "ei", "ou")
_CODAS = ("", "", "n", "r", "l", "s", "th", "x", "rd", "m")
_CITY_ENDINGS = ("brook", "ford", "haven", "mere", "ton", "wick", "bury", "dale", "port", "field", "stead", "gate")
_ORG_KINDS = ("Institute", "Society", "Company", "Academy", "Guild", "Foundation", "Library", "Museum", "Observatory")
_COLOURS = ("red", "blue", "green", "yellow", "purple", "orange", "white", "black", "grey", "silver", "gold", "crimson")
# Consonant-initial, as the templates say "a {profession}".
_PROFESSIONS = ("physician", "teacher", "painter", "lawyer", "chemist", "sailor", "baker", "surveyor", "carpenter")
_BOOK_ADJECTIVES = ("Silent", "Golden", "Hidden", "Broken", "Distant", "Burning", "Frozen", "Quiet", "Endless", "Last")
_BOOK_NOUNS = ("Harbour", "Garden", "Tower", "Winter", "River", "Lantern", "Mountain", "Voyage", "Kingdom", "Mirror")
_NAME_KINDS = frozenset({"person", "org", "city", "river", "book"})  # never repeated in a paragraph


@dataclass(frozen=True)
class _FactKind:
    """Sentence templates for one kind of fact and the questions it answers.

    ``questions`` pairs a question template with the slot holding its answer; every
    question also names another slot, so it is unambiguous within the paragraph.
    """

    slots: dict[str, str]  # slot name -> entity kind
    statements: tuple[str, ...]
    questions: tuple[tuple[str, str], ...]


_FACT_KINDS = (
    _FactKind(
        {"person": "person", "org": "org", "year": "year", "city": "city"},
        (
            "{person} founded the {org} in {year} in the city of {city}.",
            "In {year}, {person} founded the {org} in {city}.",
            "The {org} was founded by {person} in {city} in {year}.",
        ),
        (
            ("Who founded the {org}?", "person"),
            ("In what year was the {org} founded?", "year"),
            ("In which city was the {org} founded?", "city"),
        ),
    ),
    _FactKind(
        {"person": "person", "city": "city", "year": "year"},
        ("{person} was born in {city} in {year}.", "In {year}, {person} was born in the town of {city}."),
        (("Where was {person} born?", "city"), ("When was {person} born?", "year")),
    ),
    _FactKind(
        {"city": "city", "count": "population"},
        ("{city} has a population of {count} people.", "About {count} people live in {city}."),
        (("How many people live in {city}?", "count"), ("What is the population of {city}?", "count")),
    ),
    _FactKind(
        {"city": "city", "colour": "colour"},
        ("The flag of {city} is {colour}.", "{city} flies a {colour} flag."),
        (("What colour is the flag of {city}?", "colour"),),
    ),
    _FactKind(
        {"org": "org", "count": "members", "year": "year"},
        ("The {org} had {count} members in {year}.", "In {year}, the {org} counted {count} members."),
        (("How many members did the {org} have in {year}?", "count"),),
    ),
    _FactKind(
        {"river": "river", "city": "city"},
        ("The {river} River flows through {city}.", "{city} lies on the banks of the {river} River."),
        (("Which river flows through {city}?", "river"), ("Where does the {river} River flow?", "city")),
    ),
    _FactKind(
        {"person": "person", "book": "book", "year": "year"},
        ("{person} wrote {book} in {year}.", "In {year}, {person} published a novel titled {book}."),
        (("What book did {person} write?", "book"), ("Who wrote {book}?", "person")),
    ),
    _FactKind(
        {"person": "person", "profession": "profession", "org": "org"},
        ("{person} worked as a {profession} at the {org}.", "At the {org}, {person} was employed as a {profession}."),
        (("What was the job of {person} at the {org}?", "profession"), ("Where did {person} work?", "org")),
    ),
)


class _Entities:
    """Draws invented names and values; names are unique within one paragraph."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def new_paragraph(self) -> None:
        self._used.clear()

    def _word(self, syllables: int) -> str:
        rng = self._rng
        word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)) + rng.choice(_CODAS)
        return word.capitalize()

    def _draw(self, kind: str) -> str:
        rng = self._rng
        match kind:
            case "person":
                return f"{self._word(rng.randint(1, 2))} {self._word(rng.randint(2, 3))}"
            case "org":
                return f"{self._word(2)} {rng.choice(_ORG_KINDS)}"
            case "city":
                return self._word(rng.randint(1, 2)) + rng.choice(_CITY_ENDINGS)
            case "river":
                return self._word(rng.randint(2, 3))
            case "year":
                return str(rng.randint(1500, 2020))
            case "population":
                return f"{rng.randint(2, 990) * 100:,}"
            case "members":
                return str(rng.randint(12, 950))
            case "colour":
                return rng.choice(_COLOURS)
            case "profession":
                return rng.choice(_PROFESSIONS)
            case "book":
                return f"The {rng.choice(_BOOK_ADJECTIVES)} {rng.choice(_BOOK_NOUNS)}"
        raise ValueError(f"unknown entity kind {kind!r}")

    def draw(self, kind: str) -> str:
        """A value of ``kind``; names (not years, numbers or colours) are never repeated."""
        value = self._draw(kind)
        if kind in _NAME_KINDS:
            while value in self._used:
                value = self._draw(kind)
            self._used.add(value)
        return value


def _render(template: str, values: dict[str, str]) -> tuple[str, dict[str, int]]:
    """Fill ``template`` and return where each slot's value starts in the result."""
    parts: list[str] = []
    starts: dict[str, int] = {}
    length = 0
    for literal, slot, _, _ in string.Formatter().parse(template):
        parts.append(literal)
        length += len(literal)
        if slot is not None:
            starts[slot] = length
            parts.append(values[slot])
            length += len(values[slot])
    return "".join(parts), starts


def _paragraph(rng: random.Random, entities: _Entities, num_questions: int, qa_prefix: str) -> dict[str, Any]:
    """One context of 2-4 fact kinds, each stated for 2-3 entity sets, and up to ``num_questions`` questions.

    Every question names an entity that occurs once in the paragraph, so it has one answer;
    a year or colour repeated elsewhere is harmless as ``answer_start`` points at this fact.
    """
    entities.new_paragraph()
    facts = [
        (kind, {slot: entities.draw(entity) for slot, entity in kind.slots.items()})
        for kind in rng.sample(_FACT_KINDS, rng.randint(2, 4))
        for _ in range(rng.randint(2, 3))
    ]
    rng.shuffle(facts)
    sentences: list[str] = []
    answerable: list[tuple[str, str, int]] = []  # (question, answer, answer_start)
    offset = 0
    for kind, values in facts:
        sentence, starts = _render(rng.choice(kind.statements), values)
        for question, answer_slot in kind.questions:
            answerable.append((question.format(**values), values[answer_slot], offset + starts[answer_slot]))
        sentences.append(sentence)
        offset += len(sentence) + 1
    asked = rng.sample(answerable, min(num_questions, len(answerable)))
    return {
        "context": " ".join(sentences),
        "qas": [
            {"id": f"{qa_prefix}-q{i}", "question": q, "answers": [{"text": a, "answer_start": s}]}
            for i, (q, a, s) in enumerate(asked)
        ],
    }


def generate_synthetic_squad(
    *, num_articles: int = 20, paragraphs_per_article: int = 5, questions_per_paragraph: int = 4, seed: int = 0
) -> dict[str, Any]:
    """SQuAD v1.1-format JSON (marked ``"synthetic": true``), the same for the same arguments."""
    rng = random.Random(seed)
    entities = _Entities(rng)
    data = []
    for a in range(num_articles):
        title = entities.draw("city")
        paragraphs = [
            _paragraph(rng, entities, questions_per_paragraph, f"syn{seed}-a{a}-p{p}")
            for p in range(paragraphs_per_article)
        ]
        data.append({"title": title, "paragraphs": paragraphs})
    return {"version": "synthetic-1", "synthetic": True, "data": data}


def write_synthetic_squad(path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write ``generate_synthetic_squad(**kwargs)`` to ``path`` (parents created) and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(generate_synthetic_squad(**kwargs)), encoding="utf-8")
    return path
