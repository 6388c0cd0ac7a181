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
import sys
import time
from pathlib import Path
from typing import Any

from bench import DATA, ROOT
from bench.search_data import find_teacher_and_supernet, heldout_file, log
from bench.search_figures import hypervolume, meas
from bench.search_report import report


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
    from nas.stages.supernet import supernet_settings
    from nas.spec import JobSpec
    from search_spaces import space_for
    from workers.supernet import SUPERNET_FILE, supernet_key

    spec = JobSpec.model_validate(job_spec)
    teacher = Path(spec.base_model)
    key = supernet_key(teacher, spec.task.train_file, space_for(spec.search_space, read_config(teacher)), supernet_settings(spec))
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


if __name__ == "__main__":
    sys.exit(main())
