"""Sampler comparison at equal trials on a surrogate built from this machine's real measurements.

    HF_HUB_OFFLINE=1 flock /tmp/hwnas-heavy.lock .venv/bin/python -m bench.samplers [--trials 40]

Why a surrogate: each real trial costs about a minute (NNCF, OpenVINO, measurement), so nine real
40-trial jobs (three samplers x three seeds) cost hours on 2 cores; and at a dozen real trials every
sampler is still in its random start-up (NSGA-II's first population, TPE's start-up trials), which
compares seeds, not samplers. So, as NAS-Bench-301 and HW-NAS-Bench do, each sampler runs the
service's own search loop against a table that answers like the real pipeline:

- **F1**: the supernet slice's F1 (PyTorch) on the first ``--questions`` questions of the held-out
  train articles (the same split bench.supernet and bench.search use; never XQuAD), computed once
  per subnet and cached, so every sampler sees the same number for the same subnet. It stands for
  the INT8 F1 the service measures: the supernet ranks subnets as standalone training does
  (bench.supernet, Kendall tau) and PTQ moves F1 by well under a point.
- **p90 latency**: the service's own cost model (``LinearCostPredictor``) fitted to every subnet
  ``bench.search``'s main job measured on ``native`` (its leave-one-out error is in that section).

Each run is what ``JobSearch`` does: an Optuna study with the sampler from ``nas.samplers``, the
job's anchor trials enqueued first, F1 maximised and p90 minimised, the F1 floor (99% of the
teacher's F1 on the same questions) set as a named constraint. Hypervolume (Optuna's WFG) of all
completed points at several trial counts; reference point F1 0 and the teacher FP32's measured p90.
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
SECTION = "samplers"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.samplers", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--supernet-bench", type=Path, default=ROOT / "hwnas-data" / "bench" / "supernet", help="bench.supernet's --out")
    p.add_argument("--search-bench", type=Path, default=ROOT / "hwnas-data" / "bench" / "search", help="bench.search's --data-dir")
    p.add_argument("--train-file", default=str(DATA / "squad-v1.1-train-head.json"))
    p.add_argument("--validation-split", type=float, default=0.2)
    p.add_argument("--questions", type=int, default=200, help="held-out questions each subnet's F1 is computed on")
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--report-at", type=int, nargs="+", default=[12, 24, 40])
    p.add_argument("--samplers", nargs="+", default=["nsga2", "tpe", "random"])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--anchor-trials", type=int, default=4, help="as JobSpec.anchor_trials")
    p.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    return p.parse_args(argv)


class SurrogateTable:
    """F1 from the supernet slice (cached on disk by subnet encoding), p90 from the fitted cost model."""

    def __init__(self, args: argparse.Namespace) -> None:
        import torch
        from transformers import AutoModelForQuestionAnswering

        from core.qa.features import prepare_eval_features
        from core.qa.squad import split_by_article
        from nas.predictors.linear import LinearCostPredictor
        from core.types import SubnetConfig
        from workers import datasets

        sn = json.loads((args.supernet_bench / "results.json").read_text())
        search = json.loads((args.search_bench / "results.json").read_text())
        self.teacher_dir, self.space_spec = Path(sn["teacher_dir"]), sn["settings"]["space"]
        _, held = split_by_article(datasets.examples(args.train_file, None), args.validation_split, seed=0)
        self.questions = held[: args.questions]
        self.features = prepare_eval_features(self.questions, datasets.tokenizer(self.teacher_dir), max_seq_length=256, doc_stride=128)
        self.supernet = AutoModelForQuestionAnswering.from_pretrained(sn["supernet_dir"]).eval()
        self.teacher = AutoModelForQuestionAnswering.from_pretrained(self.teacher_dir).eval()
        self.bf16 = torch.backends.mkldnn.is_available() and "amx_bf16" in Path("/proc/cpuinfo").read_text()
        measured = [t for t in search["trials"] if t["state"] == "completed" and any(m["target"] == "native" for m in t["measurements"])]
        native = [next(m for m in t["measurements"] if m["target"] == "native") for t in measured]
        self.cost = LinearCostPredictor(base_hidden=self.teacher.config.hidden_size)
        self.cost.fit([SubnetConfig.from_dict(t["config"]) for t in measured], [m["p90_ms"] for m in native], [m["throughput_sps"] for m in native])
        self.fit_points = len(measured)
        fp32 = next(b for b in search["job"]["baselines"] if b["precision"] == "fp32")
        self.ref_p90 = next(m["p90_ms"] for m in fp32["measurements"] if m["target"] == "native")
        self.cache_file = args.search_bench / f"surrogate-f1-q{args.questions}.json"
        self.f1s: dict[str, float] = json.loads(self.cache_file.read_text()) if self.cache_file.is_file() else {}
        self.evaluations = 0

    def _f1_of(self, model: Any) -> float:
        import torch

        from workers.evaluate import evaluate_qa, torch_runner

        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            return float(evaluate_qa(torch_runner(_Float32(model)), self.questions, self.features, batch_size=32)["f1"])

    def teacher_f1(self) -> float:
        if "teacher" not in self.f1s:
            self.f1s["teacher"] = self._f1_of(self.teacher)
        return self.f1s["teacher"]

    def f1(self, subnet: Any) -> float:
        from search_spaces.bert.supernet import SlicedSubnet

        key = subnet.encoding()
        if key not in self.f1s:
            self.f1s[key] = self._f1_of(SlicedSubnet(self.supernet, subnet))
            self.evaluations += 1
            self.cache_file.write_text(json.dumps(self.f1s))
        return self.f1s[key]

    def p90(self, subnet: Any) -> float:
        return self.cost.predict(subnet).p90_ms


class _Float32:
    """Logits back in float32 (bf16 autocast returns bf16 tensors, which numpy cannot take)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, **batch: Any) -> Any:
        out = self.model(**batch)
        out.start_logits, out.end_logits = out.start_logits.float(), out.end_logits.float()
        return out


def run_search(table: SurrogateTable, space: Any, sampler: str, seed: int, trials: int, anchors: int, floor: float) -> list[tuple[float, float]]:
    """The points (F1, p90) of one job's trials, in order, as ``JobSearch`` asks and tells them."""
    import optuna

    from nas.samplers import make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler(sampler, seed=seed))
    for anchor in space.anchors(anchors):
        study.enqueue_trial(space.params_of(anchor))
    points = []
    for _ in range(trials):
        trial = study.ask()
        subnet = space.sample(trial)
        f1, p90 = table.f1(subnet), table.p90(subnet)
        trial.set_constraint("f1_floor", floor - f1)
        study.tell(trial, [f1, p90])
        points.append((f1, p90))
    return points


def main(argv: list[str] | None = None) -> int:
    from bench.report import invocation, replace_section
    from bench.search_figures import hypervolume
    from search_spaces.base_models import read_config
    from search_spaces import space_for

    args = parse_args(argv)
    t0 = time.perf_counter()
    table = SurrogateTable(args)
    space = space_for(table.space_spec, read_config(table.teacher_dir))
    floor = 0.99 * table.teacher_f1()
    at = sorted({n for n in args.report_at if n <= args.trials} | {args.trials})
    hv: dict[str, dict[int, list[float]]] = {}
    feasible: dict[str, list[int]] = {}
    for sampler in args.samplers:
        for seed in range(args.seeds):
            pts = run_search(table, space, sampler, seed, args.trials, args.anchor_trials, floor)
            for n in at:
                hv.setdefault(sampler, {}).setdefault(n, []).append(hypervolume(pts[:n], table.ref_p90))
            feasible.setdefault(sampler, []).append(sum(f >= floor for f, _ in pts))
            print(f"[{time.strftime('%H:%M:%S')}] {sampler} seed {seed}: hypervolume at {args.trials} = {hv[sampler][args.trials][-1]:.1f} "
                  f"({table.evaluations} subnets evaluated so far)", flush=True)  # fmt: skip
    wall = time.perf_counter() - t0
    lines = [
        "## Sampler comparison at equal trials (surrogate from this machine's measurements)",
        "",
        f"Command: `{invocation()}`.",
        "",
        f"Each job: {args.trials} trials, the first {args.anchor_trials} the service's anchor trials; F1 = the supernet slice's on the first "
        f"{len(table.questions)} held-out train questions ({'bf16' if table.bf16 else 'FP32'} PyTorch, teacher {table.teacher_f1():.1f}, floor {floor:.1f}); "
        f"p90 = the service's cost model fitted to the {table.fit_points} subnets bench.search measured on `native`; reference point F1 0 and the "
        f"teacher FP32's p90 ({table.ref_p90:.2f} ms). {len(table.f1s) - 1} distinct subnets evaluated; {wall / 60:.1f} min.",
        "",
        "| sampler | " + " | ".join(f"hypervolume at {n} trials (median; per seed)" for n in at) + " | trials at or above the floor (per seed) |",
        "| --- | " + " | ".join("---:" for _ in at) + " | ---: |",
    ]
    for sampler, by_n in hv.items():
        cells = [f"{statistics.median(by_n[n]):.1f} ({', '.join(f'{v:.1f}' for v in by_n[n])})" for n in at]
        lines.append(f"| {sampler} | " + " | ".join(cells) + f" | {', '.join(map(str, feasible[sampler]))} |")
    body = "\n".join(lines) + "\n"
    replace_section(args.output, SECTION, body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
