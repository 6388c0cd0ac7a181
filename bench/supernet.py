#!/usr/bin/env python
"""Supernet benchmark: a weight-sharing supernet from the MiniLM teacher on the SQuAD train slice.

What it does, in order (every stage is cached under ``--out``; a re-run skips finished stages and
an interrupted supernet resumes from its checkpoint):

1. **Teacher**: the MiniLM QA teacher trained by the project's teacher code exactly as
   ``bench.teacher`` does (same cache directory and tag), on the train file minus
   ``--validation-split`` of its ARTICLES (or ``--teacher DIR``).
2. **Supernet** (``workers.supernet.train_supernet``, in a child process so its peak RSS is its
   own): importance reordering, then sandwich training (largest, smallest, ``--random-subnets``
   random subnets per step) with in-place KD from the teacher's logits, over ``--space``, on the
   same training articles as the teacher; bf16 autocast where the CPU has fast bf16. Wall time,
   peak RSS, and F1 of the teacher / largest / smallest subnet on the held-out train articles.
3. **Ranking**: 8 fixed subnets spread over the space; for each, F1 on the held-out articles of
   (a) the supernet slice and (b) the same subnet sliced from the importance-reordered teacher
   and distilled standalone from the teacher's logits for ``--standalone-steps`` steps. Kendall
   tau (scipy) between the two rankings.
4. **XQuAD-en** (reporting only, never used to choose anything): PyTorch FP32 F1/EM of the
   teacher and of the largest and smallest supernet subnets at 384/128.
5. Writes BENCHMARKS.md between ``<!-- bench:supernet -->`` markers (``--output``) and everything
   into ``--out``/results.json.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.supernet --quick     # smoke test (a minute or two)
    HF_HUB_OFFLINE=1 flock /tmp/hwnas-heavy.lock .venv/bin/python -m bench.supernet   # the full run
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from bench import DATA, ROOT
from bench.supernet_ranking import rank_stage, standalone_stage
from bench.supernet_report import report
from bench.supernet_stages import (
    export_checkpoint,
    heldout_stage,
    settings_from_args,
    space_from_args,
    supernet_stage,
    teacher_stage,
    xquad_stage,
)

SECTION = "supernet"

DEFAULT_SPACE = {
    "layers": [2, 3, 4, 5, 6],
    "heads": [4, 6, 8, 10, 12],
    "ffn": {"min": 256, "max": 1536, "step": 256},
    "per_layer": True,
    "layer_selection": "spread",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.supernet", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-file", default=str(DATA / "squad-v1.1-train-head.json"))
    p.add_argument("--eval-file", default=str(DATA / "xquad-en.json"))
    p.add_argument("--teacher", type=Path, help="a finished teacher directory (skips stage 1)")
    p.add_argument("--supernet", type=Path, help="a supernet directory with supernet.json (skips stage 2; e.g. one "
                   "exported from a checkpoint by --from-checkpoint)")
    p.add_argument("--from-checkpoint", type=Path, help="export this supernet training checkpoint directory as a "
                   "supernet (marked partial) into --out/supernets/<key>-stepN, then continue with it")
    p.add_argument("--peak-rss-mib", type=float, help="with --from-checkpoint: the training process's peak RSS (VmHWM)")
    p.add_argument("--teacher-epochs", type=float, default=1.0)
    p.add_argument("--teacher-lr", type=float, default=2e-4)
    p.add_argument("--teacher-batch-size", type=int, default=32)
    p.add_argument("--validation-split", type=float, default=0.2, help="fraction of train ARTICLES held out")
    p.add_argument("--space", type=json.loads, default=DEFAULT_SPACE, help="search space as JSON (job-spec form)")
    p.add_argument("--epochs", type=float, default=1.0, help="supernet epochs")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--random-subnets", type=int, default=2)
    p.add_argument("--max-seq-length", type=int, default=256)
    p.add_argument("--doc-stride", type=int, default=128)
    p.add_argument("--standalone-steps", type=int, default=40, help="distillation steps of each ranking subnet")
    p.add_argument("--standalone-batch-size", type=int, default=16)
    p.add_argument("--standalone-lr", type=float, default=3e-4)
    p.add_argument("--rank-questions", type=int, default=400, help="held-out questions the 8 ranking subnets are scored on")
    p.add_argument("--eval-max-seq-length", type=int, default=384)
    p.add_argument("--eval-doc-stride", type=int, default=128)
    p.add_argument("--max-eval-examples", type=int)
    p.add_argument("--skip-xquad", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=ROOT / "hwnas-data" / "bench" / "supernet")
    p.add_argument("--output", type=Path, help="markdown file to update (default: BENCHMARKS.md; none with --quick)")
    p.add_argument("--note", default="", help="a line added to the report (e.g. why a configuration is reduced)")
    p.add_argument("--stage", choices=("all", "standalone", "supernet"), default="all",
                   help="standalone: only the standalone distillation of the ranking subnets (needs no supernet); "
                   "supernet: stop after the teacher and the supernet (what bench.search needs), no report")
    p.add_argument("--quick", action="store_true", help="smoke test: tiny data, a few steps (not a measurement)")
    args = p.parse_args(argv)
    if args.quick:
        args.max_steps, args.batch_size, args.standalone_steps, args.standalone_batch_size = 3, 4, 2, 4
        args.max_seq_length, args.doc_stride, args.eval_max_seq_length, args.eval_doc_stride = 128, 32, 128, 32
        args.max_eval_examples = args.max_eval_examples or 10
        args.validation_split = 0.25
        args.out = args.out.with_name(args.out.name + "-quick")
    elif args.output is None:
        args.output = ROOT / "BENCHMARKS.md"
    return args


def main(argv: list[str] | None = None) -> int:
    import torch
    import transformers

    from bench.report import replace_section

    args = parse_args(argv)
    command = "HF_HUB_OFFLINE=1 " + shlex.join([".venv/bin/python", "-m", "bench.supernet", *(argv if argv is not None else sys.argv[1:])])
    started = time.perf_counter()
    if args.quick:
        shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.TemporaryDirectory(prefix="bench-supernet-")
    train_file = args.train_file
    if args.quick:
        from bench.teacher import quick_subset

        train_file = quick_subset(args.train_file, Path(tmp.name), articles=4, per_article=8)
    teacher_dir, teacher_metrics = teacher_stage(args, train_file)
    if args.stage == "standalone":
        print(json.dumps(standalone_stage(args, teacher_dir, train_file)["rows"], indent=2))
        return 0
    if args.from_checkpoint is not None:
        args.supernet = export_checkpoint(args, teacher_dir, train_file)
    if args.supernet is not None:
        supernet_dir = args.supernet
        sn = json.loads((supernet_dir / "supernet.json").read_text())["metrics"]
        if "heldout_f1_largest" not in sn:
            sn.update(heldout_stage(args, teacher_dir, supernet_dir, train_file, teacher_metrics))
    else:
        supernet_dir, sn = supernet_stage(args, teacher_dir, train_file)
    print(f"[supernet] {json.dumps(sn)}", flush=True)
    if args.stage == "supernet":
        (args.out / "results.json").write_text(json.dumps({
            "teacher_dir": str(teacher_dir), "teacher": teacher_metrics, "supernet_dir": str(supernet_dir), "supernet": sn,
            "settings": {"space": args.space}, "stage": "supernet", "command": command,
        }, indent=2, default=str))  # fmt: skip
        return 0
    rank = rank_stage(args, teacher_dir, supernet_dir, train_file)
    print(f"[rank] tau {rank['kendall_tau']:.3f}", flush=True)
    xq = None if args.skip_xquad else xquad_stage(args, teacher_dir, supernet_dir)
    space = space_from_args(args, teacher_dir)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    results = {
        "teacher_dir": str(teacher_dir),
        "teacher": teacher_metrics,
        "supernet_dir": str(supernet_dir),
        "supernet": sn,
        "rank": rank,
        "xquad": xq,
        "space_size": space.size(),
        "smallest": space.smallest().encoding(),
        "settings": {
            "space": args.space, "max_seq_length": args.max_seq_length, "doc_stride": args.doc_stride,
            "supernet": asdict(settings_from_args(args)),
            "teacher": {"epochs": args.teacher_epochs, "lr": args.teacher_lr, "batch_size": args.teacher_batch_size},
        },
        "environment": {"cpu": cpu, "threads": torch.get_num_threads(), "torch": torch.__version__,
                        "transformers": transformers.__version__, "python": platform.python_version()},
        "note": args.note,
        "bench_seconds": time.perf_counter() - started,
        "command": command,
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    body = report(results, command)
    print(body)
    if args.output is not None:
        replace_section(args.output, SECTION, body)
        print(f"wrote section '{SECTION}' of {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
