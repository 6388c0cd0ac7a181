"""The same short job on two checkouts of hwnas: did a change move any figure beyond the host's noise?

    git worktree add /tmp/hwnas-before <commit>
    .venv/bin/python -m bench.checkouts --before /tmp/hwnas-before [--after .] [--rounds 2]

A refactoring must not change what the service reports. This starts the service (``hwnas serve``,
its own SQLite store and in-process Ray) from each checkout in turn, with that checkout's code
first on ``sys.path`` and this project's virtual environment, submits one fixed job over HTTP
and collects its baselines and trials. Rounds alternate (before, after, before, after, ...), so
the spread between two runs of the same code is the host's noise, measured in the same session.

The job: a MiniLM teacher with a QA head is the base model (``--teacher``; trained once with the
after checkout's ``hwnas teacher`` when absent), so no stage trains; four sliced INT8 subnets
from a seeded random sampler on the native target, F1 on the first ``--max-eval-examples``
XQuAD-en questions. F1 and EM must be equal to the digit; speed is compared as medians.
Writes its figures between ``<!-- bench:checkouts -->`` markers in BENCHMARKS.md (``--output``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from api.server import free_port
from bench import DATA, ROOT
from bench.report import invocation, replace_section

SPEED = ("p50_ms", "p90_ms", "throughput_sps")


def _entry(checkout: Path) -> str:
    """The checkout's ``hwnas`` entry point (``cli.main`` since the redesign, ``api.cli`` before it)."""
    return "cli.main" if (checkout / "cli" / "main.py").is_file() else "api.cli"


def _hwnas(checkout: Path, *args: str, **popen: Any) -> subprocess.Popen[bytes]:
    code = f"import sys; from {_entry(checkout)} import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": str(checkout), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=checkout, env=env, **popen)


def job_spec(teacher: Path, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "name": "checkouts-bench",
        "base_model": str(teacher),
        "task": {
            "train_file": str(DATA / "squad-v1.1-train-head.json"),
            "eval_file": str(DATA / "xquad-en.json"),
            "max_seq_length": args.seq_len,
            "doc_stride": 64,
            "max_eval_examples": args.max_eval_examples,
            "calibration_samples": 64,
        },
        "search_space": {"layers": [2, 3, 4, 6], "heads": [6, 12], "ffn": [384, 768, 1536]},
        "targets": ["native"],
        "budget": {"trials": args.trials},
        "sampler": "random",
        "sampler_seed": 7,
        "predictor": {"kind": "none"},
        "trial_finetune_steps": 0,
    }


def run_once(checkout: Path, spec: dict[str, Any], log_dir: Path, label: str) -> dict[str, Any]:
    """Serve from ``checkout``, run the job, return its baselines and trials (and the wall time)."""
    port, data = free_port(), Path(tempfile.mkdtemp(prefix=f"hwnas-{label}-"))
    log = (log_dir / f"{label}.log").open("wb")
    server = _hwnas(checkout, "serve", "--data-dir", str(data), "--port", str(port), stdout=log, stderr=subprocess.STDOUT)
    began = time.monotonic()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for _ in range(240):
                try:
                    if client.get("/api/v1/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
            job_id = client.post("/api/v1/jobs", json=spec).raise_for_status().json()["id"]
            while True:
                job = client.get(f"/api/v1/jobs/{job_id}").raise_for_status().json()
                if job["status"] in ("completed", "failed", "cancelled"):
                    break
                time.sleep(2)
            if job["status"] != "completed":
                raise RuntimeError(f"{label}: job {job['status']}: {job.get('error')} (log: {log.name})")
            trials = client.get(f"/api/v1/jobs/{job_id}/trials").raise_for_status().json()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    return {"label": label, "wall_s": round(time.monotonic() - began, 1), "baselines": job["baselines"], "trials": trials}


def _rows(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """name -> figures: the two baselines and every completed trial (by its subnet, so numbering cannot hide a change)."""
    out: dict[str, dict[str, Any]] = {}
    for b in run["baselines"]:
        out[f"baseline {b['precision']}"] = {"f1": b["f1"], "em": b["exact_match"], **{k: b["measurements"][0][k] for k in SPEED}}
    for t in run["trials"]:
        if t["state"] == "completed":
            c = t["config"]
            name = f"trial {t['number']} ({len(c['layers'])}L h{max(c['heads'])} ffn{max(c['ffn'])})"
            out[name] = {"f1": t["f1"], "em": t["exact_match"], **{k: t["measurements"][0][k] for k in SPEED}}
    return out


def report(runs: list[dict[str, Any]], args: argparse.Namespace, before: Path, after: Path) -> str:
    by = {"before": [_rows(r) for r in runs if r["label"].startswith("before")], "after": [_rows(r) for r in runs if r["label"].startswith("after")]}
    names = list(by["after"][0])
    same_models = all(list(r) == names for r in by["before"] + by["after"])
    lines = [
        "## Same job before and after a change (bench.checkouts)",
        "",
        f"Command: `{invocation()}` ({datetime.now(timezone.utc):%Y-%m-%d}); before = `{_describe(before)}`, after = `{_describe(after)}`.",
        f"CPU: {_cpu()}; {args.rounds} round(s) each, alternating; job: {args.trials} sliced INT8 subnets (random sampler, seed 7), "
        f"seq {args.seq_len}, F1 on the first {args.max_eval_examples} XQuAD-en questions, native target.",
        f"Wall time per run: before {', '.join(str(r['wall_s']) for r in runs if r['label'].startswith('before'))} s; "
        f"after {', '.join(str(r['wall_s']) for r in runs if r['label'].startswith('after'))} s.",
        "",
        "| model | F1 before | F1 after | p50 ms before | p50 ms after | after/before p50 | throughput before | throughput after | after/before thr. |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    f1_equal = True
    ratios: list[float] = []
    noise: list[float] = []
    for name in names if same_models else []:
        b, a = [r[name] for r in by["before"]], [r[name] for r in by["after"]]
        f1_equal &= {x["f1"] for x in b} == {x["f1"] for x in a} and {x["em"] for x in b} == {x["em"] for x in a}
        med = {k: (statistics.median(x[k] for x in b), statistics.median(x[k] for x in a)) for k in SPEED}
        ratios.append(med["p50_ms"][1] / med["p50_ms"][0])
        for runs_of in (b, a):
            if len(runs_of) > 1:
                noise.append(max(x["p50_ms"] for x in runs_of) / min(x["p50_ms"] for x in runs_of) - 1)
        lines.append(
            f"| {name} | {b[0]['f1']:.2f} | {a[0]['f1']:.2f} | {med['p50_ms'][0]:.2f} | {med['p50_ms'][1]:.2f} | "
            f"{med['p50_ms'][1] / med['p50_ms'][0]:.3f} | {med['throughput_sps'][0]:.1f} | {med['throughput_sps'][1]:.1f} | "
            f"{med['throughput_sps'][1] / med['throughput_sps'][0]:.3f} |"
        )
    lines.append("")
    if not same_models:
        lines.append("**The two checkouts evaluated different subnets**: " + json.dumps({k: [list(r) for r in v] for k, v in by.items()}))
    else:
        lines.append(f"F1 and EM identical in every run: {'yes' if f1_equal else '**no**'}. "
                     f"Median after/before p50 ratio {statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f}); "
                     + (f"spread between runs of the same code (max/min p50 - 1): median {statistics.median(noise):.1%}, max {max(noise):.1%}."
                        if noise else "one round: no same-code spread measured (use --rounds 2)."))
    return "\n".join(lines)


def _describe(checkout: Path) -> str:
    rev = subprocess.run(["git", "-C", str(checkout), "log", "-1", "--format=%h %s"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout
    return (rev[:70] + (" + uncommitted changes" if dirty.strip() else "")) or str(checkout)


def _cpu() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), [])
    isa = "AMX" if "amx_tile" in flags else "AVX-512 VNNI" if "avx512_vnni" in flags else "AVX2"
    return f"{model}, {os.cpu_count()} CPUs, {isa}"


def ensure_teacher(path: Path, after: Path, steps: int) -> Path:
    if (path / "config.json").is_file():
        return path
    proc = _hwnas(after, "teacher", "--train-file", str(DATA / "squad-v1.1-train-head.json"), "--eval-file", str(DATA / "xquad-en.json"),
                  "-o", str(path), "--max-steps", str(steps), "--max-seq-length", "128", "--doc-stride", "64")  # fmt: skip
    if proc.wait() != 0:
        raise SystemExit(f"training the teacher into {path} failed")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", type=Path, required=True, help="a checkout of the code before the change (git worktree add ...)")
    p.add_argument("--after", type=Path, default=ROOT)
    p.add_argument("--teacher", type=Path, default=ROOT / "hwnas-data" / "bench" / "checkouts-teacher")
    p.add_argument("--teacher-steps", type=int, default=300)
    p.add_argument("--trials", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--max-eval-examples", type=int, default=300)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = p.parse_args(argv)
    before, after = args.before.resolve(), args.after.resolve()
    teacher = ensure_teacher(args.teacher.resolve(), after, args.teacher_steps)
    spec = job_spec(teacher, args)
    log_dir = Path(tempfile.mkdtemp(prefix="hwnas-checkouts-logs-"))
    runs = []
    for i in range(args.rounds):
        for label, checkout in (("before", before), ("after", after)):
            print(f"round {i + 1}: {label} ({checkout})", flush=True)
            runs.append(run_once(checkout, spec, log_dir, f"{label}-{i + 1}"))
    (log_dir / "runs.json").write_text(json.dumps(runs, indent=1))
    body = report(runs, args, before, after)
    print(body)
    replace_section(args.output, "checkouts", body)
    print(f"logs and raw figures: {log_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
