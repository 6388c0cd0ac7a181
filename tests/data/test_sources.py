"""Named data sets (``squad``): fetched through ``datasets`` only when it is installed and reachable."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from core.qa.sources import DataSourceError, is_named, parse_name, resolve_data_file, to_squad_json
from core.qa.squad import load_squad

ROWS = [
    {"id": "1", "title": "Paris", "context": "Paris is in France.", "question": "Where is Paris?",
     "answers": {"text": ["France"], "answer_start": [12]}},
    {"id": "2", "title": "Paris", "context": "Paris is in France.", "question": "What is in France?",
     "answers": {"text": ["Paris", "Paris"], "answer_start": [0, 0]}},
    {"id": "3", "title": "Paris", "context": "The Seine flows there.", "question": "What flows?",
     "answers": {"text": ["The Seine"], "answer_start": [0]}},
    {"id": "4", "title": "Rome", "context": "Rome is in Italy.", "question": "Where is Rome?",
     "answers": {"text": ["Italy"], "answer_start": [11]}},
]


@pytest.fixture
def fake_datasets(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """A stand-in ``datasets`` module that records its calls and returns ROWS."""
    calls: list[tuple[str, str]] = []

    def load_dataset(hub_id: str, *, split: str) -> list[dict[str, Any]]:
        calls.append((hub_id, split))
        return ROWS

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    return calls


def test_names_and_paths() -> None:
    assert parse_name("squad") == ("squad", None)
    assert parse_name("SQuAD:Validation") == ("squad", "validation")
    assert parse_name("data/squad.json") is None and parse_name("./squad") is None
    assert is_named("squad:train") and not is_named("/tmp/squad")
    assert resolve_data_file("/some/file.json", role="train") == "/some/file.json"  # a path is not touched


def test_without_the_library_the_error_says_which_file_to_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # import fails, as when it is not installed
    with pytest.raises(DataSourceError, match="not installed.*train-v1.1.json.*instead of 'squad'"):
        resolve_data_file("squad", role="train", cache_dir=tmp_path)
    with pytest.raises(DataSourceError, match="dev-v1.1.json"):
        resolve_data_file("squad", role="eval", cache_dir=tmp_path)


def test_offline_the_error_says_which_file_to_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(hub_id: str, *, split: str) -> None:
        raise ConnectionError("Couldn't reach 'rajpurkar/squad' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=offline))
    with pytest.raises(DataSourceError, match="could not load rajpurkar/squad split 'validation'.*dev-v1.1.json"):
        resolve_data_file("squad:validation", role="train", cache_dir=tmp_path)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_unknown_split(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="unknown split 'test'"):
        resolve_data_file("squad:test", role="eval", cache_dir=tmp_path)


def test_named_set_is_written_once_as_squad_json(tmp_path: Path, fake_datasets: list[tuple[str, str]]) -> None:
    path = resolve_data_file("squad", role="eval", cache_dir=tmp_path)
    assert Path(path) == (tmp_path / "squad-validation.json").resolve()
    assert fake_datasets == [("rajpurkar/squad", "validation")]
    examples = load_squad(path)  # validates every record
    assert [e.id for e in examples] == ["1", "2", "3", "4"]
    assert examples[1].answers == ("Paris", "Paris") and examples[0].context is examples[1].context
    assert resolve_data_file("squad:validation", role="train", cache_dir=tmp_path) == path
    assert len(fake_datasets) == 1  # cached: the library is not asked again
    resolve_data_file("squad", role="train", cache_dir=tmp_path)
    assert fake_datasets[-1] == ("rajpurkar/squad", "train")


def test_to_squad_json_groups_articles_and_paragraphs() -> None:
    doc = to_squad_json(ROWS)
    assert [a["title"] for a in doc["data"]] == ["Paris", "Rome"]
    assert [len(p["qas"]) for p in doc["data"][0]["paragraphs"]] == [2, 1]
