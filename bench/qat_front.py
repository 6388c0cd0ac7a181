"""PTQ against QAT on the front subnets of a real search: the ones PTQ leaves just under the F1 floor.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.qat_front [--results hwnas-data/bench/headline/results.json]

Reads the job ``bench.headline`` ran (its teacher, its data split, its Pareto front) and takes the
``--count`` front members whose INT8 (PTQ) F1 missed the job's floor by the least: those QAT could lift
over it. Each is sliced from that job's teacher and distilled ``--distil-steps`` (the service's own
steps, ``bench.compression.Builder``); from that one state, (a) ``--qat-steps`` more plain distillation,
its FP32 IR and NNCF PTQ INT8; (b) ``--qat-steps`` of QAT instead. Both INT8 models had the same
training, so the difference is quantization-awareness. F1 on the job's held-out train articles (the
floor's own questions; nothing here is scored on XQuAD-en). Share of PTQ's drop recovered =
(QAT - PTQ) / (FP32 - PTQ).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.report import invocation, publish

ROOT = Path(__file__).resolve().parents[1]
SECTION = "qat-front"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.qat_front", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, default=ROOT / "hwnas-data" / "bench" / "headline" / "results.json")
    p.add_argument("--count", type=int, default=2)
    p.add_argument("--distil-steps", type=int, default=100)
    p.add_argument("--qat-steps", type=int, default=60)
    p.add_argument("--qat-lr", type=float, default=5e-5, help="the job spec's default (quantization.qat_learning_rate)")
    p.add_argument("--out", type=Path, default=ROOT / "hwnas-data" / "bench" / "qat-front")
    p.add_argument("--no-write", action="store_true")
    return p.parse_args(argv)


def missed_by_least(front: list[dict[str, Any]], floor: float, count: int) -> list[dict[str, Any]]:
    """Front members under ``floor``, nearest it first (the ones a better INT8 could carry over it)."""
    return sorted((t for t in front if t["f1"] < floor), key=lambda t: floor - t["f1"])[:count]


def main(argv: list[str] | None = None) -> int:
    from bench.compression import Builder, log, ptq_vs_qat
    from core.types import SubnetConfig
    from targets import detect_cpu

    args = parse_args(argv)
    began = time.time()
    job_out = json.loads(args.results.read_text())
    job = job_out["job"]
    base = {b["precision"]: b for b in job["baselines"]}
    floor = 0.99 * base["fp32"]["f1"]
    target = job["spec"]["targets"][0]
    chosen = missed_by_least(job_out["fronts"][target]["trials"], floor, args.count)
    if not chosen:
        raise SystemExit(f"every member of the {target} front reached the floor {floor:.2f}: nothing for QAT to recover")
    task = job["spec"]["task"]
    args.out.mkdir(parents=True, exist_ok=True)
    ns = argparse.Namespace(train_file=task["train_file"], seq=task["max_seq_length"], max_eval=task["max_eval_examples"], out=args.out)
    b = Builder(Path(job_out["teacher"]), ns)
    b.req = replace(b.req, eval_file=task["eval_file"], doc_stride=task["doc_stride"], calibration_samples=task["calibration_samples"])
    rows = []
    for t in chosen:
        subnet = SubnetConfig.from_dict(t["config"])
        log(f"trial {t['number']} ({len(subnet.layers)} layers): job PTQ F1 {t['f1']:.2f}, floor {floor:.2f}")
        row = ptq_vs_qat(b, f"trial-{t['number']}", subnet, distil_steps=args.distil_steps, qat_steps=args.qat_steps, qat_lr=args.qat_lr)
        rows.append({**row, "trial": t["number"], "config": t["config"], "job_f1": t["f1"]})
    results = {"cpu": detect_cpu(), "date": time.strftime("%Y-%m-%d %H:%M"), "floor": floor, "job": job["id"], "rows": rows,
               "minutes": round((time.time() - began) / 60, 1), "args": {k: str(v) for k, v in vars(args).items()}}  # fmt: skip
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    publish(SECTION, report(results, args, task), write=not args.no_write)
    return 0


def report(results: dict[str, Any], args: argparse.Namespace, task: dict[str, Any]) -> str:
    from bench.compression_report import cpu_line, qat_cells

    lines = [
        "## PTQ vs QAT on the headline job's front (bench.qat_front)",
        "",
        f"Command: `{invocation()}` ({results['date']}, {results['minutes']} min). CPU: {cpu_line(results['cpu'])}.",
        "",
        f"Subnets: the {len(results['rows'])} members of job `{results['job']}`'s Pareto front (bench.headline) whose INT8 F1 missed the floor "
        f"({results['floor']:.2f}) by the least. Each sliced from that job's teacher and distilled {args.distil_steps} steps, then "
        f"{args.qat_steps} more: plain before NNCF PTQ, or with NNCF's fake quantizers (QAT, lr {args.qat_lr}). F1 on {task['max_eval_examples']} "
        "questions of the job's held-out train articles (the floor's questions), each IR as deployed.",
        "",
        "| trial | layers | job F1 (supernet slice, PTQ) | FP32 F1 | PTQ INT8 F1 | QAT INT8 F1 | PTQ drop | share QAT recovers | over the floor | QAT s / plain s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        over = "/".join("yes" if r[k]["f1"] >= results["floor"] else "no" for k in ("ptq", "qat"))
        lines.append(f"| {r['trial']} | {len(r['config']['layers'])} | {r['job_f1']:.2f} | {qat_cells(r)} | PTQ/QAT {over} | {r['qat_s']:.0f} / {r['plain_steps_s']:.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
