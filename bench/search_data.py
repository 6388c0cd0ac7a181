"""What the search benches share: the held-out articles, bench.supernet's models, XQuAD-en scoring, logging.

``bench.search`` uses them to run its jobs and ``bench.search_report`` to score the chosen model;
``bench.refine`` and ``bench.predictor`` work on the same data the same way.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def heldout_file(train_file: str, fraction: float, seed: int, out: Path) -> tuple[Path, int, list[str]]:
    """The held-out articles of ``train_file`` as a SQuAD file (the split bench.teacher/supernet use)."""
    from core.qa.squad import load_squad, split_by_article

    _, held = split_by_article(load_squad(train_file), fraction, seed=seed)
    titles = sorted({e.title for e in held})
    raw = json.loads(Path(train_file).read_text())
    raw["data"] = [a for a in raw["data"] if a["title"] in titles]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(raw))
    return out, len(held), titles


def find_teacher_and_supernet(bench_dir: Path) -> tuple[Path, dict[str, Any]]:
    results = json.loads((bench_dir / "results.json").read_text())
    return Path(results["teacher_dir"]), results


def xquad_f1(ir_dir: str, teacher: Path, xquad: str, precision: str) -> dict[str, float]:
    """F1/EM on XQuAD-en at 384/128 of a stored IR (reporting only)."""
    from core.types import SubnetConfig, TrialRequest
    from workers.pipeline import evaluate_ir

    req = TrialRequest(
        job_id="bench", trial_number=0, subnet=SubnetConfig((0,), (1,), (1,)), teacher_dir=str(teacher), train_file=xquad,
        eval_file=xquad, max_seq_length=384, doc_stride=128, max_eval_examples=None, calibration_samples=1, targets=("native",), output_dir=ir_dir,
    )  # fmt: skip
    return evaluate_ir(Path(ir_dir) / "openvino_model.xml", req, precision=precision)
