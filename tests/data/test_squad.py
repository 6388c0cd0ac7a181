"""SQuAD loader: a valid round trip, one clear error per malformed case, and the real files."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.qa.squad import QAExample, SquadFormatError, is_synthetic, load_squad, split_by_article

CONTEXT = "Paris is the capital of France. The Seine flows through Paris."


def _valid() -> dict[str, Any]:
    return {
        "version": "1.1",
        "data": [
            {
                "title": "Paris",
                "paragraphs": [
                    {
                        "context": CONTEXT,
                        "qas": [
                            {"id": "q1", "question": "What is the capital of France?",
                             "answers": [{"text": "Paris", "answer_start": 0}]},
                            {"id": "q2", "question": "Which river flows through Paris?",
                             "answers": [{"text": "The Seine", "answer_start": 32},
                                         {"text": "Seine", "answer_start": 36}]},
                        ],
                    }
                ],
            },
            {
                "title": "Rome",
                "paragraphs": [
                    {"context": "Rome is in Italy.",
                     "qas": [{"id": "q3", "question": "Where is Rome?",
                              "answers": [{"text": "Italy", "answer_start": 11}]}]}
                ],
            },
        ],
    }


def _write(tmp_path: Path, doc: Any, name: str = "squad.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_round_trip(tmp_path: Path) -> None:
    examples = load_squad(_write(tmp_path, _valid()))
    assert [e.id for e in examples] == ["q1", "q2", "q3"]
    assert examples[1] == QAExample(
        "q2", "Paris", CONTEXT, "Which river flows through Paris?", ("The Seine", "Seine"), (32, 36)
    )
    assert examples[0].context is examples[1].context  # shared, not copied
    assert examples[2].title == "Rome"
    assert all(e.source == str(tmp_path / "squad.json") for e in examples)  # named in later errors
    assert pickle.loads(pickle.dumps(examples[0])).source == examples[0].source


def test_limit_keeps_first_questions(tmp_path: Path) -> None:
    path = _write(tmp_path, _valid())
    assert [e.id for e in load_squad(path, limit=2)] == ["q1", "q2"]
    assert len(load_squad(path, limit=100)) == 3
    with pytest.raises(ValueError):
        load_squad(path, limit=0)


def _qa(doc: dict[str, Any], n: int = 0) -> dict[str, Any]:
    return doc["data"][0]["paragraphs"][0]["qas"][n]


def _set(fn: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Turn an in-place edit into a function returning the edited copy of the valid document."""

    def apply(doc: dict[str, Any]) -> dict[str, Any]:
        fn(doc)
        return doc

    return apply


MALFORMED = {
    "top level not an object": (lambda d: [d], None, "the top level must be an object, got an array"),
    "no data key": (_set(lambda d: d.pop("data")), None, "missing key 'data'"),
    "data not a list": (_set(lambda d: d.update(data={})), None, "'data' must be an array, got an object"),
    "empty data": (_set(lambda d: d.update(data=[])), None, "no questions"),
    "article not an object": (_set(lambda d: d["data"].__setitem__(1, "x")), "data[1]", "must be an object"),
    "no title": (_set(lambda d: d["data"][0].pop("title")), "data[0]", "missing key 'title'"),
    "no paragraphs": (_set(lambda d: d["data"][1].pop("paragraphs")), "data[1]", "missing key 'paragraphs'"),
    "no context": (
        _set(lambda d: d["data"][0]["paragraphs"][0].pop("context")), "data[0].paragraphs[0]", "missing key 'context'"
    ),
    "context a number": (
        _set(lambda d: d["data"][0]["paragraphs"][0].update(context=5)),
        "data[0].paragraphs[0]",
        "'context' must be a string, got a number",
    ),
    "no qas": (_set(lambda d: d["data"][0]["paragraphs"][0].pop("qas")), "data[0].paragraphs[0]", "missing key 'qas'"),
    "no id": (_set(lambda d: _qa(d, 1).pop("id")), "data[0].paragraphs[0].qas[1]", "missing key 'id'"),
    "id a number": (_set(lambda d: _qa(d).update(id=7)), "data[0].paragraphs[0].qas[0]", "'id' must be a string"),
    "no question": (_set(lambda d: _qa(d).pop("question")), "q1", "missing key 'question'"),
    "question null": (_set(lambda d: _qa(d).update(question=None)), "q1", "'question' must be a string, got null"),
    "no answers key": (_set(lambda d: _qa(d).pop("answers")), "q1", "missing key 'answers'"),
    "no answers": (_set(lambda d: _qa(d).update(answers=[])), "q1", "question has no answers"),
    "answer not an object": (_set(lambda d: _qa(d).update(answers=["Paris"])), "q1", "answer 0 must be an object"),
    "answer text missing": (_set(lambda d: _qa(d, 1)["answers"][1].pop("text")), "q2", "missing key 'text'"),
    "answer text empty": (
        _set(lambda d: _qa(d).update(answers=[{"text": "", "answer_start": 0}])), "q1", "answer 0 has empty text"
    ),
    "answer_start a string": (
        _set(lambda d: _qa(d)["answers"][0].update(answer_start="0")), "q1", "'answer_start' must be an integer"
    ),
    "answer_start a boolean": (
        _set(lambda d: _qa(d)["answers"][0].update(answer_start=False)), "q1", "got a boolean"
    ),
    "answer_start off by one": (
        _set(lambda d: _qa(d, 1)["answers"][1].update(answer_start=35)), "q2", "answer 1 'Seine' is not the context"
    ),
    "answer_start negative": (_set(lambda d: _qa(d)["answers"][0].update(answer_start=-5)), "q1", "is not the context"),
    "answer_start past the end": (
        _set(lambda d: _qa(d)["answers"][0].update(answer_start=len(CONTEXT) - 2)), "q1", "is not the context"
    ),
    "answer case differs": (_set(lambda d: _qa(d)["answers"][0].update(text="paris")), "q1", "is not the context"),
    "answer extra space": (_set(lambda d: _qa(d)["answers"][0].update(text=" Paris")), "q1", "is not the context"),
    "duplicate id": (_set(lambda d: _qa(d, 1).update(id="q1")), "q1", "duplicate question id"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_file_names_file_record_and_problem(tmp_path: Path, case: str) -> None:
    edit, record_id, problem = MALFORMED[case]
    path = _write(tmp_path, edit(copy.deepcopy(_valid())))
    with pytest.raises(SquadFormatError) as info:
        load_squad(path)
    err = info.value
    assert err.path == str(path)
    assert err.record_id == record_id
    assert problem in err.problem
    where = str(path) if record_id is None else f"{path}: record {record_id}"
    assert str(err) == f"{where}: {err.problem}"


def test_invalid_json_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"data": [\n  {"title": "x",}\n]}', encoding="utf-8")
    with pytest.raises(SquadFormatError, match=r"broken\.json: not valid JSON: .* at line 2 column 17") as info:
        load_squad(path)
    assert info.value.record_id is None


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(SquadFormatError, match="absent.json: cannot read file"):
        load_squad(path)
    with pytest.raises(SquadFormatError):
        is_synthetic(path)


def test_error_survives_pickling() -> None:
    err = pickle.loads(pickle.dumps(SquadFormatError("f.json", "q1", "bad")))
    assert (err.path, err.record_id, err.problem, str(err)) == ("f.json", "q1", "bad", "f.json: record q1: bad")


def test_is_synthetic(tmp_path: Path) -> None:
    assert not is_synthetic(_write(tmp_path, _valid(), "real.json"))
    assert is_synthetic(_write(tmp_path, {**_valid(), "synthetic": True}, "synthetic.json"))
    assert not is_synthetic(_write(tmp_path, {**_valid(), "synthetic": "yes"}, "odd.json"))


@pytest.mark.parametrize(("name", "count"), [("squad-v1.1-train-head.json", 4370), ("xquad-en.json", 1190)])
def test_real_files_load(real_squad_dir: Path, name: str, count: int) -> None:
    examples = load_squad(real_squad_dir / name)
    assert len(examples) == count
    assert len({e.id for e in examples}) == count
    assert all(e.context[s : s + len(a)] == a for e in examples for a, s in zip(e.answers, e.answer_starts))
    assert not is_synthetic(real_squad_dir / name)


def _articles(n: int, questions: int = 3) -> list[QAExample]:
    return [
        QAExample(f"a{a}-q{q}", f"article {a}", f"context {a}", f"question {q}?", ("context",), (0,), "f.json")
        for a in range(n)
        for q in range(questions)
    ]


def test_split_by_article_holds_out_whole_articles() -> None:
    examples = _articles(20)
    kept, held = split_by_article(examples, 0.1, seed=0)
    assert len({e.title for e in held}) == 2 and len(held) == 6 and len(kept) == 54
    assert not {e.context for e in kept} & {e.context for e in held}  # no context on both sides
    assert [e.id for e in kept] == [e.id for e in examples if e in kept]  # order kept
    assert split_by_article(examples, 0.1, seed=0) == (kept, held)  # seeded
    assert split_by_article(examples, 0.1, seed=1) != (kept, held)
    kept2, held2 = split_by_article(_articles(2), 0.01)
    assert len({e.title for e in held2}) == 1 and len({e.title for e in kept2}) == 1  # at least one each side
    with pytest.raises(ValueError, match="at least 2 articles"):
        split_by_article(_articles(1), 0.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_by_article(examples, 1.0)


def test_split_of_the_real_train_slice(real_squad_dir: Path) -> None:
    kept, held = split_by_article(load_squad(real_squad_dir / "squad-v1.1-train-head.json"), 0.1)
    assert len({e.title for e in held}) == 1 and len({e.title for e in kept}) == 11  # 12 articles
    assert not {e.title for e in kept} & {e.title for e in held}
