"""Load and validate SQuAD v1.1 and v2.0 question-answering files.

SQuAD v2.0 adds unanswerable questions: ``"is_impossible": true`` with an empty ``answers`` list
(an empty list is also read as unanswerable in a file whose ``version`` is ``v2.0``). A v1.1 file
reads exactly as before; ``squad_version`` says which of the two a file is.

Every problem is reported as a ``SquadFormatError`` naming the file and the record, so a
bad or hand-edited file fails at load time in one readable line instead of surfacing later
as a shape error inside tokenisation, training or scoring.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class SquadFormatError(ValueError):
    """A SQuAD file that cannot be used: which file, which record (if any), and what is wrong."""

    def __init__(self, path: str | os.PathLike[str], record_id: str | None, problem: str) -> None:
        self.path = os.fspath(path)
        self.record_id = record_id
        self.problem = problem
        where = self.path if record_id is None else f"{self.path}: record {record_id}"
        super().__init__(f"{where}: {problem}")

    def __reduce__(self) -> tuple[type, tuple[str, str | None, str]]:
        # Keeps the error picklable (Ray ships exceptions between processes).
        return (type(self), (self.path, self.record_id, self.problem))


@dataclass(frozen=True, slots=True)
class QAExample:
    """One question with its gold answers; ``context`` is shared by all questions of a paragraph.

    ``source`` is the file it was read from (shared string, not compared): later checks, such
    as a question too long for the model's windows, name the file as well as the record.
    An unanswerable question (SQuAD v2.0) has no answers: ``answers == answer_starts == ()``.
    """

    id: str
    title: str
    context: str
    question: str
    answers: tuple[str, ...]
    answer_starts: tuple[int, ...]
    source: str = field(default="", compare=False, repr=False)

    @property
    def is_impossible(self) -> bool:
        """SQuAD v2.0's unanswerable question: no gold answer in its context."""
        return not self.answers


_JSON_NAMES = {dict: "an object", list: "an array", str: "a string", int: "an integer", bool: "a boolean"}


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _check_type(value: Any, kind: type, what: str, path: str, record: str | None) -> Any:
    # bool is an int in Python but never a valid offset in JSON data.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SquadFormatError(path, record, f"{what} must be {_JSON_NAMES[kind]}, got {_json_type(value)}")
    return value


def _field(obj: dict[str, Any], key: str, kind: type, path: str, record: str | None) -> Any:
    if key not in obj:
        raise SquadFormatError(path, record, f"missing key {key!r}")
    return _check_type(obj[key], kind, repr(key), path, record)


def _read_json(path: str | os.PathLike[str]) -> Any:
    """Parse the whole file once; JSON and I/O errors become SquadFormatError."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise SquadFormatError(path, None, f"cannot read file: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise SquadFormatError(path, None, f"not valid UTF-8 at byte {e.start}") from e
    except json.JSONDecodeError as e:
        raise SquadFormatError(path, None, f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from e


def _is_v2_version(root: dict[str, Any]) -> bool:
    return str(root.get("version", "")).lstrip("vV") == "2.0"


def _answers(
    qa: dict[str, Any], context: str, path: str, qa_id: str, *, v2_file: bool = False
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Gold answers of one question, each checked to be exactly its slice of the context; none for an
    unanswerable question (``is_impossible: true``, or an empty list in a ``v2.0`` file)."""
    answers = _field(qa, "answers", list, path, qa_id)
    impossible = _check_type(qa["is_impossible"], bool, "'is_impossible'", path, qa_id) if "is_impossible" in qa else None
    if impossible:
        if answers:
            raise SquadFormatError(
                path, qa_id, f'an unanswerable question ("is_impossible": true) must have no answers, got {len(answers)}'
            )
        return (), ()
    if not answers:
        if impossible is None and v2_file:
            return (), ()
        raise SquadFormatError(
            path,
            qa_id,
            "question has no answers"
            + (' but "is_impossible" is false' if impossible is False else ' (a SQuAD v2.0 unanswerable question says "is_impossible": true)'),
        )
    texts: list[str] = []
    starts: list[int] = []
    for k, answer in enumerate(answers):
        answer = _check_type(answer, dict, f"answer {k}", path, qa_id)
        text = _field(answer, "text", str, path, qa_id)
        start = _field(answer, "answer_start", int, path, qa_id)
        if not text:
            raise SquadFormatError(path, qa_id, f"answer {k} has empty text")
        if not (0 <= start <= len(context) - len(text) and context.startswith(text, start)):
            found = context[max(start, 0) : max(start, 0) + len(text)]
            raise SquadFormatError(
                path, qa_id, f"answer {k} {text!r} is not the context at answer_start {start} (found {found!r})"
            )
        texts.append(text)
        starts.append(start)
    return tuple(texts), tuple(starts)


def load_squad(path: str | os.PathLike[str], *, limit: int | None = None) -> list[QAExample]:
    """Read a SQuAD v1.1 or v2.0 file into examples, validating every record it reads.

    ``limit`` keeps the first N questions (records after them are not read). The JSON is
    parsed once and each paragraph's context string is shared, not copied, by its questions.
    Unanswerable questions (v2.0) come back with no answers (``QAExample.is_impossible``).
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    name = os.fspath(path)
    root = _check_type(_read_json(name), dict, "the top level", name, None)
    v2_file = _is_v2_version(root)
    examples: list[QAExample] = []
    seen: set[str] = set()
    for a, article in enumerate(_field(root, "data", list, name, None)):
        at_article = f"data[{a}]"
        article = _check_type(article, dict, "an article", name, at_article)
        title = _field(article, "title", str, name, at_article)
        for p, paragraph in enumerate(_field(article, "paragraphs", list, name, at_article)):
            at_paragraph = f"{at_article}.paragraphs[{p}]"
            paragraph = _check_type(paragraph, dict, "a paragraph", name, at_paragraph)
            context = _field(paragraph, "context", str, name, at_paragraph)
            for q, qa in enumerate(_field(paragraph, "qas", list, name, at_paragraph)):
                at_qa = f"{at_paragraph}.qas[{q}]"
                qa = _check_type(qa, dict, "a question", name, at_qa)
                qa_id = _field(qa, "id", str, name, at_qa)
                if qa_id in seen:
                    raise SquadFormatError(name, qa_id, "duplicate question id")
                seen.add(qa_id)
                question = _field(qa, "question", str, name, qa_id)
                texts, starts = _answers(qa, context, name, qa_id, v2_file=v2_file)
                examples.append(QAExample(qa_id, title, context, question, texts, starts, name))
                if len(examples) == limit:
                    return examples
    if not examples:
        raise SquadFormatError(name, None, "the data set has no questions")
    return examples


SQUAD_V11, SQUAD_V20 = "squad-v1.1", "squad-v2.0"  # the task names of core.qa.tasks


def squad_version(path: str | os.PathLike[str]) -> str:
    """``"squad-v2.0"`` for a SQuAD v2.0 file (top-level ``"version": "v2.0"``, or any question with
    ``"is_impossible": true``), else ``"squad-v1.1"``. Reads the JSON only; ``load_squad`` validates."""
    name = os.fspath(path)
    root = _check_type(_read_json(name), dict, "the top level", name, None)
    if _is_v2_version(root):
        return SQUAD_V20
    for article in root.get("data") or ():
        for paragraph in (article.get("paragraphs") or ()) if isinstance(article, dict) else ():
            for qa in (paragraph.get("qas") or ()) if isinstance(paragraph, dict) else ():
                if isinstance(qa, dict) and qa.get("is_impossible") is True:
                    return SQUAD_V20
    return SQUAD_V11


def is_synthetic(path: str | os.PathLike[str]) -> bool:
    """True for files made by ``core.qa.synthetic`` (top-level ``"synthetic": true``)."""
    root = _read_json(path)
    return isinstance(root, dict) and root.get("synthetic") is True


def split_by_article(
    examples: Sequence[QAExample], fraction: float, *, seed: int = 0
) -> tuple[list[QAExample], list[QAExample]]:
    """(kept, held out): a seeded ``fraction`` of the ARTICLES (by title) is held out whole.

    Splitting articles rather than questions keeps every context on one side, so held-out
    scores are not inflated by paragraphs the model was trained on. At least one article
    goes to each side; the order of the questions within each side is kept.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"the held-out fraction must be between 0 and 1, got {fraction}")
    titles = list(dict.fromkeys(example.title for example in examples))
    if len(titles) < 2:
        where = (examples[0].source if examples else "") or "the training data"
        raise ValueError(f"{where}: holding out articles needs at least 2 articles (titles), found {len(titles)}")
    n_held = min(len(titles) - 1, max(1, round(fraction * len(titles))))
    held = set(random.Random(seed).sample(titles, n_held))
    return [e for e in examples if e.title not in held], [e for e in examples if e.title in held]
