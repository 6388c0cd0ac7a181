"""The headline a user compares hwnas by: ONE job through the REST API, from the packaged MiniLM to the
deployed model, measured against both of its teachers in the same run.

    HF_HUB_OFFLINE=1 flock /tmp/hwnas-heavy.lock .venv/bin/python -m bench.headline [--trials 16]

The job (base ``minilm``, no QA head) runs every stage of the service: it fine-tunes the teacher,
measures it in FP32 and INT8 (the baselines), trains the weight-sharing supernet, searches
``--trials`` subnets (NSGA-II, objective Offline throughput, precision ``auto``: the faster of INT8
and FP32 on this CPU), refines the front members nearest the F1 floor, and chooses each IR's
deployment (length policy, Offline batch, streams, measured with MLPerf LoadGen). Its data: the
SQuAD train slice split by ARTICLE (seeded, ``--validation-split``): the job trains on the rest
and scores every F1 on the held-out articles; XQuAD-en is scored once afterwards, for reporting
only (nothing is chosen on it).

Between the ``bench:headline`` markers of BENCHMARKS.md: teacher FP32, teacher INT8 and the best
model (the fastest on the target's front with F1 >= 99% of the teacher FP32's), with F1, EM, the
as-deployed SingleStream p90 and Offline samples/s and the same IR at the fixed padded length,
speed-ups against both teachers (as deployed against as deployed, fixed against fixed), the share
of the CPU's peak INT8 throughput, what each stage cost and what the deployment sweep added per
trial; and a Pareto plot (``pareto-<target>.png`` next to BENCHMARKS.md).

Peak INT8 operations per second = cores x clock x INT8 operations per cycle and core of the
instruction set the target runs: AMX (TMUL, 1,024 INT8 multiply-accumulates per cycle) 2,048;
AVX-512 VNNI (two 512-bit VPDPBUSD per cycle, 64 multiply-accumulates each) 256; AVX2 (VPMADDUBSW
+ VPMADDWD, two ports) 64. Operations per inference = 2 x the multiply-accumulates of the model at
the measured sequence length (``search_spaces.bert.space.subnet_macs``), at the padded length (the
as-deployed figure computes less: its share is not comparable). The clock is the nominal one the
CPU reports (turbo and AVX frequency licences make the real peak differ).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
SECTION = "headline"
INT8_OPS_PER_CYCLE = {"amx": 2048, "avx512_vnni": 256, "avx2": 64}
# FP32 operations per cycle and core: two FMA pipes x FP32 lanes x 2; AMD zen2-zen5 and AVX2-only Intel
# cores have 256-bit FMA pipes (zen4 splits an AVX-512 FMA over two), AVX-512 Xeons two 512-bit ones
FP32_OPS_PER_CYCLE = {"256-bit FMA": 32, "512-bit FMA": 64}


SPACE = {"layers": [2, 3, 4, 5, 6], "heads": [4, 6, 8, 10, 12], "ffn": {"min": 256, "max": 1536, "step": 256}, "per_layer": True, "layer_selection": "spread"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from bench import DATA

    p = argparse.ArgumentParser(prog="python -m bench.headline", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=ROOT / "hwnas-data" / "bench" / "headline")
    p.add_argument("--reuse", action="store_true", help="report the last job's results (--data-dir's results.json) instead of running it")
    p.add_argument("--train-file", default=str(DATA / "squad-v1.1-train-head.json"))
    p.add_argument("--xquad", default=str(DATA / "xquad-en.json"))
    p.add_argument("--validation-split", type=float, default=0.2, help="share of the train slice's articles held out for every F1 the job measures")
    p.add_argument("--max-eval-examples", type=int, default=400, help="held-out questions each F1 is measured on")
    p.add_argument("--trials", type=int, default=16)
    p.add_argument("--targets", nargs="+", default=["native"])
    p.add_argument("--teacher-lr", type=float, default=2e-4)
    p.add_argument("--supernet-max-steps", type=int, help="cap the supernet's training (a smoke run)")
    p.add_argument("--teacher-max-steps", type=int, help="cap the teacher's fine-tuning (a smoke run)")
    p.add_argument("--refine-top-k", type=int, default=2)
    p.add_argument("--refine-steps", type=int, default=300)
    p.add_argument("--refine-lr", type=float, default=1e-4)
    p.add_argument("--measure-max-repeats", type=int, help="measure.max_repeats of the job (default: the spec's, 5); each repeat is a fresh process")
    p.add_argument("--measure-seconds", type=float, help="measure.seconds of the job (default: the spec's, 2.0)")
    p.add_argument("--inference-precisions", nargs="+", default=["f32"], help="deployment.inference_precisions (bf16 is opt-in)")
    p.add_argument("--note", default="")
    p.add_argument("--section", default=SECTION, help="BENCHMARKS.md section (bench:NAME markers) and plot name: one per host kind, e.g. headline-avx2")
    p.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    return p.parse_args(argv)


def split_files(train_file: str, fraction: float, out: Path) -> tuple[Path, Path, int, list[str]]:
    """The train slice without its held-out articles (what the job trains on) and those articles (what it scores on)."""
    from bench.search_data import heldout_file

    held_path, n_held, titles = heldout_file(train_file, fraction, 0, out / "heldout.json")
    raw = json.loads(Path(train_file).read_text())
    raw["data"] = [a for a in raw["data"] if a["title"] not in titles]
    train_path = out / "train-without-heldout.json"
    train_path.write_text(json.dumps(raw))
    return train_path, held_path, n_held, titles


def job_spec(args: argparse.Namespace, train: Path, heldout: Path) -> dict[str, Any]:
    """Every stage in one job: teacher, baselines, supernet, search, refine, deployment choice."""
    return {
        "name": f"headline: minilm to deployment, {args.trials} trials",
        "base_model": "minilm",
        "task": {"train_file": str(train), "eval_file": str(heldout), "max_seq_length": 256, "doc_stride": 128, "calibration_samples": 300,
                 "max_eval_examples": args.max_eval_examples},
        "search_space": SPACE,
        "targets": args.targets,
        "budget": {"trials": args.trials},
        "sampler": "nsga2",
        "objective": "throughput",
        "precision": "auto",
        "teacher": {"epochs": 1.0, "learning_rate": args.teacher_lr, "batch_size": 32, "max_steps": args.teacher_max_steps},
        "supernet": {"enabled": True, "epochs": 1.0, "learning_rate": 1e-4, "batch_size": 32, "random_subnets": 2, "max_steps": args.supernet_max_steps},
        "refine": {"top_k": args.refine_top_k, "steps": args.refine_steps, "learning_rate": args.refine_lr},
        "deployment": {"inference_precisions": args.inference_precisions},
        "seed": 0,
        **({"measure": measure} if (measure := {k: v for k, v in (("max_repeats", args.measure_max_repeats), ("seconds", args.measure_seconds)) if v is not None}) else {}),
    }  # fmt: skip


def run_job(args: argparse.Namespace) -> dict[str, Any]:
    """Submit the job over HTTP to a service in this process (real Ray, Optuna, NNCF, OpenVINO, SQLite) and keep what the API returns."""
    import time

    import httpx

    from api.server import ServiceThread, free_port
    from bench.search import wait
    from bench.search_data import log
    from nas.config import Settings

    args.data_dir.mkdir(parents=True, exist_ok=True)
    train, heldout, n_held, titles = split_files(args.train_file, args.validation_split, args.data_dir)
    log(f"train {train} ({len(titles)} articles held out: {n_held} questions -> {heldout})")
    out: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "heldout_questions": n_held, "heldout_titles": titles, "data_dir": str(args.data_dir)}
    t0 = time.perf_counter()
    with ServiceThread(Settings(data_dir=args.data_dir, port=free_port())) as url, httpx.Client(base_url=url, timeout=120) as c:
        spec = job_spec(args, train, heldout)
        job = wait(c, c.post("/api/v1/jobs", json=spec).raise_for_status().json()["id"])
        out["main_wall_s"] = time.perf_counter() - t0
        if job["status"] != "completed":
            raise SystemExit(f"the headline job {job['id']} ended {job['status']}: {job.get('error')}")
        out["job"], out["trials"] = job, c.get(f"/api/v1/jobs/{job['id']}/trials").json()
        out["fronts"] = {t: c.get(f"/api/v1/jobs/{job['id']}/pareto", params={"target": t}).json() for t in args.targets}
        out["fixed_fronts"] = {t: c.get(f"/api/v1/jobs/{job['id']}/pareto", params={"target": t, "view": "fixed"}).json() for t in args.targets}
    teachers = sorted((args.data_dir / "teachers").glob("*/metrics.json"), key=lambda f: f.stat().st_mtime)
    out["teacher"] = str(teachers[-1].parent)  # the job's own (this data dir's service trained it)
    (args.data_dir / "results.json").write_text(json.dumps(out, indent=2, default=str))
    return out


def isa_in_use(fingerprint: dict[str, Any], flags: set[str]) -> str:
    """The widest INT8 instruction set the measurement could use: the target's cap, else the host's."""
    cap = (fingerprint.get("isa_cap") or "").upper()
    if cap:
        return "amx" if "AMX" in cap else "avx512_vnni" if "VNNI" in cap else "avx2"
    if "amx_int8" in flags:
        return "amx"
    return "avx512_vnni" if "avx512_vnni" in flags else "avx2"


def clock_ghz() -> float:
    """Nominal clock: from the model name ("@ 2.10GHz") or /proc/cpuinfo's cpu MHz."""
    text = Path("/proc/cpuinfo").read_text()
    for line in text.splitlines():
        if line.startswith("model name") and "GHz" in line:
            return float(line.split("@")[-1].strip().removesuffix("GHz"))
    for line in text.splitlines():
        if line.startswith("cpu MHz"):
            return float(line.split(":")[1]) / 1000
    raise RuntimeError("no clock in /proc/cpuinfo")


def fp32_pipes(cpu: dict[str, Any]) -> str:
    """The FMA width that sets the FP32 peak: 512-bit only on Intel cores with AVX-512 (AMD runs it on 256-bit pipes)."""
    intel = "intel" in str(cpu.get("vendor", "")).lower()
    return "512-bit FMA" if intel and "avx512f" in set(cpu.get("flags", [])) else "256-bit FMA"


def peak_fp32_ops(cores: int, ghz: float) -> tuple[float, str]:
    """FP32 peak for the cores and clock ``peak_int8_ops`` read (the same measurement's)."""
    from targets import detect_cpu

    pipes = fp32_pipes(detect_cpu())
    return cores * ghz * 1e9 * FP32_OPS_PER_CYCLE[pipes], pipes


def peak_int8_ops(fingerprint: dict[str, Any]) -> tuple[float, str, int, float]:
    from targets import detect_cpu

    cpu = detect_cpu()
    isa = isa_in_use(fingerprint, set(cpu.get("flags", [])))
    cores = int(fingerprint.get("threads") or cpu["logical_cpus"])
    ghz = clock_ghz()
    return cores * ghz * 1e9 * INT8_OPS_PER_CYCLE[isa], isa, cores, ghz


def ops_per_inference(teacher_dir: str, config: dict[str, Any], seq_len: int) -> float:
    from search_spaces.base_models import read_config
    from core.types import SubnetConfig
    from search_spaces.bert.space import BaseDims, subnet_macs

    return 2.0 * subnet_macs(BaseDims.of(read_config(Path(teacher_dir))), SubnetConfig.from_dict(config), seq_len)


def plot_front(
    path: Path, target: str, trials: list[dict[str, Any]], front: dict[str, Any], base: dict[str, Any], floor: float, objective: str = "latency",
    precision: str = "int8",
) -> None:
    """F1 against the job's speed objective (the axis the front was computed on)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.search_figures import meas

    key = "throughput_sps" if objective == "throughput" else "p90_ms"
    on_front = {t["number"] for t in front["trials"]}
    done = [t for t in trials if t["state"] == "completed" and any(m["target"] == target for m in t["measurements"])]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ax.scatter([meas(t, target)[key] for t in done if t["number"] not in on_front], [t["f1"] for t in done if t["number"] not in on_front],
               s=14, c="#bbbbbb", label="dominated trials")  # fmt: skip
    pts = sorted((meas(t, target)[key], t["f1"]) for t in front["trials"])
    ax.plot([p for p, _ in pts], [f for _, f in pts], "o-", c="#1f77b4", label=f"Pareto front ({precision.upper()})")
    for name, precision, marker in (("teacher FP32", "fp32", "s"), ("teacher INT8", "int8", "D")):
        b = base[precision]
        ax.scatter([meas(b, target)[key]], [b["f1"]], marker=marker, s=50, c="#d62728" if precision == "fp32" else "#ff7f0e", label=name, zorder=3)
    ax.axhline(floor, ls="--", c="#2ca02c", lw=1, label="99% of teacher FP32 F1")
    ax.set_xscale("log")
    ax.set_xlabel(f"Offline throughput on {target} as deployed (samples/s, log)" if key == "throughput_sps" else f"SingleStream p90 latency on {target} (ms, log)")
    ax.set_ylabel("F1 (held-out train articles)")
    ax.set_title(f"hwnas search: F1 vs {'throughput' if key == 'throughput_sps' else 'latency'}, target {target}")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_name(section: str, target: str) -> str:
    """``pareto-<target>.png`` for the headline section (the README links it), ``pareto-<section>-<target>.png`` for others."""
    return f"pareto-{target}.png" if section == SECTION else f"pareto-{section}-{target}.png"


def ir_dir(out: dict[str, Any], row: dict[str, Any]) -> Path:
    """Where the job stored a baseline's or a trial's IR (``nas.stages``: ``baseline-int8``, ``trial-7``, ``trial-9-refined``)."""
    arts = Path(out["data_dir"]) / "artifacts" / out["job"]["id"]
    if "number" not in row:
        return arts / f"baseline-{row['precision']}"
    return arts / (f"trial-{row['number']}-refined" if row.get("f1_before_refine") is not None else f"trial-{row['number']}")


def fixed(m: dict[str, Any]) -> dict[str, float]:
    """The same IR at the fixed padded length (the deployment sweep keeps it beside its choice; MLPerf's closed division measures this)."""
    f = (m.get("fingerprint") or {}).get("fixed_length")
    return {"p90_ms": f["p90_ms"], "throughput_sps": f["throughput_sps"]} if f else {"p90_ms": m["p90_ms"], "throughput_sps": m["throughput_sps"]}


def deployed_as(m: dict[str, Any]) -> str:
    d = m.get("deployment") or {}
    off = d.get("offline") or {}
    pol = off.get("length_policy") or {}
    name = pol.get("name", "fixed") + ("" if pol.get("name") != "buckets" else " " + "/".join(map(str, pol.get("buckets", []))))
    return f"{name}, b={off.get('batch', '?')}, {d.get('inference_precision', 'f32')}" if d else "fixed (no deployment sweep)"


def sweep_cost(trials: list[dict[str, Any]]) -> dict[str, float]:
    """The deployment sweep's seconds as a share of each completed trial's wall time (store timestamps)."""
    from datetime import datetime

    shares, secs = [], []
    for t in trials:
        if t["state"] != "completed" or not t.get("finished_at"):
            continue
        wall = (datetime.fromisoformat(t["finished_at"]) - datetime.fromisoformat(t["started_at"])).total_seconds()
        sweep = sum(float((m.get("fingerprint") or {}).get("deployment_s") or 0.0) for m in t["measurements"])
        if wall > 0:
            shares.append(sweep / wall)
            secs.append(sweep)
    if not shares:
        return {}
    import statistics

    return {"trials": len(shares), "median_share": statistics.median(shares), "max_share": max(shares), "median_s": statistics.median(secs)}


def main(argv: list[str] | None = None) -> int:
    from bench.report import invocation, replace_section
    from bench.search_data import log, xquad_f1
    from bench.search_figures import fastest_first, meas
    from workers.export import ir_size_bytes

    args = parse_args(argv)
    results = args.data_dir / "results.json"
    out = json.loads(results.read_text()) if args.reuse and results.is_file() else run_job(args)
    job, trials, fronts = out["job"], out["trials"], out["fronts"]
    base = {b["precision"]: b for b in job["baselines"]}
    floor = 0.99 * base["fp32"]["f1"]
    objective = job["spec"].get("objective", "latency")
    teacher = out["teacher"]
    rows, notes, chosen = [], [], {}
    for target, front in fronts.items():
        m32, m8 = meas(base["fp32"], target), meas(base["int8"], target)
        f32, f8 = fixed(m32), fixed(m8)
        ok = [t for t in front["trials"] if t["f1"] >= floor]
        best = min(ok, key=fastest_first(objective, target)) if ok else None
        fp = m8["fingerprint"]
        mode = "emulated" if fp.get("emulated") else "native"
        peak, isa, cores, ghz = peak_int8_ops(fp)
        peak32, pipes = peak_fp32_ops(cores, ghz)
        full_ops = ops_per_inference(teacher, _full_config(teacher), m8["seq_len"])
        entries = [("teacher FP32", base["fp32"], full_ops), ("teacher INT8", base["int8"], full_ops)]
        if best is not None:
            label = f"best model (trial {best['number']}{', refined' if best.get('f1_before_refine') is not None else ''}; {len(best['config']['layers'])} layers)"
            entries.append((label, best, ops_per_inference(teacher, best["config"], m8["seq_len"])))
            chosen[target] = best
        elif front["trials"]:  # none reached the floor: show the most accurate front member, labelled so
            top = max(front["trials"], key=lambda t: t["f1"])
            entries.append((f"most accurate on the front (trial {top['number']}; **below** the 99% floor)", top, ops_per_inference(teacher, top["config"], m8["seq_len"])))
        for name, row, ops in entries:
            m = meas(row, target)
            fx = fixed(m)
            share = fx["throughput_sps"] * ops / (peak if m.get("precision", "int8") == "int8" else peak32) * 100
            rows.append(
                f"| {target} ({mode}) | {name} | {row['f1']:.1f} | {row['exact_match']:.1f} | {deployed_as(m)} | {m['throughput_sps']:.1f} | {m['p90_ms']:.2f} | "
                f"{m['throughput_sps'] / m32['throughput_sps']:.2f}x / {m['throughput_sps'] / m8['throughput_sps']:.2f}x | "
                f"{fx['throughput_sps']:.1f} | {fx['throughput_sps'] / f32['throughput_sps']:.2f}x / {fx['throughput_sps'] / f8['throughput_sps']:.2f}x | "
                f"{m32['p90_ms'] / m['p90_ms']:.2f}x / {m8['p90_ms'] / m['p90_ms']:.2f}x | {ir_size_bytes(ir_dir(out, row)) / 2**20:.1f} | {share:.1f}% |"
            )
        notes.append(f"`{target}`: {fp.get('cpu_model_name')} [{fp.get('microarchitecture')}], {mode}, ISA cap {fp.get('isa_cap') or 'none'}; "
                     f"peak INT8 = {cores} cores x {ghz:.2f} GHz x {INT8_OPS_PER_CYCLE[isa]} ops/cycle ({isa}) = {peak / 1e12:.2f} TOPS; "
                     f"peak FP32 = {cores} x {ghz:.2f} GHz x {FP32_OPS_PER_CYCLE[pipes]} ({pipes}) = {peak32 / 1e12:.2f} TFLOPS")
        plot_front(args.output.parent / plot_name(args.section, target), target, trials, front, base, floor, objective, job["deployment"]["precision"])
    if "xquad" not in out:  # reporting only, once, after the job: nothing was chosen on it
        log("XQuAD-en (reporting only): teacher FP32, teacher INT8, best model")
        models = [("teacher FP32", base["fp32"], "fp32"), ("teacher INT8", base["int8"], "int8")]
        models += [(f"best model on {t} (trial {b['number']})", b, job["deployment"]["precision"]) for t, b in chosen.items()]
        out["xquad"] = {name: xquad_f1(str(ir_dir(out, row)), Path(teacher), args.xquad, precision) for name, row, precision in models}
        results.write_text(json.dumps(out, indent=2, default=str))
    counts, cost = job["progress"], sweep_cost(trials)
    tm = job.get("teacher_metrics") or {}
    stages = f"{tm['steps']} steps of batch {tm['settings']['batch_size']} in {tm['train_seconds'] / 60:.1f} min, held-out F1 {tm['f1']:.2f}" if "steps" in tm else ""
    dep = job.get("deployment") or {}
    lines = [
        "## Headline: one job from the packaged MiniLM to the deployed model",
        "",
        f"Command: `{invocation()}` (started {out['started']}). {args.note}".rstrip(),
        "",
        f"One job through the REST API (`{job['name']}`, {out['main_wall_s'] / 60:.1f} min on this machine): it fine-tuned the teacher from "
        f"`minilm`{f' ({stages})' if stages else ''}, measured it in FP32 and INT8, trained the supernet, searched {counts['trials_budget']} subnets "
        f"({counts['completed']} completed, {counts['failed']} failed, {counts['skipped']} skipped by the predictor; the refine stage's trials "
        f"included), {refined(job['spec'])} and chose every IR's deployment. Precision: **{dep.get('precision')}** "
        f"({dep.get('chosen_by')}: {dep.get('reason')}).",
        "",
        "| target | model | F1 | EM | deployed as (Offline) | Offline samples/s as deployed | SingleStream p90 ms | throughput vs FP32 / INT8 teacher | "
        "Offline samples/s at fixed length | vs FP32 / INT8 teacher (fixed) | p90 speed-up vs FP32 / INT8 teacher | IR MiB | share of the precision's peak (fixed) |",
        "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        f"F1/EM on {job['spec']['task'].get('max_eval_examples') or out['heldout_questions']} questions of the train slice's held-out articles "
        f"({len(out['heldout_titles'])} articles, {out['heldout_questions']} questions; the job never trained on them). Best model = the fastest "
        f"({'Offline throughput as deployed' if objective == 'throughput' else 'SingleStream p90'}, the job's objective) on the target's Pareto front "
        f"with F1 >= 99% of the teacher FP32's ({floor:.2f}). \"As deployed\": LoadGen's Offline and SingleStream runs of the chosen length policy, "
        "batch and streams on the eval file's real window lengths (short runs: LoadGen, not a valid MLPerf run); \"fixed\": the same IR padded to "
        f"{m8['seq_len']} tokens, hwnas's own harness. Each teacher is measured the same way as the subnets, so each ratio compares like with like.",
        "",
        "XQuAD-en (1,190 questions at 384/128, reporting only): " + "; ".join(f"{k} F1 {v['f1']:.2f} (EM {v['exact_match']:.2f})" for k, v in out["xquad"].items()) + ".",
        "",
        (f"Deployment sweep cost: median {cost['median_share'] * 100:.0f}% of a trial's wall time (max {cost['max_share'] * 100:.0f}%; "
         f"median {cost['median_s']:.0f} s) over {cost['trials']} completed trials." if cost else "Deployment sweep cost: no completed trial carried one."),
        "",
        *[f"- {n}" for n in notes],
        "",
        *[f"![Pareto front, {t}]({plot_name(args.section, t)})" for t in fronts],
    ]
    replace_section(args.output, args.section, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def refined(spec: dict[str, Any]) -> str:
    """What the job's refine stage did, as the headline says it."""
    r = spec.get("refine") or {}
    k = int(r.get("top_k") or 0)
    return f"refined the {k} front member{'s' if k != 1 else ''} nearest the floor ({r.get('steps')} steps each)" if k else "refined nothing (refine.top_k 0)"


def _full_config(teacher: str) -> dict[str, Any]:
    from search_spaces import full_subnet
    from search_spaces.base_models import read_config

    return full_subnet(read_config(Path(teacher))).to_dict()


if __name__ == "__main__":
    sys.exit(main())
