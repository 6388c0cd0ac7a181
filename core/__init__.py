"""The ground floor: the wire-format types and the QA task (SQuAD reading, features, metric).

Every layer may import it; it imports nothing of the project (an import-linter contract holds this).
"""
