"""The job spec: what a user submits (REST JSON or CLI YAML), validated field by field.

Pydantic gives the 422-with-field-name behaviour for free; checks that need the file
system or the base model's config live in ``nas.validation`` so this module stays pure.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SAMPLERS = ("nsga2", "tpe", "gp", "random", "grid")
GRID_MAX_SUBNETS = 4096  # the grid sampler enumerates the space: only where it is small


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskSpec(_Strict):
    train_file: str = Field(min_length=1, description="SQuAD v1.1 or v2.0 JSON used for fine-tuning and INT8 calibration")
    eval_file: str = Field(min_length=1, description="SQuAD v1.1 or v2.0 JSON on which F1/EM are reported")
    version: Literal["squad-v1.1", "squad-v2.0"] | None = Field(
        default=None,
        description=(
            "the QA task the files are read and scored as; left out: read from the data (a file with "
            '"version": "v2.0" or any "is_impossible": true question is squad-v2.0) and stored in the job. '
            "squad-v2.0 scores with the official v2.0 script (unanswerable questions; HasAns/NoAns F1), the "
            "null-score threshold chosen on held-out train questions, never on the eval file; a v1.1 file "
            "is a valid squad-v2.0 file (every question answerable), a v2.0 file is never a squad-v1.1 one"
        ),
    )
    max_seq_length: int = Field(default=256, ge=32, le=512)
    doc_stride: int = Field(default=128, ge=8, le=256)
    max_eval_examples: int | None = Field(default=None, ge=1, le=1_000_000)
    calibration_samples: int = Field(default=64, ge=1, le=10_000)

    @model_validator(mode="after")
    def _stride_fits(self) -> "TaskSpec":
        if self.doc_stride > self.max_seq_length // 2:  # the overlap; the question needs the rest of a window
            raise ValueError("doc_stride must be at most half of max_seq_length")
        return self


def _unique_sorted(values: list[int], name: str) -> list[int]:
    if not values:
        raise ValueError(f"{name} needs at least one choice")
    if min(values) < 1:
        raise ValueError(f"{name} choices must be positive")
    return sorted(set(values))


class SearchSpaceSpec(_Strict):
    """Choices per dimension, each a list or a range ``{min, max, step}`` (expanded to a sorted list).

    By default every kept layer of a subnet gets the same heads and FFN width (``per_layer: true``
    chooses them per layer) and the kept layers are spread over the base's depth
    (``layer_selection``: ``spread``, ``first`` or ``search``, where the sampler picks the set).
    ``hidden`` (optional) searches the hidden size too. Bounds against the base model (heads,
    widths, layers, hidden a multiple of the head size) are checked at submission, with the
    base's config (its family's space: ``search_spaces.space_for``).

    ``layers``, ``heads`` and ``ffn`` may be left out: the API fills them from the base's config at
    submission (``nas.spec_defaults``; the stored spec shows the values): layers 2..N of the base's N,
    heads the divisors of the base's head count (12: 1, 2, 3, 4, 6, 12), FFN widths the multiples of
    the hidden size up to the intermediate size (384 / 1536: 384, 768, 1152, 1536).
    """

    layers: list[int] | None = Field(
        default=None,
        description="number of encoder layers kept (list, or {min, max, step}); left out: 2 up to the base's layer count",
    )
    heads: list[int] | None = Field(
        default=None,
        description="attention heads per kept layer (list, or {min, max, step}); left out: the divisors of the base's head count",
    )
    ffn: list[int] | None = Field(
        default=None,
        description="FFN (intermediate) width per kept layer (list, or {min, max, step}); "
        "left out: multiples of the base's hidden size up to its intermediate size",
    )
    hidden: list[int] | None = Field(default=None, description="hidden sizes (list, or {min, max, step}); none: the base's")
    per_layer: bool = Field(default=False, description="choose heads and FFN width per kept layer")
    layer_selection: Literal["spread", "first", "search"] = Field(default="spread", description="which layers are kept")

    @field_validator("layers", "heads", "ffn", "hidden", mode="before")
    @classmethod
    def _ranges(cls, v, info):  # type: ignore[no-untyped-def]
        if isinstance(v, dict):
            unknown = set(v) - {"min", "max", "step"}
            if unknown or "min" not in v or "max" not in v:
                raise ValueError(f"{info.field_name}: a range needs min and max (and optionally step)")
            lo, hi, step = v["min"], v["max"], v.get("step", 1)
            if not all(isinstance(x, int) and not isinstance(x, bool) for x in (lo, hi, step)):
                raise ValueError(f"{info.field_name}: min, max and step must be integers")
            if step < 1 or lo > hi:
                raise ValueError(f"{info.field_name}: need step >= 1 and min <= max")
            if (hi - lo) // step + 1 > 10_000:
                raise ValueError(f"{info.field_name}: more than 10000 choices")
            return list(range(lo, hi + 1, step))
        return v

    @field_validator("layers", "heads", "ffn", "hidden")
    @classmethod
    def _choices(cls, v: list[int] | None, info) -> list[int] | None:  # type: ignore[no-untyped-def]
        return None if v is None else _unique_sorted(v, info.field_name)

    @property
    def filled(self) -> bool:
        """Whether every dimension has its choices (else the base model's defaults are still to come)."""
        return self.layers is not None and self.heads is not None and self.ffn is not None

    def size(self) -> int | None:
        """Number of subnets; None until filled, since the left-out dimensions depend on the base model."""
        from math import comb

        if self.layers is None or self.heads is None or self.ffn is None:
            return None
        widths = len(self.heads) * len(self.ffn)
        hidden = len(self.hidden) if self.hidden else 1
        if not self.per_layer and self.layer_selection != "search":
            return len(self.layers) * widths * hidden
        from math import log2

        cap = 10**15  # "more than anyone enumerates": saturate rather than build astronomically large integers
        base = max(self.layers)  # lower bound on the base's depth; the exact count needs the base model
        total = 0
        for n in self.layers:
            if n > 64 or (self.per_layer and widths > 1 and n * log2(widths) > 50):
                return cap
            total += (comb(base, n) if self.layer_selection == "search" else 1) * (widths**n if self.per_layer else widths)
        return min(cap, hidden * total)


class BudgetSpec(_Strict):
    trials: int = Field(ge=1, le=10_000)
    max_concurrent: int = Field(default=1, ge=1, le=64)
    timeout_s: float | None = Field(default=None, gt=0, le=30 * 24 * 3600)
    trial_timeout_s: float = Field(
        default=3600, gt=0, le=7 * 24 * 3600, description="a trial still building or measuring after this long is failed (a hang)"
    )


class TeacherSpec(_Strict):
    """Fine-tuning of a base model that has no QA head (cached by base + data + these settings)."""

    epochs: float = Field(default=1.0, gt=0, le=50)
    max_steps: int | None = Field(default=None, ge=1, le=1_000_000)
    learning_rate: float = Field(default=1e-4, gt=0, le=1.0)
    batch_size: int = Field(default=16, ge=1, le=1024)
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    max_train_examples: int | None = Field(default=None, ge=1)


class MeasureSpec(_Strict):
    """How each IR is timed (``workers.benchmark.measure_ir``): per repeat, each scenario runs at least
    ``iterations`` calls and ``seconds``; repeats, each in a fresh process, stop once two or more agree
    (p50 spread under 2%) or at ``max_repeats`` (1: a single repeat, nothing compared)."""

    iterations: int = Field(default=50, ge=5, le=100_000)
    seconds: float = Field(default=2.0, gt=0, le=600)
    throughput_batch: int = Field(default=16, ge=1, le=256)
    max_repeats: int = Field(
        default=5, ge=1, le=50, description="repeats at most; at least min(2, max_repeats) are taken (a short demo asks for 2)"
    )


class DeploymentSpec(_Strict):
    """How each trial's IR is deployed on each target, chosen by measurement (``workers.deployment_timing``):
    the sequence-length policy and Offline batch with the most samples/s (SingleStream: the policy with the
    lowest p90), over a query set of the eval file's real window lengths, against the same IR at a fixed
    padded length (``measure``'s figures, kept as the "fixed length" view). The objectives use the chosen
    deployment's figures. In f32, F1 is the same under every policy (same windows, only the padding differs);
    a bf16 deployment is scored as deployed and kept only within ``bf16_max_f1_drop`` of it."""

    enabled: bool = Field(default=True, description="false: every IR measured at max_seq_length padding only (earlier jobs)")
    length_policies: list[Literal["fixed", "buckets", "dynamic"]] = Field(
        default_factory=lambda: ["buckets", "dynamic"],
        min_length=1,
        description="policies swept besides the fixed length: buckets (one static shape per bucket) and dynamic (a dynamic sequence dimension)",
    )
    buckets: list[int] | None = Field(
        default=None,
        description="bucket lengths (cut to max_seq_length, which is always one); left out: a third, a half and two thirds "
        "of max_seq_length rounded up to 32 (384: 128/192/256/384)",
    )
    offline_batches: list[int] | None = Field(
        default=None, description="Offline batch sizes swept for the best policy; left out: 1 and measure.throughput_batch"
    )
    streams: list[int] | None = Field(
        default=None, description="NUM_STREAMS values tried for the best Offline policy and batch besides the THROUGHPUT hint's choice; left out: the hint's only"
    )
    query_samples: int = Field(default=64, ge=8, le=100_000, description="windows of the eval file (seeded sample) in the query set")
    loadgen: bool = Field(
        default=True, description="measure the chosen deployment with MLPerf LoadGen too (short runs: never a valid MLPerf result)"
    )
    inference_precisions: list[Literal["f32", "bf16"]] = Field(
        default_factory=lambda: ["f32"],
        min_length=1,
        description="OpenVINO inference precisions tried for the ops that are not INT8 (an FP32 IR: all of them); the first "
        "is swept over the policies, the others measured at its choice. bf16 only where the target and the host have it "
        "(AVX512-BF16, AMX), and only with its own F1, scored as deployed: its rounding depends on the shape. Opt-in "
        "([f32, bf16]): on zen4 (AVX512-BF16, no AMX) OpenVINO's bf16 models crashed the measuring process in about half "
        "of the runs (heap corruption; it is run again up to twice)",
    )
    bf16_max_f1_drop: float = Field(
        default=0.5, ge=0, le=100,
        description="a faster bf16 deployment is kept only if its F1 as deployed is at most this many points under the trial's f32 F1",
    )  # fmt: skip

    @field_validator("inference_precisions")
    @classmethod
    def _distinct_precisions(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"deployment.inference_precisions lists one twice: {v}")
        return v

    @field_validator("buckets", "offline_batches", "streams")
    @classmethod
    def _positive(cls, v: list[int] | None) -> list[int] | None:
        return None if v is None else _unique_sorted(v, "deployment sizes")


class QuantizationSpec(_Strict):
    """NNCF post-training INT8 quantization of every trial's OpenVINO model (and the INT8 baseline)."""

    max_f1_drop: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description=(
            "largest F1 drop (absolute points) allowed against the FP32 model, measured on a held-out slice "
            "of the train file; set, it runs nncf.quantize_with_accuracy_control, which keeps the most "
            "sensitive operations in floating point until the drop is met"
        ),
    )
    smooth_quant: bool = Field(default=True, description="SmoothQuant on the MatMuls before INT8 (NNCF's transformer default)")
    preset: Literal["mixed", "performance"] = Field(
        default="mixed", description="mixed: asymmetric activations; performance: all symmetric"
    )
    subset_size: int = Field(
        default=300, ge=1, le=10_000, description="calibration windows NNCF uses for statistics (at most task.calibration_samples)"
    )
    method: Literal["ptq", "qat"] = Field(
        default="ptq",
        description="ptq: NNCF post-training INT8 of the OpenVINO model; qat: quantization-aware training, NNCF fake "
        "quantizers in the PyTorch model (placed and calibrated as PTQ would) distilled from the FP32 teacher for "
        "qat_steps, then INT8 (the model card says which)",
    )
    qat_steps: int = Field(default=100, ge=1, le=100_000, description="qat: distillation steps (batch 16) with the fake quantizers")
    qat_learning_rate: float = Field(default=5e-5, gt=0, le=1.0, description="qat: peak learning rate of that distillation")
    qat_scope: Literal["refine", "all"] = Field(
        default="refine",
        description="qat: which INT8 models get it: refine, the refine stage's (the search's trials stay PTQ, "
        "which costs no training); all, every trial (not the INT8 teacher baseline, which is PTQ: the reference)",
    )

    @model_validator(mode="after")
    def _qat_is_int8(self) -> "QuantizationSpec":
        if self.method == "qat" and self.max_f1_drop is not None:
            raise ValueError("max_f1_drop (accuracy-controlled PTQ) does not apply to method qat: leave one of them out")
        return self


class SparsitySpec(_Strict):
    """Gradual unstructured magnitude pruning with distillation (``workers.compression.prune``): the share of
    every encoder Linear's weights set to zero, as a search dimension or in the refine stage. Only a runtime
    with sparse kernels turns zeros into speed (OpenVINO: AMX CPUs, profiles with ``sparse_weights_rate``);
    where none of the job's targets has one, the dimension is dropped (the job says why) unless ``for_size``."""

    choices: list[float] = Field(
        default_factory=lambda: [0.0],
        min_length=1,
        description="sparsities to try, e.g. [0, 0.5, 0.8, 0.9] (0: dense); [0]: no pruning",
    )
    stage: Literal["search", "refine"] = Field(
        default="search",
        description="search: a dimension the sampler chooses per trial (each sparse trial is pruned while distilled "
        "for steps); refine: the refine stage refines each chosen member once per choice",
    )
    steps: int = Field(default=200, ge=0, le=100_000, description="distillation steps (batch 16) while the sparsity ramps up (cubic) and holds; 0: one-shot pruning, untrained")
    learning_rate: float = Field(default=1e-4, gt=0, le=1.0, description="peak learning rate of that distillation")
    mode: Literal["local", "global"] = Field(
        default="local", description="local: every Linear at the same sparsity (what sparse kernels want); global: one magnitude threshold"
    )
    for_size: bool = Field(
        default=False,
        description="keep the dimension where no target runs sparse weights faster: zeros then only shrink the download (the zip compresses them)",
    )

    @field_validator("choices")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        bad = [x for x in v if not 0 <= x <= 0.99]
        if bad:
            raise ValueError(f"sparsity choices must be in [0, 0.99], got {bad}")
        return sorted(set(float(x) for x in v))

    @property
    def enabled(self) -> bool:
        return any(self.choices)


class ConstraintSpec(_Strict):
    """Feasibility of a subnet (Optuna constraints: the samplers prefer feasible trials; the Pareto front
    and "best" read them). Latency applies to SingleStream p90 on every target of the job."""

    min_f1_ratio: float | None = Field(
        default=0.99, gt=0, le=1.0, description="INT8 F1 at least this share of the teacher's FP32 F1 (MLPerf bert-99: 0.99)"
    )
    min_f1: float | None = Field(default=None, ge=0, le=100, description="INT8 F1 at least this (absolute points)")
    max_latency_ms: float | None = Field(default=None, gt=0, le=1e6, description="SingleStream p90 at most this on every target")
    max_model_mb: float | None = Field(default=None, gt=0, le=1e6, description="INT8 IR (xml + bin) at most this many MiB")


class PredictorSpec(_Strict):
    """Per-target latency/throughput predictor (nas.predictors), warm-started from the store."""

    kind: Literal["linear", "none"] = Field(default="linear", description="none: measure every proposed subnet")
    min_points: int = Field(default=6, ge=3, le=10_000, description="measurements needed before it may drop a candidate")
    drop_margin: float = Field(
        default=0.25, ge=0, le=10, description="drop a candidate predicted slower than max_latency_ms by more than this fraction"
    )


class SupernetSpec(_Strict):
    """Weight-sharing supernet (workers.supernet): trained once per base + data + space, trials slice it."""

    enabled: bool = False
    epochs: float = Field(default=1.0, gt=0, le=50)
    max_steps: int | None = Field(default=None, ge=1, le=1_000_000)
    learning_rate: float = Field(default=1e-4, gt=0, le=1.0)
    batch_size: int = Field(default=32, ge=1, le=1024)
    random_subnets: int = Field(default=2, ge=0, le=16, description="random subnets per step besides largest and smallest")
    max_train_examples: int | None = Field(default=None, ge=1)
    validation_split: float = Field(
        default=0.0, ge=0, lt=1, description="fraction of train ARTICLES kept out of supernet training (seeded by the job's seed)"
    )


class RefineSpec(_Strict):
    """Distil chosen Pareto-front members standalone, then INT8, F1 and speed again as new trials
    (F1 before/after kept). Only members faster than the fastest one at the F1 floor can move the
    answer by crossing it; ``nas.refine`` orders them (``fastest_reachable`` by default)."""

    top_k: int = Field(default=0, ge=0, le=64, description="front members refined per target (0: off)")
    steps: int = Field(default=200, ge=1, le=100_000, description="distillation steps (batch 16) per refined subnet")
    learning_rate: float = Field(default=3e-4, gt=0, le=1.0, description="peak learning rate of that distillation")
    policy: Literal["fastest_reachable", "near_floor", "most_accurate"] = Field(
        default="fastest_reachable",
        description="fastest_reachable: front members faster than the fastest feasible one and at most max_gap "
        "F1 under the floor, fastest first; near_floor: those faster members, highest F1 first; "
        "most_accurate: the most accurate feasible members",
    )
    max_gap: float = Field(
        default=15.0, ge=0, le=100,
        description="fastest_reachable: how far under the F1 floor (points) a member may be and still be tried first",
    )


class JobSpec(_Strict):
    name: str | None = Field(default=None, max_length=200)
    base_model: str = Field(min_length=1, description="registered name (minilm) or a local Hugging Face model directory")
    task: TaskSpec
    search_space: SearchSpaceSpec = Field(
        default_factory=SearchSpaceSpec,
        description="left out (or any of layers, heads, ffn left out): filled from the base model's config",
    )
    targets: list[str] = Field(default_factory=lambda: ["native"], min_length=1, max_length=16)
    budget: BudgetSpec
    sampler: Literal["nsga2", "tpe", "gp", "random", "grid"] = "nsga2"
    objective: Literal["latency", "throughput"] = Field(
        default="latency", description="speed objective per target: minimise SingleStream p90 or maximise Offline samples/s"
    )
    precision: Literal["int8", "fp32", "auto"] = Field(
        default="int8",
        description="what the subnets are built and measured in: int8 (NNCF post-training INT8), fp32, or auto: "
        "the precision the job's own teacher runs faster in on its targets (FP32 and INT8 baselines, by the "
        "objective's figure); the choice and its reason are stored with the job (``deployment``)",
    )
    constraints: ConstraintSpec = ConstraintSpec()
    predictor: PredictorSpec = PredictorSpec()
    supernet: SupernetSpec = SupernetSpec()
    refine: RefineSpec = RefineSpec()
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    sampler_seed: int | None = Field(
        default=None, ge=0, le=2**31 - 1, description="the sampler's own seed (default: seed); the rest (data, supernet) keeps seed"
    )
    teacher: TeacherSpec = TeacherSpec()
    measure: MeasureSpec = MeasureSpec()
    deployment: DeploymentSpec = DeploymentSpec()
    quantization: QuantizationSpec = QuantizationSpec()
    sparsity: SparsitySpec = SparsitySpec()
    anchor_trials: int = Field(
        default=4, ge=0, le=16,
        description="the first trials are fixed anchors: the largest subnet, then uniform shrinks of it (0: none; not with grid)",
    )
    trial_finetune_steps: int = Field(
        default=0, ge=0, le=100_000, description="distillation steps given to each sliced subnet before INT8"
    )

    @field_validator("targets")
    @classmethod
    def _targets_unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("targets must not repeat")
        return v

    @model_validator(mode="after")
    def _compression_needs_int8(self) -> "JobSpec":
        if self.quantization.method == "qat" and self.precision == "fp32":
            raise ValueError("quantization.method qat trains INT8 models: precision fp32 has none (use int8 or auto)")
        refines = self.refine.top_k > 0 and self.supernet.enabled  # the refine stage runs on a supernet's subnets
        if self.sparsity.enabled and self.sparsity.stage == "refine" and not refines:
            raise ValueError("sparsity.stage refine prunes in the refine stage: set refine.top_k and supernet.enabled, or stage search")
        if self.quantization.method == "qat" and self.quantization.qat_scope == "refine" and not refines:
            raise ValueError(
                "quantization.qat_scope refine applies QAT in the refine stage: set refine.top_k and supernet.enabled, or qat_scope all"
            )
        return self

    @model_validator(mode="after")
    def _grid_is_small(self) -> "JobSpec":
        """Checked once the space is filled: ``nas.spec_defaults`` re-validates the filled spec to get here."""
        size = self.search_space.size()
        if self.sampler == "grid" and size is not None and size > GRID_MAX_SUBNETS:
            raise ValueError(
                f"sampler 'grid' enumerates the space, which has {size} subnets "
                f"(at most {GRID_MAX_SUBNETS}); narrow search_space or use nsga2, tpe, gp or random"
            )
        return self
