"""Fixtures of the worker tests: a tiny BERT QA IR shared by the benchmark and ``hwnas bench`` tests."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

SEQ_LEN = 32


@pytest.fixture(scope="session")
def tiny_ir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 64-wide BERT QA model exported the way the worker pipeline exports one."""
    import openvino as ov
    import torch
    from transformers import BertConfig, BertForQuestionAnswering

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=3000,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=128,
    )
    model = BertForQuestionAnswering(config).eval()
    example = {
        "input_ids": torch.randint(1000, 2000, (2, SEQ_LEN)),
        "attention_mask": torch.ones(2, SEQ_LEN, dtype=torch.int64),
        "token_type_ids": torch.zeros(2, SEQ_LEN, dtype=torch.int64),
    }
    with warnings.catch_warnings():
        # TracerWarnings from transformers' mask helpers: checked benign (a padded mask and
        # other shapes match PyTorch), the traced graph keeps attention_mask and dynamic dims.
        warnings.simplefilter("ignore")
        ov_model = ov.convert_model(model, example_input=example)
    assert all(p.get_partial_shape().is_dynamic for p in ov_model.inputs)  # no reshape needed
    xml = tmp_path_factory.mktemp("tiny_ir") / "openvino_model.xml"
    ov.save_model(ov_model, xml)
    return xml
