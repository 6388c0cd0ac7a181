"""The families' random models for the tests: ``bench.family_models`` (shared with ``bench.families``)."""

from bench.family_models import FAMILIES, TOKENIZER_KIND, family_config, family_tokenizer, qa_class, tiny_family_model, train_tokenizer

__all__ = ["FAMILIES", "TOKENIZER_KIND", "family_config", "family_tokenizer", "qa_class", "tiny_family_model", "train_tokenizer"]
