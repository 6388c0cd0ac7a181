"""BENCHMARKS.md is assembled from sections, one per benchmark script, each between its markers."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

HEADER = """# hwnas benchmarks

Figures measured on this project's development machine (2 cores; see each section's fingerprint),
each section written by the command it names. Medians and ratios come from one run; absolute
times vary between machines.
"""


def replace_section(path: Path, name: str, body: str) -> None:
    """Replace (or append) the text between ``<!-- bench:name -->`` and ``<!-- /bench:name -->``."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = path.read_text() if path.exists() else HEADER
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def publish(name: str, text: str, *, write: bool) -> None:
    """Print a benchmark's section and, unless told not to, put it in BENCHMARKS.md (``replace_section``)."""
    print(text)
    if write:
        replace_section(Path(__file__).resolve().parents[1] / "BENCHMARKS.md", name, text)


def invocation() -> str:
    """The command line that is running, as a reader would type it (``python -m bench.X args``)."""
    return f"HF_HUB_OFFLINE=1 .venv/bin/python -m bench.{Path(sys.argv[0]).stem} {shlex.join(sys.argv[1:])}".rstrip()
