"""The search engine benchmark: a real search on the MiniLM supernet, samplers compared, overheads.

    HF_HUB_OFFLINE=1 flock /tmp/hwnas-heavy.lock .venv/bin/python -m bench.search [--trials 40]

It runs the service in this process (real Ray, Optuna, NNCF, OpenVINO, SQLite store) and submits
jobs over HTTP, as a user would:

1. The main job (default sampler ``nsga2``, target ``native``) on the teacher and supernet that
   ``bench.supernet`` trained (reused through the service's supernet cache, same key). The
   search's objective F1 is measured on the ARTICLES of the train file that the teacher and the
   supernet never saw (``--validation-split``, the same seeded split): hyper-parameters and
   architectures are chosen on training data only. XQuAD-en is used once, afterwards, to report
   the F1 of the chosen model and of the teacher (never to choose anything).
2. Sampler comparison with real jobs (unless ``--skip-comparison``): ``nsga2``, ``tpe``, ``random`` x
   seeds at equal trials; hypervolume of each front (maximise F1, minimise p90; reference point
   F1 0 and the teacher FP32 p90). Subnets another job already evaluated on this machine are
   reused from the store (dedupe across jobs), so the comparison costs only the subnets that are
   new; ``--comparison-only`` runs it later against the kept main job. At the dozen trials that
   fit a session every sampler is still in its random start-up; ``bench.samplers`` compares them
   at the main job's budget on a surrogate built from this run's measurements.
3. Overheads from the store: coordinator time per trial as a share of trial wall time (trial wall
   time minus the build and measurement tasks' own time), and the latency predictor's mean
   absolute percentage error on predictions made before each measurement.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench import DATA, ROOT
SECTION = "search"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--supernet-bench", type=Path, default=ROOT / "hwnas-data" / "bench" / "supernet", help="bench.supernet's --out")
    p.add_argument("--train-file", default=str(DATA / "squad-v1.1-train-head.json"))
    p.add_argument("--xquad", default=str(DATA / "xquad-en.json"))
    p.add_argument("--validation-split", type=float, default=0.2, help="as bench.supernet: the held-out train articles")
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--targets", nargs="+", default=["native", "icelake"], help="the main job's targets (the first is the one compared)")
    p.add_argument("--comparison-trials", type=int, default=12)
    p.add_argument("--max-eval-examples", type=int, default=400, help="held-out questions each trial's F1 is measured on")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--samplers", nargs="+", default=["nsga2", "tpe", "random"])
    p.add_argument("--skip-comparison", action="store_true")
    p.add_argument("--comparison-only", action="store_true", help="keep the last main job (--data-dir's results.json) and run only the comparison, in the same store")
    p.add_argument("--supernet-max-steps", type=int, help="cap the job's own supernet training (a smoke run; the real run reuses bench.supernet's)")
    p.add_argument("--data-dir", type=Path, default=ROOT / "hwnas-data" / "bench" / "search")
    p.add_argument("--objective", choices=("latency", "throughput"), default="throughput",
                   help="the main job's speed objective (the goal is a throughput ratio, and Offline throughput is the steadier figure on a VM)")
    p.add_argument("--refine-top-k", type=int, default=3, help="front members refined after the search (near the F1 floor; 0: off)")
    p.add_argument("--refine-steps", type=int, default=400)
    p.add_argument("--refine-lr", type=float, default=1e-4)
    p.add_argument("--note", default="")
    p.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    return p.parse_args(argv)


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


def spec(
    args: argparse.Namespace, teacher: Path, evalf: Path, *, name: str, sampler: str, seed: int, trials: int,
    space: dict[str, Any], targets: list[str] | None = None, objective: str = "latency", refine_top_k: int = 0,
) -> dict[str, Any]:  # fmt: skip
    return {
        "name": name,
        "base_model": str(teacher),
        "task": {"train_file": args.train_file, "eval_file": str(evalf), "max_seq_length": 256, "doc_stride": 128, "calibration_samples": 300,
                 "max_eval_examples": args.max_eval_examples},
        "search_space": space,
        "targets": targets or ["native"],
        "budget": {"trials": trials},
        "sampler": sampler,
        "objective": objective,
        "refine": {"top_k": refine_top_k, "steps": args.refine_steps, "learning_rate": args.refine_lr},
        "seed": seed,
        "supernet": {"enabled": True, "epochs": 1.0, "learning_rate": 1e-4, "batch_size": 32, "random_subnets": 2, "validation_split": args.validation_split,
                     "max_steps": args.supernet_max_steps},
    }


def link_supernet(args: argparse.Namespace, job_spec: dict[str, Any], trained: Path) -> str:
    """Put bench.supernet's supernet where the service's cache looks for it, under the key the job computes;
    used only when bench.supernet trained it with exactly the job's settings (else the job trains its own)."""
    from dataclasses import asdict

    from search_spaces.base_models import read_config
    from nas.coordinator import supernet_settings
    from nas.spec import JobSpec
    from search_spaces.bert.space import BertSpace
    from workers.supernet import SUPERNET_FILE, supernet_key

    spec = JobSpec.model_validate(job_spec)
    teacher = Path(spec.base_model)
    key = supernet_key(teacher, spec.task.train_file, BertSpace.from_spec(spec.search_space, read_config(teacher)), supernet_settings(spec))
    info = json.loads((trained / SUPERNET_FILE).read_text()) if (trained / SUPERNET_FILE).is_file() else {}
    dst = args.data_dir / "supernets" / key
    if info and not dst.exists():
        # bench.supernet's supernet stands in for the job's own: the same teacher, data, space and settings,
        # possibly fewer steps (its name says so when it was cut short); the report names it
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.symlink_to(trained.resolve())
    if not dst.exists():
        log(f"no finished supernet at {trained}: the job trains its own ({asdict(supernet_settings(spec))})")
    return key


def wait(client: Any, job_id: str) -> dict[str, Any]:
    last = ""
    while True:
        job = client.get(f"/api/v1/jobs/{job_id}").raise_for_status().json()
        p = job["progress"]
        line = f"{job['name']}: {job['status']} {job['stage']} {p['completed']} done {p['failed']} failed {p['skipped']} skipped"
        if line != last:
            log(line)
            last = line
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        time.sleep(5)


def meas(row: dict[str, Any], target: str = "native") -> dict[str, Any]:
    """A trial's or a baseline's measurement on ``target``."""
    return next(m for m in row["measurements"] if m["target"] == target)


def fastest_first(objective: str, target: str = "native") -> Any:
    """Sort key: fastest first by the job's objective (Offline samples/s, or SingleStream p90)."""
    if objective == "throughput":
        return lambda t: -meas(t, target)["throughput_sps"]
    return lambda t: meas(t, target)["p90_ms"]


def refined(trials: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(refine-stage trial, the search trial it was refined from): a completed one carries
    ``f1_before_refine`` and its source's architecture; a failed one says "refinement of trial N failed"."""
    import re

    searched = [t for t in trials if t.get("f1_before_refine") is None and t["state"] == "completed"]
    pairs: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for t in trials:
        failed = re.match(r"refinement of trial (\d+) failed", t.get("error") or "")
        if t.get("f1_before_refine") is not None:
            pairs.append((t, next((s for s in searched if s["config"] == t["config"]), None)))
        elif failed:
            pairs.append((t, next((s for s in searched if s["number"] == int(failed.group(1))), None)))
    return pairs


def hypervolume(points: list[tuple[float, float]], ref_p90: float) -> float:
    """Area dominated by (F1 up, p90 down) points, bounded by F1 0 and ``ref_p90`` (Optuna's WFG)."""
    import numpy as np
    from optuna._hypervolume import compute_hypervolume

    loss = np.array([(-f1, p90) for f1, p90 in points if p90 < ref_p90 and f1 > 0], dtype=float)
    if len(loss) == 0:
        return 0.0
    return float(compute_hypervolume(loss, np.array([0.0, ref_p90]), assume_pareto=False))


def overheads(trials: list[dict[str, Any]]) -> dict[str, float]:
    """Coordinator share of trial wall time: wall (start to finish) minus the tasks' own time."""
    from datetime import datetime

    shares, walls = [], []
    for t in trials:
        s = t["stage_seconds"] or {}
        if t["state"] != "completed" or "build_started_at" not in s or "reused_from_trial" in s or t.get("f1_before_refine") is not None:
            continue
        wall = (datetime.fromisoformat(t["finished_at"]) - datetime.fromisoformat(t["started_at"])).total_seconds()
        tasks = s["build_finished_at"] - s["build_started_at"]
        tasks += sum(m["fingerprint"].get("finished_at", 0) - m["fingerprint"].get("started_at", 0) for m in t["measurements"])
        if wall > 0:
            shares.append(max(0.0, wall - tasks) / wall)
            walls.append(wall)
    return {
        "trials": len(shares),
        "median_share_pct": 100 * statistics.median(shares) if shares else float("nan"),
        "mean_share_pct": 100 * statistics.mean(shares) if shares else float("nan"),
        "median_trial_wall_s": statistics.median(walls) if walls else float("nan"),
    }


def leave_one_out(subnets: list[Any], p90: list[float], tpt: list[float], *, hidden: int = 384, min_points: int = 1
                  ) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:  # fmt: skip
    """(predicted, measured) p90 and throughput pairs of the service's predictor, each subnet predicted
    from all the others (none when fewer than ``min_points`` others)."""
    from nas.predictors.linear import LinearCostPredictor

    loo: list[tuple[float, float]] = []
    loo_tpt: list[tuple[float, float]] = []
    for i in range(len(subnets) if len(subnets) - 1 >= min_points else 0):
        rest = [j for j in range(len(subnets)) if j != i]
        model = LinearCostPredictor(base_hidden=hidden)
        model.fit([subnets[j] for j in rest], [p90[j] for j in rest], [tpt[j] for j in rest])
        pred = model.predict(subnets[i])
        loo.append((pred.p90_ms, p90[i]))
        loo_tpt.append((pred.throughput_sps, tpt[i]))
    return loo, loo_tpt


def predictor_error(trials: list[dict[str, Any]], min_points: int = 6) -> dict[str, Any]:
    """The latency predictor's error on measurements it had not seen: each prediction the search made
    before measuring (all of them, and those made from at least ``min_points`` measurements, when the
    search may act on them), and leave-one-out over the run's final measurements (one refit each)."""
    from nas.predictors.base import mape
    from core.types import SubnetConfig

    built = [
        t for t in trials
        if t["state"] == "completed" and t["measurements"] and "reused_from_trial" not in (t["stage_seconds"] or {})
        and t.get("f1_before_refine") is None  # a refined trial repeats its source's subnet
    ]  # fmt: skip
    online = [(t["predicted"]["native"], meas(t)) for t in built if t.get("predicted") and "native" in t["predicted"]]
    enough = [(p, m) for p, m in online if p.get("points", 0) >= min_points]
    subnets = [SubnetConfig.from_dict(t["config"]) for t in built]
    loo, loo_tpt = leave_one_out(subnets, [meas(t)["p90_ms"] for t in built], [meas(t)["throughput_sps"] for t in built], min_points=min_points)
    return {
        "online": mape([(p["p90_ms"], m["p90_ms"]) for p, m in online]), "online_n": len(online),
        "enough": mape([(p["p90_ms"], m["p90_ms"]) for p, m in enough]), "enough_n": len(enough), "min_points": min_points,
        "enough_tpt": mape([(p["throughput_sps"], m["throughput_sps"]) for p, m in enough]),
        "loo": mape(loo), "loo_tpt": mape(loo_tpt), "loo_n": len(loo),
    }


def xquad_f1(ir_dir: str, teacher: Path, xquad: str, precision: str) -> dict[str, float]:
    """F1/EM on XQuAD-en at 384/128 of a stored IR (reporting only)."""
    from core.types import SubnetConfig, TrialRequest
    from workers.pipeline import evaluate_ir

    req = TrialRequest(
        job_id="bench", trial_number=0, subnet=SubnetConfig((0,), (1,), (1,)), teacher_dir=str(teacher), train_file=xquad,
        eval_file=xquad, max_seq_length=384, doc_stride=128, max_eval_examples=None, calibration_samples=1, targets=("native",), output_dir=ir_dir,
    )  # fmt: skip
    return evaluate_ir(Path(ir_dir) / "openvino_model.xml", req, precision=precision)


def main(argv: list[str] | None = None) -> int:
    import httpx

    from api.server import ServiceThread, free_port
    from nas.config import Settings

    args = parse_args(argv)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    teacher, sn_results = find_teacher_and_supernet(args.supernet_bench)
    space = sn_results["settings"]["space"]
    evalf, n_held, titles = heldout_file(args.train_file, args.validation_split, 0, args.data_dir / "heldout.json")
    log(f"teacher {teacher}; held-out articles {titles} ({n_held} questions) -> {evalf}")
    settings = Settings(data_dir=args.data_dir, port=free_port())
    out: dict[str, Any] = {"started": started, "teacher": str(teacher), "heldout_questions": n_held, "heldout_titles": titles}
    t0 = time.perf_counter()
    if args.comparison_only:
        out = json.loads((args.data_dir / "results.json").read_text())
        args.trials = out["job"]["spec"]["budget"]["trials"]  # the report describes the main job kept
    with ServiceThread(settings) as url, httpx.Client(base_url=url, timeout=120) as c:
        if not args.comparison_only:
            main_spec = spec(args, teacher, evalf, name=f"bench main nsga2 x{args.trials}", sampler="nsga2", seed=0, trials=args.trials, space=space, targets=args.targets,
                             objective=args.objective, refine_top_k=args.refine_top_k)
            key = link_supernet(args, main_spec, Path(sn_results["supernet_dir"]))
            out["supernet_reused"] = (args.data_dir / "supernets" / key).is_symlink()
            out["supernet_source"] = Path(sn_results["supernet_dir"]).name
            log(f"supernet cache key {key} (reused from bench.supernet: {out['supernet_reused']})")
            job = wait(c, c.post("/api/v1/jobs", json=main_spec).raise_for_status().json()["id"])
            out["main_wall_s"] = time.perf_counter() - t0
            trials = c.get(f"/api/v1/jobs/{job['id']}/trials").json()
            fronts = {t: c.get(f"/api/v1/jobs/{job['id']}/pareto", params={"target": t}).json() for t in args.targets}
            out["job"], out["trials"], out["front"], out["fronts"] = job, trials, fronts["native"], fronts
            out["data_dir"] = str(args.data_dir)
        job = out["job"]
        comparison: dict[str, list[float]] = {}
        if not args.skip_comparison:
            t1 = time.perf_counter()
            ref = next(meas(b)["p90_ms"] for b in job["baselines"] if b["precision"] == "fp32")
            for sampler in args.samplers:
                for seed in range(args.seeds):
                    s = spec(args, teacher, evalf, name=f"bench {sampler} seed {seed}", sampler=sampler, seed=0, trials=args.comparison_trials, space=space)
                    s["sampler_seed"] = seed  # the same teacher, supernet and data; only the sampler's seed differs
                    cj = wait(c, c.post("/api/v1/jobs", json=s).raise_for_status().json()["id"])
                    ts = [t for t in c.get(f"/api/v1/jobs/{cj['id']}/trials").json() if t["state"] == "completed"]
                    pts = [(t["f1"], meas(t)["p90_ms"]) for t in ts]
                    comparison.setdefault(sampler, []).append(hypervolume(pts, ref))
                    log(f"{sampler} seed {seed}: hypervolume {comparison[sampler][-1]:.1f}")
            out["comparison_wall_s"] = time.perf_counter() - t1
        out["comparison"] = comparison
    (args.data_dir / "results.json").write_text(json.dumps(out, indent=2, default=str))
    report(args, out, teacher)
    return 0


def report(args: argparse.Namespace, out: dict[str, Any], teacher: Path) -> None:
    from bench.report import invocation, replace_section

    job, trials, front = out["job"], out["trials"], out["front"]
    base = {b["precision"]: b for b in job["baselines"]}
    m32, m8 = meas(base["fp32"]), meas(base["int8"])
    floor = 0.99 * base["fp32"]["f1"]
    objective = job["spec"].get("objective", "latency")
    faster = fastest_first(objective)
    ok = [t for t in front["trials"] if t["f1"] >= floor]
    best = min(ok, key=faster) if ok else None
    over = overheads(trials)
    pe = predictor_error(trials)
    pairs = refined(trials)
    fp = m8["fingerprint"]
    rows = []
    for t in sorted(front["trials"], key=faster):
        m = meas(t)
        rows.append(
            f"| {t['number']}{' (refined)' if t.get('f1_before_refine') is not None else ''} | {len(t['config']['layers'])} | {'/'.join(map(str, t['config']['heads']))} | "
            f"{'/'.join(map(str, t['config']['ffn']))} | {t['f1']:.1f} | {m['p90_ms']:.2f} | {m['throughput_sps']:.1f} | "
            f"{'yes' if t['f1'] >= floor else 'no'} |"
        )
    arts = args.data_dir / "artifacts" / job["id"]
    xq: dict[str, dict[str, float]] = {}
    if best is not None:
        log("XQuAD-en (reporting only): teacher FP32, teacher INT8, best subnet INT8")
        for name, ir, precision in (("teacher FP32", "baseline-fp32", "fp32"), ("teacher INT8", "baseline-int8", "int8"), ("best subnet INT8", f"trial-{best['number']}", "int8")):
            xq[name] = xquad_f1(str(arts / ir), teacher, args.xquad, precision)
    counts = job["progress"]
    lines = [
        "## Search engine: a real search on the MiniLM supernet",
        "",
        f"Command: `{invocation()}` "
        f"(started {out['started']}). {args.note}",
        "",
        f"Machine: {fp.get('cpu_model_name')} [{fp.get('microarchitecture')}], {fp.get('logical_cpus')} logical CPUs, OpenVINO {fp.get('openvino_version')}, "
        f"NNCF {fp.get('nncf_version')}. Target `native`; SingleStream b=1 and Offline b=16 at seq {m8['seq_len']}.",
        "",
        f"Teacher: `{teacher}` (bench.supernet's, trained on the train slice minus {len(out['heldout_titles'])} held-out articles); "
        f"the search's F1 is on the first {args.max_eval_examples} questions of those held-out articles ({out['heldout_questions']} in all), never on XQuAD.",
        "",
        f"Main job: sampler nsga2, objective {objective} (F1 up, {'Offline samples/s up' if objective == 'throughput' else 'SingleStream p90 down'}), {args.trials} trials, {counts['completed']} completed, {counts['failed']} failed, {counts['skipped']} skipped by the predictor"
        f"{f' (the counts include the {len(pairs)} refine-stage trials)' if pairs else ''}; "
        f"wall time {out['main_wall_s'] / 60:.1f} min ({'the supernet reused from bench.supernet: ' + str(out.get('supernet_source')) if out.get('supernet_reused') else 'including training its own supernet'}).",
        "",
        "| | F1 (held-out) | SingleStream p90 | Offline samples/s |",
        "| --- | ---: | ---: | ---: |",
        f"| teacher FP32 | {base['fp32']['f1']:.1f} | {m32['p90_ms']:.2f} ms | {m32['throughput_sps']:.1f} |",
        f"| teacher INT8 | {base['int8']['f1']:.1f} | {m8['p90_ms']:.2f} ms | {m8['throughput_sps']:.1f} |",
    ]
    if best is not None:
        bm = meas(best)
        lines += [
            f"| fastest subnet with F1 >= 99% of the teacher FP32 (trial {best['number']}) | {best['f1']:.1f} | {bm['p90_ms']:.2f} ms | {bm['throughput_sps']:.1f} |",
            "",
            f"Its speed-ups, measured in the same run: Offline throughput **{bm['throughput_sps'] / m32['throughput_sps']:.2f}x** the teacher FP32 "
            f"and {bm['throughput_sps'] / m8['throughput_sps']:.2f}x the teacher INT8; SingleStream p90 {m32['p90_ms'] / bm['p90_ms']:.2f}x and "
            f"{m8['p90_ms'] / bm['p90_ms']:.2f}x lower. Goal: 5x the teacher FP32 throughput at 99% of its F1.",
        ]
    else:
        lines += ["", f"No front member reached 99% of the teacher FP32 F1 ({floor:.1f})."]
    lines += [
        "",
        f"Pareto front ({len(front['trials'])} trials, F1 floor {floor:.1f}):",
        "",
        "| trial | layers | heads per layer | FFN per layer | F1 | p90 ms | samples/s | >= 99% |",
        "| ---: | ---: | --- | --- | ---: | ---: | ---: | --- |",
        *rows,
        "",
        f"Overhead: coordinator and scheduling time per trial, median {over['median_share_pct']:.2f}% (mean {over['mean_share_pct']:.2f}%) of the trial's wall time "
        f"({over['trials']} built trials, median trial {over['median_trial_wall_s']:.1f} s; target under 2%). "
        f"Latency predictor (p90; target under 5% mean absolute percentage error): {pe['enough']:.2f}% on the {pe['enough_n']} predictions the search made "
        f"from at least {pe['min_points']} measurements before measuring ({pe['online']:.2f}% on all {pe['online_n']}, the first ones from the baseline alone); "
        f"leave-one-out over the run's {pe['loo_n']} measured subnets: {pe['loo']:.2f}% (Offline throughput: {pe['enough_tpt']:.2f}% online, {pe['loo_tpt']:.2f}% leave-one-out).",
    ]
    if pairs:
        rs = job["spec"].get("refine", {})
        faster = "front members faster than the fastest one at the floor"
        chosen = {"fastest_reachable": f"{faster}, the fastest within {rs.get('max_gap', 12.0):g} F1 of the floor first",
                  "near_floor": f"{faster}, closest to the floor first", "most_accurate": "most accurate feasible front members"}
        policy = rs.get("policy", "fastest_reachable")
        lines += ["", f"Refine stage ({policy}: the {rs.get('top_k')} {chosen.get(policy, 'front members')}; "
                  f"each distilled standalone from the teacher for {rs.get('steps')} steps of batch 16 at lr {rs.get('learning_rate')}, then INT8, F1 and speed again, as a new trial):", "",
                  "| trial | from trial | layers | F1 before | F1 after | p90 ms | samples/s | >= 99% | refine wall s |", "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
        for t, src in pairs:
            if t["state"] != "completed":
                lines.append(f"| {t['number']} | {src['number'] if src else '?'} | {len(t['config']['layers'])} | | failed: {t.get('error')} | | | | |")
                continue
            m, st = meas(t), t["stage_seconds"] or {}
            lines.append(f"| {t['number']} | {src['number'] if src else '?'} | {len(t['config']['layers'])} | {t['f1_before_refine']:.1f} | {t['f1']:.1f} | {m['p90_ms']:.2f} | "
                         f"{m['throughput_sps']:.1f} | {'yes' if t['f1'] >= floor else 'no'} | {st.get('build_finished_at', 0) - st.get('build_started_at', 0):.0f} |")
    if xq:
        lines += ["", "XQuAD-en (1,190 questions, seq 384 / stride 128), measured once after the search, for reporting only:", "",
                  "| model | F1 | EM |", "| --- | ---: | ---: |"]
        lines += [f"| {k} | {v['f1']:.1f} | {v['exact_match']:.1f} |" for k, v in xq.items()]
    if out["comparison"]:
        lines += ["", f"Sampler comparison at {args.comparison_trials} trials per job, the first {out['job']['spec'].get('anchor_trials', 4)} the anchors every job shares "
                  f"({out.get('comparison_wall_s', float('nan')) / 60:.1f} min; subnets already measured in this store are reused): "
                  "hypervolume of F1 up / p90 down, reference F1 0 and the teacher FP32 p90; higher is better.", "",
                  "| sampler | seeds | hypervolume per seed | median |", "| --- | ---: | --- | ---: |"]
        for sampler, hv in out["comparison"].items():
            lines.append(f"| {sampler} | {len(hv)} | {', '.join(f'{v:.1f}' for v in hv)} | {statistics.median(hv):.1f} |")
    replace_section(args.output, SECTION, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
