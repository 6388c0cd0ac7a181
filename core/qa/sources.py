"""Where a job's data file comes from: a local SQuAD v1.1 JSON path, or a named public data set.

A ``task.train_file`` / ``task.eval_file`` value of ``squad``, ``squad:train`` or
``squad:validation`` names SQuAD v1.1 on the Hugging Face Hub. It is fetched with the
``datasets`` library *only if that library is installed and can reach a copy* (its cache
or the Hub); hwnas does not depend on it. The split is written once as an ordinary SQuAD
v1.1 JSON file in a cache directory, so everything downstream (validation, the teacher,
trials, the cache keys) reads a plain file. Without the library, or offline without a
cached copy, the error says which file to pass instead.

A bare ``squad`` means the ``train`` split for a train file and ``validation`` for an
evaluation file. Names are reserved: to use a local file literally called ``squad``,
pass ``./squad``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal

Role = Literal["train", "eval"]


@dataclass(frozen=True)
class NamedDataset:
    hub_id: str
    splits: tuple[str, ...]
    files: dict[str, str]  # split -> the official file to download instead
    url: str


NAMED: dict[str, NamedDataset] = {
    "squad": NamedDataset(
        hub_id="rajpurkar/squad",
        splits=("train", "validation"),
        files={"train": "train-v1.1.json", "validation": "dev-v1.1.json"},
        url="https://rajpurkar.github.io/SQuAD-explorer/",
    )
}
_DEFAULT_SPLIT: dict[Role, str] = {"train": "train", "eval": "validation"}


class DataSourceError(ValueError):
    """A named data set that cannot be used here, with what to pass instead."""


def parse_name(value: str) -> tuple[str, str | None] | None:
    """``("squad", None)`` for ``squad``, ``("squad", "train")`` for ``squad:train``; None for a path."""
    name, _, split = value.strip().partition(":")
    if name.lower() not in NAMED:
        return None
    return name.lower(), (split.strip().lower() or None)


def is_named(value: str) -> bool:
    return parse_name(value) is not None


def default_cache_dir() -> Path:
    """``$HWNAS_DATA_DIR/datasets`` (the service's data directory), else ``./hwnas-data/datasets``."""
    return Path(os.environ.get("HWNAS_DATA_DIR", "hwnas-data")) / "datasets"


def resolve_data_file(value: str, *, role: Role, cache_dir: str | os.PathLike[str] | None = None) -> str:
    """The local SQuAD v1.1 JSON file behind ``value``: a path is returned unchanged.

    A named data set is fetched and converted on first use; later calls return the cached
    file without importing ``datasets``. ``DataSourceError`` explains what went wrong.
    """
    parsed = parse_name(value)
    if parsed is None:
        return value
    name, split = parsed
    dataset = NAMED[name]
    split = split or _DEFAULT_SPLIT[role]
    if split not in dataset.splits:
        raise DataSourceError(f"{value!r}: unknown split {split!r} of {name}; known: {', '.join(dataset.splits)}")
    target = Path(cache_dir if cache_dir is not None else default_cache_dir()) / f"{name}-{split}.json"
    if target.is_file():
        return str(target.resolve())
    instead = (
        f"download {dataset.files[split]} from {dataset.url} and pass its path instead of {value!r}"
    )
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError:
        raise DataSourceError(
            f"{value!r} names the {name} {split} split, which is fetched with the Hugging Face `datasets` "
            f"library, and that library is not installed; {instead}"
        ) from None
    try:
        rows = datasets.load_dataset(dataset.hub_id, split=split)
    except Exception as exc:  # offline, no cached copy, Hub error: all mean "not reachable from here"
        raise DataSourceError(
            f"{value!r}: could not load {dataset.hub_id} split {split!r} with `datasets` "
            f"(offline, or no cached copy?): {type(exc).__name__}: {exc}; {instead}"
        ) from exc
    document = to_squad_json(rows, version="1.1")
    document["source"] = f"{dataset.hub_id}:{split}"
    _write_atomically(target, document)
    return str(target.resolve())


def to_squad_json(rows: Iterable[dict[str, Any]], *, version: str = "1.1") -> dict[str, Any]:
    """Flat Hub rows (id, title, context, question, answers{text, answer_start}) -> nested SQuAD JSON.

    Articles keep the order their titles first appear in; consecutive questions on the same
    context share one paragraph.
    """
    articles: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        paragraphs = articles.setdefault(row["title"], [])
        if not paragraphs or paragraphs[-1]["context"] != row["context"]:
            paragraphs.append({"context": row["context"], "qas": []})
        answers = row["answers"]
        paragraphs[-1]["qas"].append(
            {
                "id": row["id"],
                "question": row["question"],
                "answers": [
                    {"text": text, "answer_start": int(start)}
                    for text, start in zip(answers["text"], answers["answer_start"])
                ],
            }
        )
    return {"version": version, "data": [{"title": t, "paragraphs": p} for t, p in articles.items()]}


def _write_atomically(target: Path, document: dict[str, Any]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".partial")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(document, f)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
