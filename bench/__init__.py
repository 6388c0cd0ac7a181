"""Benchmarks: each module writes its section of BENCHMARKS.md (``python -m bench.<name>``).

Importing the package sets the offline defaults every benchmark needs (no model hub at run time)
and names the project root and the shared SQuAD data beside it.
"""

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "squad"
