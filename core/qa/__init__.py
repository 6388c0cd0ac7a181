"""The extractive-QA task: SQuAD-format reading and validation, tokenised windows, the official metric."""
