"""Value types that cross process and package boundaries.

A trial is one message in (``TrialRequest``) and one message out (``TrialResult``);
both are plain frozen dataclasses so they pickle cheaply through Ray and serialise
to JSON for the store. Validation of user input lives in ``nas.spec``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class SubnetConfig:
    """One BERT subnet: which encoder layers are kept, and the width of each kept layer.

    ``layers`` holds indices into the base model's encoder (sorted, unique);
    ``heads[i]`` and ``ffn[i]`` are the attention heads and FFN width of kept layer i;
    ``hidden`` is the hidden (embedding) size, None for the base model's own.
    ``sparsity`` is the share of the encoder's Linear weights set to zero by gradual unstructured
    pruning (``workers.compression.prune``); 0 for a dense subnet. It is part of the subnet (and of
    its encoding) because two subnets that differ only in it are different models.
    """

    layers: tuple[int, ...]
    heads: tuple[int, ...]
    ffn: tuple[int, ...]
    hidden: int | None = None
    sparsity: float = 0.0

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError("a subnet keeps at least one layer")
        if not (len(self.layers) == len(self.heads) == len(self.ffn)):
            raise ValueError("layers, heads and ffn must have one entry per kept layer")
        if list(self.layers) != sorted(set(self.layers)):
            raise ValueError(f"layers must be sorted and unique, got {self.layers}")
        if min(self.heads) < 1 or min(self.ffn) < 1:
            raise ValueError("heads and ffn must be positive")
        if self.hidden is not None and self.hidden < 1:
            raise ValueError("hidden must be positive")
        if not 0.0 <= self.sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity}")

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def uniform(self) -> bool:
        """One heads and one FFN choice for every kept layer."""
        return len(set(self.heads)) == 1 and len(set(self.ffn)) == 1

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"layers": list(self.layers), "heads": list(self.heads), "ffn": list(self.ffn)}
        if self.hidden is not None:
            d["hidden"] = self.hidden
        if self.sparsity:
            d["sparsity"] = self.sparsity
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SubnetConfig":
        return cls(tuple(d["layers"]), tuple(d["heads"]), tuple(d["ffn"]), d.get("hidden"), float(d.get("sparsity") or 0.0))

    @property
    def dense(self) -> "SubnetConfig":
        """The same architecture without pruning (what a supernet slices and a speed predictor sees)."""
        return SubnetConfig(self.layers, self.heads, self.ffn, self.hidden)

    def encoding(self) -> str:
        """Stable text form, used for hashing, caching and as a predictor feature key.

        Unchanged for configs without ``hidden`` or ``sparsity`` (so earlier encodings stay valid);
        ``/H<n>`` and ``/S<sparsity>`` otherwise.
        """
        text = "L" + "-".join(f"{i}:{h}x{f}" for i, h, f in zip(self.layers, self.heads, self.ffn))
        if self.hidden is not None:
            text += f"/H{self.hidden}"
        return text + (f"/S{self.sparsity:g}" if self.sparsity else "")

    def digest(self) -> str:
        return hashlib.sha256(self.encoding().encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Measurement:
    """Speed of one IR on one target, with the fingerprint of where and how it was taken."""

    target: str
    precision: str  # "int8" or "fp32"
    seq_len: int
    latency_batch: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    latency_iterations: int
    throughput_batch: int
    throughput_sps: float
    fingerprint: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Measurement":
        return cls(**d)


@dataclass(frozen=True)
class CompressionPlan:
    """Compression beyond slicing and post-training INT8 (``nas.spec``: ``sparsity``, ``quantization.method``).

    Each step distils the model from the FP32 teacher for its own steps, after the plain distillation
    of ``TrialRequest.finetune_steps``: gradual unstructured magnitude pruning to ``subnet.sparsity``
    (``workers.compression.prune``), then quantization-aware training (``workers.compression.qat_int8``),
    which replaces post-training INT8 when ``qat_steps`` > 0.
    """

    prune_steps: int = 0  # distillation steps over which the sparsity ramps up (cubic) and then holds
    prune_lr: float = 1e-4
    prune_mode: str = "local"  # "local": every Linear of the encoder at the same sparsity; "global": one threshold
    qat_steps: int = 0  # > 0: INT8 by QAT (NNCF fake quantizers in the distillation loop) instead of PTQ
    qat_lr: float = 5e-5

    def __post_init__(self) -> None:
        if self.prune_steps < 0 or self.qat_steps < 0:
            raise ValueError("prune_steps and qat_steps must be >= 0")
        if self.prune_mode not in ("local", "global"):
            raise ValueError(f"prune_mode must be 'local' or 'global', got {self.prune_mode!r}")


@dataclass(frozen=True)
class TrialRequest:
    """Everything a worker needs to evaluate one candidate; no database handle, no settings object."""

    job_id: str
    trial_number: int
    subnet: SubnetConfig
    teacher_dir: str  # Hugging Face QA model directory the subnet is sliced from
    train_file: str
    eval_file: str
    max_seq_length: int
    doc_stride: int
    max_eval_examples: int | None
    calibration_samples: int
    targets: tuple[str, ...]
    output_dir: str  # where the worker writes the IR files of this trial
    synthetic_data: bool = False
    finetune_steps: int = 0
    finetune_lr: float = 3e-4  # peak learning rate of that distillation (linear warm-up and decay)
    measure_iterations: int = 50
    measure_seconds: float = 2.0
    measure_max_repeats: int = 5  # measure_ir's max_repeats (min_repeats is min(2, this))
    throughput_batch: int = 16
    seed: int = 0
    quant_max_f1_drop: float | None = None  # set: NNCF accuracy control on a held-out slice of the train file
    quant_smooth_quant: bool = True
    quant_preset: str = "mixed"  # "mixed" or "performance"
    quant_subset_size: int = 300
    # A trained supernet directory (search_spaces.bert.supernet_training.train_supernet): the subnet is
    # sliced from it instead of from ``teacher_dir``; distillation (``finetune_steps``) still uses the teacher.
    supernet_dir: str | None = None
    task: str = "squad-v1.1"  # the QA task (core.qa.tasks) the data is read and scored as
    # the deployment sweep per target (nas.spec.DeploymentSpec as a dict: length_policies, buckets,
    # offline_batches, query_samples, loadgen); None: measured at max_seq_length padding only
    deployment: dict[str, Any] | None = None
    # pruning and QAT (None: slicing, distillation and post-training INT8 only, as before they existed)
    compression: CompressionPlan | None = None

    @property
    def plan(self) -> CompressionPlan:
        return self.compression or CompressionPlan()

    @property
    def qat(self) -> bool:
        """INT8 by quantization-aware training rather than post-training quantization."""
        return self.plan.qat_steps > 0

    @property
    def distils(self) -> bool:
        """Whether any step of this trial trains the subnet from the teacher (so the teacher is loaded)."""
        return bool(self.finetune_steps or (self.subnet.sparsity and self.plan.prune_steps) or self.plan.qat_steps)


@dataclass(frozen=True)
class TrialResult:
    """What a worker returns for one candidate; the coordinator stores it and tells Optuna."""

    trial_number: int
    subnet: SubnetConfig
    f1: float
    exact_match: float
    num_eval_questions: int
    parameters: int
    ir_size_bytes: int
    measurements: tuple[Measurement, ...]
    stage_seconds: dict[str, float]
    artifact_dir: str
    host: str = ""
    checksums: dict[str, str] = field(default_factory=dict)  # file name -> sha256 of the IR files
    # Set by refinement (workers.refine.refine_candidate): the F1/EM of the same subnet before it.
    f1_before_refine: float | None = None
    exact_match_before_refine: float | None = None
    # The task's figures besides F1/EM, with "task" and "metric" (SQuAD v2.0: HasAns_*/NoAns_*, the null
    # threshold and where it was chosen); empty for SQuAD v1.1, whose F1/EM say it all.
    metrics: dict[str, Any] = field(default_factory=dict)

    def reference_scores(self) -> dict[str, Any]:
        """What a deployment of this trial in another inference precision (bf16) is held to: its own F1/EM,
        scored in f32, and its SQuAD v2.0 null threshold (``workers.deployment_precision``)."""
        return {"f1": self.f1, "exact_match": self.exact_match, "threshold": self.metrics.get("threshold")}

    def measurement_for(self, target: str, precision: str | None = None) -> Measurement:
        """The measurement on ``target`` (a trial is measured in one precision, its job's; ``precision``
        narrows it when given)."""
        for m in self.measurements:
            if m.target == target and (precision is None or m.precision == precision):
                return m
        raise KeyError(f"no {precision or ''} measurement for target {target!r}".replace("no  ", "no "))

    def to_json(self) -> str:
        d = asdict(self)
        d["subnet"] = self.subnet.to_dict()
        return json.dumps(d)
