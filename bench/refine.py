"""The refine stage, measured: does distilling a searched subnet standalone move it across the F1 floor?

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.refine [--steps 400] [--lr 1e-4] [--subnets 25 6 39]

On bench.supernet's teacher and supernet (run that first), with the worker functions a job's refine
stage calls (``workers.refine.refine_candidate``, ``workers.pipeline``):

1. Builds: the teacher FP32 and INT8 IRs, then for each subnet its INT8 IR as sliced from the
   supernet ("before") and after refinement: ``--steps`` steps of batch 16 distilled from the
   teacher on the supernet's TRAINING articles only (``training_articles_file``). F1 is on the first
   ``--max-eval-examples`` questions of the held-out train articles, as in bench.search; XQuAD-en is
   scored once at the end, for reporting only, for the subnets that reach the floor.
2. Speed: every IR measured back to back at the end (Offline b=16 and SingleStream b=1, seq 256,
   target ``native``), so the ratios to the teachers come from one quiet window.

The default subnets are the members of the 40-trial search's Pareto front (BENCHMARKS.md, search
section) that are faster than its fastest subnet at the floor: the candidates the refine stage
picks from (``nas.refine``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import DATA, ROOT

SECTION = "refine"
BASE_LAYERS = 6

# (layers, heads per layer, FFN per layer) of the 40-trial search's front members faster than its
# fastest subnet at the floor (trial 3: 6 layers, 10 heads, FFN 1280), by trial number
FRONT = {
    25: (6, [4, 6, 12, 12, 8, 6], [256, 1536, 1024, 1280, 1024, 1280]),
    30: (6, [4, 12, 12, 6, 8, 10], [512, 256, 768, 1280, 768, 1280]),
    6: (5, [8, 10, 10, 12, 10], [1024, 768, 768, 1536, 1024]),
    8: (5, [10, 4, 6, 12, 4], [1280, 1280, 512, 1280, 512]),
    39: (5, [6, 12, 8, 12, 6], [1536, 1024, 1280, 256, 1280]),
    7: (5, [4, 8, 4, 12, 6], [256, 1024, 512, 1280, 1536]),  # 16.8 F1 under the floor: past max_gap
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.refine", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--supernet-bench", type=Path, default=ROOT / "hwnas-data" / "bench" / "supernet", help="bench.supernet's --out")
    p.add_argument("--train-file", default=str(DATA / "squad-v1.1-train-head.json"))
    p.add_argument("--xquad", default=str(DATA / "xquad-en.json"))
    p.add_argument("--validation-split", type=float, default=0.2, help="as bench.supernet: the held-out train articles")
    p.add_argument("--max-eval-examples", type=int, default=400)
    p.add_argument("--subnets", type=int, nargs="+", default=[25, 6, 39], choices=sorted(FRONT), help="trial numbers of the front (FRONT)")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--work-dir", type=Path, default=ROOT / "hwnas-data" / "bench" / "refine")
    p.add_argument("--quiet-load", type=float, default=1.0, help="before measuring, wait until the 1-min load average is at most this")
    p.add_argument("--quiet-wait-s", type=float, default=3600, help="... for at most this long (then measure anyway, and say so)")
    p.add_argument("--measure-seconds", type=float, default=2.0, help="minimum seconds per scenario and repeat")
    p.add_argument("--seq-len", type=int, default=256, help="window length built, scored and measured")
    p.add_argument("--measure-iterations", type=int, default=50, help="at least this many calls per measurement")
    p.add_argument("--max-repeats", type=int, default=5, help="measurement repeats until the medians settle (at most)")
    p.add_argument("--throughput-batch", type=int, default=16)
    p.add_argument("--calibration", type=int, default=300, help="NNCF calibration windows")
    p.add_argument("--reuse", action="store_true", help="report the last run's results.json again (no builds, no measurements)")
    p.add_argument("--note", default="")
    p.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    return p.parse_args(argv)


def wait_for_quiet(threshold: float, max_wait_s: float, log: Any) -> float:
    """Block until the 1-minute load average is at most ``threshold`` (the builds are over, so what is
    left is other work on the host), for at most ``max_wait_s``; returns the load when measuring starts."""
    import os

    deadline = time.monotonic() + max_wait_s
    load = os.getloadavg()[0]
    while load > threshold and time.monotonic() < deadline:
        log(f"waiting for a quiet host: 1-min load average {load:.2f} > {threshold}")
        time.sleep(30)
        load = os.getloadavg()[0]
    return load


def subnet_of(number: int) -> Any:
    from core.types import SubnetConfig
    from search_spaces.bert.space import kept_layers

    n, heads, ffn = FRONT[number]
    return SubnetConfig(kept_layers(BASE_LAYERS, n), tuple(heads), tuple(ffn))


class BuildCache:
    """The F1 of every IR this work directory holds, with the settings it was built under
    (``builds.json``, written after each build): a re-run, or a run that adds subnets, builds only
    what is missing and still measures every IR back to back."""

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path, self.settings = path, settings
        kept = json.loads(path.read_text()) if path.is_file() else {}
        self.rows: dict[str, Any] = kept.get("rows", {}) if kept.get("settings") == settings else {}

    def get(self, name: str, ir_dir: Path) -> dict[str, Any] | None:
        """The kept row, if its IR is still there."""
        from workers.export import IR_XML

        return self.rows.get(name) if (ir_dir / IR_XML).is_file() else None

    def put(self, name: str, row: dict[str, Any]) -> dict[str, Any]:
        self.rows[name] = row
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"settings": self.settings, "rows": self.rows}, indent=2))
        tmp.replace(self.path)
        return row


def main(argv: list[str] | None = None) -> int:
    from bench.search_data import find_teacher_and_supernet, heldout_file, log, xquad_f1
    from core.types import TrialRequest
    from search_spaces import full_subnet
    from search_spaces.base_models import read_config
    from workers.pipeline import build_candidate, measure_candidate
    from workers.refine import refine_candidate
    from workers.training_articles import training_articles_file

    args = parse_args(argv)
    saved = args.work_dir / "results.json"
    if args.reuse:
        kept = json.loads(saved.read_text())
        args.note = kept.get("note", args.note)
        report(args, kept["rows"], kept["floor"], kept["xq_teacher"], kept["started"], kept["wall_s"], Path(kept["teacher"]), kept["n_held"])
        return 0
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    t0 = time.perf_counter()
    teacher, sn = find_teacher_and_supernet(args.supernet_bench)
    evalf, n_held, titles = heldout_file(args.train_file, args.validation_split, 0, args.work_dir / "heldout.json")
    log(f"teacher {teacher}; supernet {sn['supernet_dir']}; held-out articles {titles} ({n_held} questions)")

    def request(name: str, subnet: Any, *, supernet: bool) -> TrialRequest:
        return TrialRequest(
            job_id="bench-refine", trial_number=0, subnet=subnet, teacher_dir=str(teacher), train_file=args.train_file,
            eval_file=str(evalf), max_seq_length=args.seq_len, doc_stride=args.seq_len // 2, max_eval_examples=args.max_eval_examples,
            calibration_samples=args.calibration, targets=("native",), output_dir=str(args.work_dir / name),
            supernet_dir=sn["supernet_dir"] if supernet else None, finetune_lr=args.lr, measure_seconds=args.measure_seconds,
            measure_iterations=args.measure_iterations, measure_max_repeats=args.max_repeats, throughput_batch=args.throughput_batch,
        )  # fmt: skip

    rows: list[dict[str, Any]] = []
    builds = BuildCache(args.work_dir / "builds.json", {"teacher": str(teacher), "supernet": sn["supernet_dir"], "steps": args.steps,
                                                        "lr": args.lr, "max_eval_examples": args.max_eval_examples})  # fmt: skip
    full = full_subnet(read_config(Path(teacher)))
    for name, precision in (("teacher FP32", "fp32"), ("teacher INT8", "int8")):
        req = request(f"baseline-{precision}", full, supernet=False)
        row = builds.get(name, Path(req.output_dir))
        if row is None:
            built = build_candidate(req, precision=precision)
            row = builds.put(name, {"name": name, "layers": BASE_LAYERS, "precision": precision, "f1": built.f1, "em": built.exact_match})
        log(f"{name}: F1 {row['f1']:.2f}")
        rows.append(row | {"req": req})
    for number in args.subnets:
        sub = subnet_of(number)
        req = request(f"trial-{number}", sub, supernet=True)
        refined_dir = args.work_dir / f"trial-{number}-refined"
        row = builds.get(f"trial {number}", refined_dir)
        if row is None:
            before = build_candidate(replace(req, train_file=training_articles_file(req)))  # calibrated as the refined one is
            t1 = time.perf_counter()
            after = refine_candidate(replace(req, output_dir=str(refined_dir)), args.steps, before=before)
            row = builds.put(f"trial {number}", {
                "name": f"trial {number}", "number": number, "layers": len(sub.layers), "precision": "int8", "f1": after.f1, "em": after.exact_match,
                "f1_before": before.f1, "em_before": before.exact_match, "refine_s": time.perf_counter() - t1, "distil_s": after.stage_seconds.get("distil"),
            })  # fmt: skip
        log(f"trial {number}: F1 {row['f1_before']:.2f} -> {row['f1']:.2f} ({row['refine_s']:.0f} s)")
        rows.append(row | {"req": replace(req, output_dir=str(refined_dir))})
    load = wait_for_quiet(args.quiet_load, args.quiet_wait_s, log)
    log(f"measuring every IR back to back (1-min load average {load:.2f})")
    for r in rows:
        m = measure_candidate(r["req"], "native", precision=r["precision"])
        r["p90"], r["sps"], r["fp"] = m.p90_ms, m.throughput_sps, m.fingerprint
    floor = 0.99 * rows[0]["f1"]
    for r in rows[2:]:
        if r["f1"] >= floor:
            r["xquad"] = xquad_f1(r["req"].output_dir, teacher, args.xquad, "int8")
    xq_teacher = {p: xquad_f1(r["req"].output_dir, teacher, args.xquad, p) for r, p in ((rows[0], "fp32"), (rows[1], "int8"))} if any("xquad" in r for r in rows) else {}
    wall_s = time.perf_counter() - t0
    args.note = f"{args.note} Measured at a 1-min load average of {load:.2f}.".strip()
    rows = [{k: v for k, v in r.items() if k != "req"} | {"ir_dir": r["req"].output_dir} for r in rows]
    saved.write_text(json.dumps({"rows": rows, "floor": floor, "xq_teacher": xq_teacher, "started": started, "wall_s": wall_s,
                                 "teacher": str(teacher), "n_held": n_held, "note": args.note}, indent=2, default=str))  # fmt: skip
    report(args, rows, floor, xq_teacher, started, wall_s, teacher, n_held)
    return 0


def report(args: argparse.Namespace, rows: list[dict[str, Any]], floor: float, xq_teacher: dict[str, Any], started: str,
           wall_s: float, teacher: Path, n_held: int) -> None:  # fmt: skip
    from bench.report import invocation, replace_section

    fp32, int8 = rows[0], rows[1]
    fp = int8["fp"]
    lines = [
        "## Refine stage: distilling the searched subnets nearest the floor",
        "",
        f"Command: `{invocation().replace(' --reuse', '')}` (started {started}; {wall_s / 60:.1f} min). {args.note}",
        "",
        f"Machine: {fp.get('cpu_model_name')} [{fp.get('microarchitecture')}], {fp.get('logical_cpus')} logical CPUs, OpenVINO {fp.get('openvino_version')}. "
        f"Target `native`; SingleStream b=1 and Offline b={args.throughput_batch} at seq {args.seq_len}, every IR measured back to back at the end of the run.",
        "",
        f"Teacher and supernet: bench.supernet's (`{Path(str(teacher)).name}`). F1 on the first {args.max_eval_examples} questions of the held-out train articles "
        f"({n_held} in all), never on XQuAD. Each subnet is sliced from the supernet and INT8-quantized as a search trial is (\"before\"), then refined "
        f"as the job's refine stage does: {args.steps} steps of batch 16 distilled from the teacher (KD + labels, peak lr {args.lr:g}) on the supernet's "
        f"training articles only, then INT8 and F1 again (\"after\"). The subnets are the 40-trial search's front members faster than its fastest subnet at the floor "
        f"(its trial numbers).",
        "",
        "| model | layers | F1 before | F1 after | >= 99% (F1 " + f"{floor:.1f})" + " | Offline samples/s | vs FP32 / INT8 teacher | SingleStream p90 ms | refine wall s |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        layers = r["layers"]
        refine_s = f"{r['refine_s']:.0f}" if "refine_s" in r else ""
        before = f"{r['f1_before']:.1f}" if "f1_before" in r else ""
        ok = "yes" if r["f1"] >= floor else "no"
        lines.append(
            f"| {r['name']} | {layers} | {before} | {r['f1']:.1f} | {ok} | {r['sps']:.1f} | {r['sps'] / fp32['sps']:.2f}x / {r['sps'] / int8['sps']:.2f}x | "
            f"{r['p90']:.2f} | {refine_s} |"
        )
    reached = [r for r in rows[2:] if r["f1"] >= floor]
    if reached:
        best = max(reached, key=lambda r: r["sps"])
        lines += ["", f"Fastest refined subnet at the floor: {best['name']}, **{best['sps'] / fp32['sps']:.2f}x** the teacher FP32's Offline throughput "
                  f"and {best['sps'] / int8['sps']:.2f}x the teacher INT8's, at F1 {best['f1']:.1f} (floor {floor:.1f}). Goal: 5x at 99% of the FP32 F1."]
        scored = [r for r in reached if "xquad" in r]
        if scored and "fp32" in xq_teacher:
            xq_floor = 0.99 * xq_teacher["fp32"]["f1"]
            lines += ["", f"XQuAD-en (1,190 questions, seq 384 / stride 128), never used to choose anything; floor 0.99 x the teacher FP32's = {xq_floor:.1f}:", "",
                      "| model | F1 | EM | >= 99% |", "| --- | ---: | ---: | --- |"]  # fmt: skip
            lines += [f"| teacher {p.upper()} | {v['f1']:.1f} | {v['exact_match']:.1f} | |" for p, v in xq_teacher.items()]
            lines += [f"| {r['name']} refined (INT8) | {r['xquad']['f1']:.1f} | {r['xquad']['exact_match']:.1f} | {'yes' if r['xquad']['f1'] >= xq_floor else 'no'} |" for r in scored]
            both = [r for r in scored if r["xquad"]["f1"] >= xq_floor]
            if both:
                best = max(both, key=lambda r: r["sps"])
                lines += ["", f"Fastest refined subnet at the floor on both the held-out train articles and XQuAD-en: {best['name']}, **{best['sps'] / fp32['sps']:.2f}x** "
                          f"the teacher FP32's Offline throughput and {best['sps'] / int8['sps']:.2f}x the teacher INT8's."]  # fmt: skip
    else:
        lines += ["", f"No refined subnet reached the floor ({floor:.1f})."]
    if int8["sps"] < fp32["sps"]:
        lines += ["", f"**This host runs INT8 slower than FP32** ({int8['sps']:.1f} against {fp32['sps']:.1f} samples/s): its CPU has no VNNI "
                  "(AVX2 only), unlike every Xeon target, so the speed columns say nothing about a target; the F1 columns stand."]
    replace_section(args.output, SECTION, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
