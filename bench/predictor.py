"""The latency predictor's error against the host's own noise, on subnets measured back to back.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.predictor [--subnets 30] [--repeats 6]

A search measures its trials minutes apart, while its own builds and evaluations come and go, so the
predictor's error there (bench.search) mixes the cost model's error with the host's drift. This
bench separates the two, on bench.supernet's supernet:

1. Builds the INT8 IR of ``--subnets`` random subnets of the supernet's space (seeded; sliced, no
   distillation, calibrated on a few windows: speed depends on the architecture only).
2. Waits for a quiet host, then measures every IR back to back (Offline b=16 and SingleStream b=1,
   seq 256, target ``native``), and measures the first ``--repeats`` IRs a second time at the end:
   the spread between the two is the floor no predictor of the architecture can get under.
3. Leave-one-out error of ``LinearCostPredictor`` (the service's) for p90 and throughput, and its
   error when fitted on the first half and asked about the second (a search's situation).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from bench import DATA, ROOT

SECTION = "predictor"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.predictor", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--supernet-bench", type=Path, default=ROOT / "hwnas-data" / "bench" / "supernet", help="bench.supernet's --out")
    p.add_argument("--train-file", default=str(DATA / "squad-v1.1-train-head.json"))
    p.add_argument("--subnets", type=int, default=30)
    p.add_argument("--repeats", type=int, default=6, help="IRs measured a second time at the end (the host's own spread)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", type=Path, default=ROOT / "hwnas-data" / "bench" / "predictor")
    p.add_argument("--quiet-load", type=float, default=1.0)
    p.add_argument("--quiet-wait-s", type=float, default=1800)
    p.add_argument("--measure-seconds", type=float, default=2.0)
    p.add_argument("--seq-len", type=int, default=256, help="window length built and measured")
    p.add_argument("--measure-iterations", type=int, default=50, help="at least this many calls per measurement")
    p.add_argument("--max-repeats", type=int, default=5, help="measurement repeats until the medians settle (at most)")
    p.add_argument("--throughput-batch", type=int, default=16)
    p.add_argument("--note", default="")
    p.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    return p.parse_args(argv)


def errors(subnets: list[Any], p90: list[float], sps: list[float], hidden: int) -> dict[str, float]:
    """Leave-one-out and first-half -> second-half MAPE (%) of the service's predictor."""
    from bench.search_figures import leave_one_out
    from nas.predictors.base import mape
    from nas.predictors.linear import LinearCostPredictor

    loo_p90, loo_sps = leave_one_out(subnets, p90, sps, hidden=hidden)
    n = len(subnets)
    half = LinearCostPredictor(base_hidden=hidden)
    half.fit(subnets[: n // 2], p90[: n // 2], sps[: n // 2])
    later = [(half.predict(subnets[i]), i) for i in range(n // 2, n)]
    return {
        "loo_p90": mape(loo_p90), "loo_sps": mape(loo_sps),
        "half_p90": mape([(p.p90_ms, p90[i]) for p, i in later]), "half_sps": mape([(p.throughput_sps, sps[i]) for p, i in later]),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    from bench.refine import wait_for_quiet
    from bench.search_data import find_teacher_and_supernet, log
    from nas.predictors.base import mape
    from core.types import TrialRequest
    from workers.pipeline import build_candidate, measure_candidate
    from workers.supernet import load_supernet_space

    args = parse_args(argv)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    t0 = time.perf_counter()
    teacher, sn = find_teacher_and_supernet(args.supernet_bench)
    space = load_supernet_space(Path(sn["supernet_dir"]))
    rng = random.Random(args.seed)
    subnets = list(dict.fromkeys(space.random_subnet(rng) for _ in range(4 * args.subnets)))[: args.subnets]
    reqs = []
    for i, sub in enumerate(subnets):
        req = TrialRequest(
            job_id="bench-predictor", trial_number=i, subnet=sub, teacher_dir=str(teacher), train_file=args.train_file,
            eval_file=args.train_file, max_seq_length=args.seq_len, doc_stride=args.seq_len // 2, max_eval_examples=4,
            calibration_samples=16, quant_subset_size=16, targets=("native",), output_dir=str(args.work_dir / f"subnet-{i}"),
            supernet_dir=sn["supernet_dir"], measure_seconds=args.measure_seconds, measure_iterations=args.measure_iterations,
            measure_max_repeats=args.max_repeats, throughput_batch=args.throughput_batch,
        )  # fmt: skip
        build_candidate(req)
        reqs.append(req)
        log(f"built {i + 1}/{len(subnets)}: {len(sub.layers)} layers, heads {sum(sub.heads)}, FFN {sum(sub.ffn)}")
    load = wait_for_quiet(args.quiet_load, args.quiet_wait_s, log)
    log(f"measuring {len(reqs)} IRs back to back, then {args.repeats} again (1-min load average {load:.2f})")
    first = [measure_candidate(r, "native") for r in reqs]
    again = [measure_candidate(r, "native") for r in reqs[: args.repeats]]
    p90 = [m.p90_ms for m in first]
    sps = [m.throughput_sps for m in first]
    result = {
        **errors(subnets, p90, sps, space.base.hidden),
        "repeat_p90": mape([(b.p90_ms, a.p90_ms) for a, b in zip(first, again)]),
        "repeat_sps": mape([(b.throughput_sps, a.throughput_sps) for a, b in zip(first, again)]),
        "n": len(subnets), "repeats": len(again), "seq_len": args.seq_len, "throughput_batch": args.throughput_batch, "load": load, "started": started, "wall_s": time.perf_counter() - t0,
        "fingerprint": first[0].fingerprint,
        "subnets": [{**s.to_dict(), "p90_ms": a, "throughput_sps": b} for s, a, b in zip(subnets, p90, sps)],
    }  # fmt: skip
    args.work_dir.mkdir(parents=True, exist_ok=True)
    (args.work_dir / "results.json").write_text(json.dumps(result, indent=2, default=str))
    report(args, result)
    return 0


def report(args: argparse.Namespace, r: dict[str, Any]) -> None:
    from bench.report import invocation, replace_section

    fp = r["fingerprint"]
    layers = sorted({len(s["layers"]) for s in r["subnets"]})
    lines = [
        "## Latency predictor against the host's own noise",
        "",
        f"Command: `{invocation()}` (started {r['started']}; {r['wall_s'] / 60:.1f} min). {args.note} Measured at a 1-min load average of {r['load']:.2f}.".rstrip(),
        "",
        f"Machine: {fp.get('cpu_model_name')} [{fp.get('microarchitecture')}], {fp.get('logical_cpus')} logical CPUs, OpenVINO {fp.get('openvino_version')}. "
        f"{r['n']} random INT8 subnets of bench.supernet's space ({min(layers)} to {max(layers)} layers), measured back to back: SingleStream b=1 p90 and "
        f"Offline b={r.get('throughput_batch', 16)} throughput at seq {r.get('seq_len', 256)}, target `native`. The service's predictor (`LinearCostPredictor`) is scored on measurements it was not fitted on.",
        "",
        "| mean absolute percentage error | SingleStream p90 | Offline throughput |",
        "| --- | ---: | ---: |",
        f"| predictor, leave-one-out over {r['n']} subnets | {r['loo_p90']:.2f}% | {r['loo_sps']:.2f}% |",
        f"| predictor, fitted on the first {r['n'] // 2}, asked about the other {r['n'] - r['n'] // 2} | {r['half_p90']:.2f}% | {r['half_sps']:.2f}% |",
        f"| the same IR measured again at the end of the run ({r['repeats']} IRs): the host's own spread | {r['repeat_p90']:.2f}% | {r['repeat_sps']:.2f}% |",
        "",
        "Target: under 5%.",
    ]
    replace_section(args.output, SECTION, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
