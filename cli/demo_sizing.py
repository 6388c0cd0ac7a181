"""Size ``hwnas demo`` to the host: a probe of a few seconds, a cost model, the settings that fit a budget.

Why: the full-size demo (3-epoch teacher, 6 trials x 120 distillation steps, 50-iteration x 5-repeat
measurements) took ~80 minutes on a 2-core AMD zen3 (AVX2 only) and a fraction of that on a
Xeon with AMX. What dominates is training (the teacher and each trial's distillation) and the
measurements, so ``probe_host`` times one training step and one forward pass of the packaged
MiniLM at the demo's shapes, reads the CPU flags for whether INT8 beats FP32 here, and
``size_demo`` picks the largest demo whose estimate fits the budget.

Only ``probe_host`` touches torch (imported inside it); everything else is pure and unit-tested.
The cost model's fixed constants were read on a 2-core AMD EPYC zen3; the probe's own figures
scale everything that grows with the model.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from itertools import product
from typing import Any

# ---- the demo's fixed shapes (cli.demo.demo_spec) ---------------------------------------------------
BATCH = 16  # teacher and distillation batch size
SEQ_SYNTHETIC, SEQ_REAL = 128, 256
BASE = (6, 12, 1536)  # MiniLM: layers, heads, FFN width (hidden 384)

# ---- today's full-size demo, what ``--full`` runs ---------------------------------------------------
FULL_TEACHER_EPOCHS = 3.0
FULL_TRIALS = 6
FULL_FINETUNE_STEPS = 120
FULL_SPACE: dict[str, list[int]] = {"layers": [2, 3, 4, 6], "heads": [6, 12], "ffn": [384, 768, 1536]}
# The larger choices only: with a few distillation steps, 2 layers or FFN 384 lose most of the F1.
SMALL_SPACE: dict[str, list[int]] = {"layers": [3, 4, 6], "heads": [6, 12], "ffn": [768, 1536]}
# JobSpace.anchors(4) of both spaces (search_spaces.bert.space): the first trials, fixed.
ANCHORS: tuple[tuple[int, int, int], ...] = ((6, 12, 1536), (4, 12, 1536), (3, 12, 1536), (6, 12, 768))

# ---- the smallest demo that still shows something -------------------------------------------------
# Measured on the synthetic set (cli.demo), batch 16, lr 2e-4: 40 steps gave the teacher F1 17.4
# (EM 15) on 100 eval questions; checkpoints of that run at 10-30 steps stayed at F1 12-13.
MIN_TEACHER_STEPS = 40
MIN_TRIALS = 4  # the anchors: the teacher-sized subnet, two shallower ones and a narrower one
MIN_FINETUNE_STEPS = 10
SCALED_EVAL_QUESTIONS = 100  # of the synthetic eval file's 200
SCALED_CALIBRATION = 32

# ---- cost-model constants (seconds), read on a 2-core AMD EPYC zen3 ------------------------------
SERVICE_S = 30.0  # service and local Ray start, the first worker processes' imports (torch, OpenVINO, NNCF)
TASK_S = 3.0  # per trial: Ray scheduling of build/measure/join, the demo's 2 s polling
TEACHER_FIXED_S = 10.0  # loading, tokenising, saving the teacher
CONVERT_S = 7.0  # torch -> OpenVINO trace and conversion, IR saved
QUANT_FIXED_S = 8.0  # NNCF import, graph passes, bias correction
QUANT_PASSES = 3  # calibration forwards: statistics, SmoothQuant statistics, bias correction
SPAWN_S = 2.5  # per measurement repeat: a fresh interpreter, openvino import, two compiles
SINGLE_SAMPLE_OVERHEAD = 1.2  # one window costs more than 1/16 of a batch of 16
WARMUP_CALLS = 5  # measure_ir's warm-up per scenario
ATTENTION_SHARE = 0.37  # of an encoder layer's FLOPs at seq 128 (projections and scores); the rest is the FFN
FIXED_SHARE = 0.10  # embeddings, QA head and optimizer: what a subnet does not shrink

# INT8 time / FP32 time for BERT-sized matmuls, when it is not measured: VNNI/AMX have int8 dot
# products, plain AVX2 emulates them (on the zen3 host the INT8 eval of the teacher ran 1.2-2.5x slower).
INT8_TIME_RATIO = {"amx": 0.35, "vnni": 0.5, "avx512": 0.9, "avx2": 1.3}


@dataclass(frozen=True)
class HostProbe:
    """What the probe found: the costs the demo's stages scale with, and the CPU they were read on."""

    step_s: float  # one MiniLM QA training step, batch 16, seq 128 (bf16 autocast where training uses it)
    forward_s: float  # one no-grad forward pass, batch 16, seq 128: stands for FP32 inference
    int8_time_ratio: float  # INT8 inference time / FP32 inference time (>1: INT8 is slower here)
    int8_source: str  # "estimated from the CPU flags (...)" or "measured"
    cpu: str  # "AMD EPYC zen3 (AVX2, no VNNI)"
    cores: int
    probe_s: float = 0.0


@dataclass(frozen=True)
class Workload:
    """The data the demo trains and evaluates on, in windows (features) at its sequence length."""

    train_windows: int  # all of the train file: distillation's teacher logits cover it
    teacher_windows: int  # what the teacher trains on (max_train_examples)
    eval_questions: int
    windows_per_eval_question: float
    seq_len: int

    @property
    def seq_factor(self) -> float:
        """Costs grow about linearly with the sequence length at these sizes (the probe runs at 128)."""
        return self.seq_len / SEQ_SYNTHETIC

    def full_teacher_steps(self) -> int:
        return math.ceil(math.ceil(self.teacher_windows / BATCH) * FULL_TEACHER_EPOCHS)

    def eval_windows(self, max_eval_examples: int | None) -> float:
        questions = self.eval_questions if max_eval_examples is None else min(self.eval_questions, max_eval_examples)
        return questions * self.windows_per_eval_question


# What the demo sizes for when the probe fails: slower than the 2-core zen3 the constants come from.
SLOW_HOST = HostProbe(step_s=4.0, forward_s=0.8, int8_time_ratio=INT8_TIME_RATIO["avx2"],
                      int8_source="assumed: the probe failed", cpu="unknown CPU (probe failed)", cores=2)  # fmt: skip

# cli.demo._demo_data: 30 train articles (600 questions -> 824 windows), 10 eval ones (200 -> 272).
SYNTHETIC = Workload(train_windows=824, teacher_windows=824, eval_questions=200, windows_per_eval_question=1.36, seq_len=SEQ_SYNTHETIC)


def real_workload(train_questions: int, eval_questions: int = 300) -> Workload:
    """User files (cli.demo: seq 256, teacher on 1500 questions, 300 eval ones); ~1.1 windows a question."""
    return Workload(
        train_windows=round(1.1 * train_questions),
        teacher_windows=round(1.1 * min(train_questions, 1500)),
        eval_questions=min(eval_questions, 300),
        windows_per_eval_question=1.1,
        seq_len=SEQ_REAL,
    )


@dataclass(frozen=True)
class MeasureEffort:
    """``MeasureSpec``: per scenario at least ``iterations`` calls and ``seconds``, at most ``max_repeats`` repeats."""

    iterations: int
    seconds: float
    max_repeats: int
    throughput_batch: int

    def spec(self) -> dict[str, Any]:
        return {"iterations": self.iterations, "seconds": self.seconds, "throughput_batch": self.throughput_batch,
                "max_repeats": self.max_repeats}  # fmt: skip


MEASURE_FULL = MeasureEffort(50, 2.0, 5, 16)
MEASURE_SHORT = MeasureEffort(10, 1.0, 2, 8)
MEASURE_MIN = MeasureEffort(5, 0.5, 2, 4)


@dataclass(frozen=True)
class DemoPlan:
    """The job settings the demo submits, and the estimate they were chosen on."""

    teacher_steps: int | None  # None: FULL_TEACHER_EPOCHS epochs (today's spec)
    trials: int
    finetune_steps: int
    measure: MeasureEffort
    max_eval_examples: int | None  # None: the workload's own (all synthetic questions, 300 real ones)
    calibration_samples: int
    search_space: dict[str, list[int]]
    full: bool = False  # today's settings, unscaled
    budget_s: float | None = None
    estimate: dict[str, float] = field(default_factory=dict)  # seconds per part of the job

    @property
    def estimate_s(self) -> float:
        return sum(self.estimate.values())

    @property
    def fits(self) -> bool:
        return self.budget_s is None or self.estimate_s <= self.budget_s


def full_plan(trials: int | None = None) -> DemoPlan:
    """Today's full-size demo (``hwnas demo --full``): no probe, nothing scaled."""
    return DemoPlan(
        teacher_steps=None,
        trials=FULL_TRIALS if trials is None else trials,
        finetune_steps=FULL_FINETUNE_STEPS,
        measure=MEASURE_FULL,
        max_eval_examples=None,
        calibration_samples=64,
        search_space=FULL_SPACE,
        full=True,
    )


# ---- the cost model -------------------------------------------------------------------------------
def subnet_fraction(layers: int, heads: int, ffn: int) -> float:
    """A subnet's training/inference cost as a fraction of the base model's (FLOPs, and what does not shrink)."""
    n, h, f = BASE
    encoder = layers / n * (ATTENTION_SHARE * heads / h + (1 - ATTENTION_SHARE) * ffn / f)
    return FIXED_SHARE + (1 - FIXED_SHARE) * encoder


def trial_fractions(space: dict[str, list[int]], trials: int) -> list[float]:
    """Cost fraction of each trial: the anchors first, then the space's average subnet."""
    mean = sum(subnet_fraction(*c) for c in product(space["layers"], space["heads"], space["ffn"]))
    mean /= len(space["layers"]) * len(space["heads"]) * len(space["ffn"])
    anchors = [subnet_fraction(*a) for a in ANCHORS]
    return [anchors[i] if i < len(anchors) else mean for i in range(trials)]


def measure_seconds(m: MeasureEffort, latency_s: float, batch16_s: float) -> float:
    """One measurement (``measure_ir``): per repeat a fresh process, then each scenario's warm-up and
    timed calls (at least ``iterations`` and ``seconds``). Repeats are assumed to run to the cap: on
    a busy 2-core host they rarely agree within 2%."""
    batch_s = batch16_s * m.throughput_batch / BATCH
    latency = WARMUP_CALLS * latency_s + max(m.iterations * latency_s, m.seconds)
    throughput = WARMUP_CALLS * batch_s + max(m.iterations * batch_s, m.seconds)
    return m.max_repeats * (SPAWN_S + latency + throughput)


DEPLOY_QUERY_SAMPLES = 32  # the demo's deployment.query_samples (the spec's default is 64)
DEPLOY_OFFLINE_BATCHES = [1]  # the demo's deployment.offline_batches: on 2 cores batch 1 on 2 streams won every sweep measured
DEPLOY_COMPILES = 8  # 128 tokens: buckets 64/96/128 a latency and a throughput compile each, dynamic two (Offline batch 1 only)
COMPILE_S = 0.4
DEPLOYED_LENGTH_SHARE = 0.6  # of a fixed-length window's compute that a bucketed one costs (synthetic data is short)
LOADGEN_MIN_S = 0.25  # workers.deployment_loadgen.MIN_DURATION_S
WARMUP_SHARE = 0.3  # of an Offline pass: one batch per padded length before the clock starts


def deployment_seconds(m: MeasureEffort, latency_s: float, batch16_s: float) -> float:
    """The deployment sweep of one IR on one target (``workers.deployment_timing``): a fresh process, the
    compiles, SingleStream and an Offline pass (plus its warm-up) per policy and batch, two LoadGen runs."""
    half = m.seconds / 2
    sample_s = batch16_s / BATCH * DEPLOYED_LENGTH_SHARE
    offline_pass = DEPLOY_QUERY_SAMPLES * sample_s
    single = max(max(5, m.iterations // 2) * latency_s * DEPLOYED_LENGTH_SHARE, half)
    offline = WARMUP_SHARE * offline_pass + max(offline_pass, half)
    loadgen = 2 * max(LOADGEN_MIN_S, half)  # on the sweep's compiled models
    return SPAWN_S + DEPLOY_COMPILES * COMPILE_S + 2 * single + 2 * offline + loadgen


def build_seconds(plan: DemoPlan, host: HostProbe, work: Workload, frac: float, precision: str) -> float:
    """One trial or baseline: export, INT8 (NNCF) for int8, F1 of the IR, the measurement."""
    ratio = host.int8_time_ratio if precision == "int8" else 1.0
    batch16 = host.forward_s * work.seq_factor * frac
    single = batch16 / BATCH * SINGLE_SAMPLE_OVERHEAD
    quant = QUANT_FIXED_S + QUANT_PASSES * plan.calibration_samples * single if precision == "int8" else 0.0
    evaluate = work.eval_windows(plan.max_eval_examples) / BATCH * batch16 * ratio
    measure = measure_seconds(plan.measure, single * ratio, batch16 * ratio) + deployment_seconds(plan.measure, single * ratio, batch16 * ratio)
    return TASK_S + CONVERT_S + quant + evaluate + measure


def estimate(plan: DemoPlan, host: HostProbe, work: Workload = SYNTHETIC) -> dict[str, float]:
    """Seconds per part of the job (service, teacher, baselines, trials): what the sizing compares to the budget."""
    step = host.step_s * work.seq_factor
    forward = host.forward_s * work.seq_factor
    teacher_steps = plan.teacher_steps if plan.teacher_steps is not None else work.full_teacher_steps()
    teacher = TEACHER_FIXED_S + teacher_steps * step + work.eval_windows(plan.max_eval_examples) / BATCH * forward
    fracs = trial_fractions(plan.search_space, plan.trials)
    distil_setup = work.train_windows / BATCH * forward if plan.finetune_steps and plan.trials else 0.0  # teacher logits, once
    trials = distil_setup + sum(plan.finetune_steps * step * f + build_seconds(plan, host, work, f, "int8") for f in fracs)
    baselines = build_seconds(plan, host, work, 1.0, "fp32") + build_seconds(plan, host, work, 1.0, "int8")
    return {"service": SERVICE_S, "teacher": teacher, "baselines": baselines, "trials": trials}


# ---- the sizing -----------------------------------------------------------------------------------
SCALES = tuple(round(1 - i / 20, 2) for i in range(21))  # 1.0, 0.95, ..., 0.0


def scaled_plan(scale: float, measure: MeasureEffort, *, trials: int | None, work: Workload = SYNTHETIC) -> DemoPlan:
    """The demo at ``scale`` (1: full training, 0: the minimum). The teacher shrinks last (every F1 of
    the demo is read against it: it keeps its full steps down to scale 0.5), then the trial count
    (6 -> 4, the anchors), while distillation steps shrink all along."""
    full_t = work.full_teacher_steps()
    teacher = round(MIN_TEACHER_STEPS + (full_t - MIN_TEACHER_STEPS) * min(1.0, 2 * scale))
    finetune = round(MIN_FINETUNE_STEPS + (FULL_FINETUNE_STEPS - MIN_FINETUNE_STEPS) * scale)
    wide = scale >= 0.75
    return DemoPlan(
        teacher_steps=min(teacher, full_t),
        trials=trials if trials is not None else (FULL_TRIALS if scale >= 0.5 else MIN_TRIALS),
        finetune_steps=finetune,
        measure=measure,
        max_eval_examples=None if wide else SCALED_EVAL_QUESTIONS,
        calibration_samples=64 if wide else SCALED_CALIBRATION,
        search_space=FULL_SPACE if wide else SMALL_SPACE,
    )


def size_demo(host: HostProbe, *, budget_s: float = 480.0, trials: int | None = None, work: Workload = SYNTHETIC) -> DemoPlan:
    """The largest demo whose estimate fits ``budget_s``: today's full one if it fits, else the highest
    scale (measurement shortened before training is cut); the minimum, marked as not fitting, if none
    does. ``trials`` (the user's ``--trials``) is kept as given."""
    full = full_plan(trials)
    full = replace(full, budget_s=budget_s, estimate=estimate(full, host, work))
    if full.fits:
        return full
    plan = full
    for scale in SCALES:
        for measure in (MEASURE_SHORT, MEASURE_MIN):
            plan = scaled_plan(scale, measure, trials=trials, work=work)
            plan = replace(plan, budget_s=budget_s, estimate=estimate(plan, host, work))
            if plan.fits:
                return plan
    return plan


# ---- the probe ------------------------------------------------------------------------------------
def int8_time_ratio(flags: list[str] | set[str]) -> tuple[float, str]:
    """INT8 / FP32 inference time guessed from the ISA flags (``targets.cpu.RELEVANT_FLAGS``)."""
    present = set(flags)
    if present & {"amx_int8", "amx_tile"}:
        key, why = "amx", "AMX"
    elif "avx512_vnni" in present:
        key, why = "vnni", "AVX-512 VNNI"
    elif "avx512f" in present:
        key, why = "avx512", "AVX-512 without VNNI"
    else:
        key, why = "avx2", "no VNNI or AMX"
    return INT8_TIME_RATIO[key], f"estimated from the CPU flags: {why}"


def describe_cpu(cpu: dict[str, Any]) -> str:
    """``AMD EPYC zen3 (AVX2, no VNNI)``: model name, microarchitecture, the ISA that decides INT8."""
    flags = set(cpu.get("flags", []))
    if flags & {"amx_int8", "amx_tile"}:
        isa = "AMX" + (", bf16" if "amx_bf16" in flags else "")
    elif "avx512_vnni" in flags:
        isa = "AVX-512 VNNI" + (", bf16" if "avx512_bf16" in flags else "")
    elif "avx512f" in flags:
        isa = "AVX-512, no VNNI"
    else:
        isa = "AVX2, no VNNI" if "avx2" in flags else "no AVX2"
    uarch = cpu.get("microarchitecture") or "unknown"
    name = cpu.get("model_name") or "unknown CPU"
    return f"{name}{'' if uarch == 'unknown' else ' ' + uarch} ({isa})"


def probe_host(time_budget_s: float = 10.0) -> HostProbe:
    """Time the packaged MiniLM at the demo's shapes (a few seconds); INT8's speed comes from the flags,
    since quantizing a model to time it would cost more than the probe's whole budget."""
    began = time.perf_counter()
    from targets import detect_cpu, has_fast_bf16

    cpu = detect_cpu()
    step_s, forward_s = _time_minilm(deadline=began + time_budget_s, bf16=has_fast_bf16(cpu))
    ratio, source = int8_time_ratio(cpu["flags"])
    return HostProbe(step_s=step_s, forward_s=forward_s, int8_time_ratio=ratio, int8_source=source,
                     cpu=describe_cpu(cpu), cores=int(cpu["logical_cpus"]), probe_s=time.perf_counter() - began)  # fmt: skip


def _time_minilm(*, deadline: float, bf16: bool) -> tuple[float, float]:
    """(training step, no-grad forward) seconds at batch 16, seq 128 on random windows: a tiny warm-up
    step, a timed half batch (doubled), then full batches while the deadline allows (the fastest counts);
    the forward pass is timed on a half batch and doubled."""
    import torch
    import transformers
    from transformers import AutoModelForQuestionAnswering

    from search_spaces.base_models import resolve_base_model

    logging = transformers.utils.logging
    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()  # the base has no QA head: its load report is expected, and noise here
    logging.disable_progress_bar()
    try:
        model = AutoModelForQuestionAnswering.from_pretrained(resolve_base_model("minilm"))
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model.train()

    def step(batch: int) -> float:
        inputs = _random_batch(torch, batch)
        t0 = time.perf_counter()
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(**inputs)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    step(2)  # warm-up: allocations and kernel selection, not timed
    half = step(BATCH // 2)
    times = [2 * half]  # a busy or slow host: half a batch, scaled (a slight overestimate), is all it gets
    while len(times) < 3 and time.perf_counter() + 1.2 * min(times) < deadline:
        times.append(step(BATCH))
    model.eval()
    inputs = _random_batch(torch, BATCH // 2, labels=False)
    t0 = time.perf_counter()
    with torch.no_grad():
        model(**inputs)
    return min(times), 2 * (time.perf_counter() - t0)


def _random_batch(torch: Any, batch: int, *, labels: bool = True) -> dict[str, Any]:
    """QA-shaped random windows: mid-vocabulary ids, full attention, question/context segments."""
    types = torch.zeros(batch, SEQ_SYNTHETIC, dtype=torch.long)
    types[:, SEQ_SYNTHETIC // 4 :] = 1
    out = {
        "input_ids": torch.randint(1000, 2000, (batch, SEQ_SYNTHETIC)),
        "attention_mask": torch.ones(batch, SEQ_SYNTHETIC, dtype=torch.long),
        "token_type_ids": types,
    }
    if labels:
        out["start_positions"] = torch.randint(0, SEQ_SYNTHETIC, (batch,))
        out["end_positions"] = torch.randint(0, SEQ_SYNTHETIC, (batch,))
    return out


# ---- what the demo prints -------------------------------------------------------------------------
def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def summary(plan: DemoPlan, host: HostProbe | None, *, full_estimate_s: float | None = None) -> str:
    """One paragraph: the host, the probe's figures, what was scaled down and why, the estimate."""
    if host is None:
        return (f"full-size demo (--full, no probe): teacher {FULL_TEACHER_EPOCHS:g} epochs, {plan.trials} trials x "
                f"{plan.finetune_steps} distillation steps, measurement {plan.measure.seconds:g} s x up to "
                f"{plan.measure.max_repeats} repeats")  # fmt: skip
    ratio = host.int8_time_ratio
    int8 = f"{ratio:.1f}x slower" if ratio > 1 else f"{1 / ratio:.1f}x faster"
    head = (f"host: {host.cpu}, {host.cores} cores; training step {host.step_s:.2f} s (batch {BATCH}, seq "
            f"{SEQ_SYNTHETIC}), forward {host.forward_s:.2f} s; INT8 inference ~{int8} than FP32 "
            f"({host.int8_source}); probe {host.probe_s:.1f} s")  # fmt: skip
    if plan.full:
        return f"{head}: the full-size demo fits (estimate {_minutes(plan.estimate_s)}, budget {_minutes(plan.budget_s or 0)})"
    why = f"the full-size demo would take ~{_minutes(full_estimate_s)} here, " if full_estimate_s else ""
    teacher = f"teacher {plan.teacher_steps} steps" if plan.teacher_steps is not None else "teacher 3 epochs"
    evals = f", {plan.max_eval_examples} eval questions" if plan.max_eval_examples else ""
    fit = "" if plan.fits else "; the smallest meaningful demo, still OVER the budget on this host"
    return (f"{head}\n{why}so the demo is scaled to {teacher}, {plan.trials} trials x {plan.finetune_steps} "
            f"distillation steps, measurement {plan.measure.seconds:g} s x {plan.measure.max_repeats} repeats"
            f"{evals} (estimate {_minutes(plan.estimate_s)}, budget {_minutes(plan.budget_s or 0)}){fit}")  # fmt: skip
