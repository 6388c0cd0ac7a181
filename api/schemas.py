"""Response schemas, kept apart from the ORM models (FastAPI template habit)."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, computed_field, create_model

from core.types import Measurement


class _FromORM(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class _MeasurementBase(_FromORM):
    @computed_field(description="how the model runs on this target as measured (the deployment sweep's choice) and why; "
                    "null for a measurement at a fixed padded length only")  # fmt: skip
    @property
    def deployment(self) -> dict[str, Any] | None:
        return deployment_summary(getattr(self, "fingerprint", None) or {})


def deployment_summary(fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The deployment of a measurement's fingerprint (``workers.deployed``) in a few fields for API and dashboard."""
    d, fixed = fingerprint.get("deployment"), fingerprint.get("fixed_length")
    if not d:
        return None
    off, ss = d["offline"], d["single_stream"]
    return {
        "offline": {"length_policy": off["length_policy"], "batch": off.get("batch"), "streams": off.get("streams"), "nireq": off.get("nireq")},
        "single_stream": {"length_policy": ss["length_policy"]},
        "reason": d.get("reason"),
        "inference_precision": d.get("inference_precision", "f32"),  # what is not INT8 runs in (older sweeps: f32)
        "f1_as_deployed": d.get("f1_as_deployed"),  # a bf16 deployment's own F1; None: the trial's
        "figures_by": d.get("figures_by"),
        "loadgen_label": (d.get("loadgen") or {}).get("label"),
        "fixed_length": {k: fixed[k] for k in ("seq_len", "p90_ms", "throughput_sps", "throughput_batch")} if fixed else None,
        "query_set": d.get("query_set"),
    }


# The wire format's measurement, field for field (written once, in core.types), read from the ORM row.
_hints = get_type_hints(Measurement)
MeasurementOut = create_model(
    "MeasurementOut", __base__=_MeasurementBase, __doc__=Measurement.__doc__,
    **{f.name: (_hints[f.name], ...) for f in fields(Measurement)},  # type: ignore[call-overload]
)  # fmt: skip


class StageProgress(BaseModel):
    """Progress inside a long piece of work (``core.progress``): the newest report the coordinator stored."""

    stage: str = Field(description="the job stage it belongs to (teacher, baseline, supernet, search, refine)")
    item: str = Field(description="what runs: teacher, baseline-fp32, supernet, trial 3, ...")
    phase: str | None = Field(None, description="e.g. tokenising, fine-tuning, distil, quantize, evaluate, measuring on native")
    step: int | None = None
    total: int | None = None
    unit: str | None = Field(None, description="what step counts: steps, windows, repeats")
    loss: float | None = Field(None, description="training loss at this step (training phases)")
    elapsed_s: float | None = Field(None, description="since the item started")
    eta_s: float | None = Field(None, description="time left in this phase at its pace so far")
    updated_at: datetime | None = None


class TrialOut(_FromORM):
    number: int
    state: str
    config: dict[str, Any]
    f1: float | None
    exact_match: float | None
    eval_questions: int | None
    parameters: int | None
    ir_size_bytes: int | None
    stage_seconds: dict[str, Any] | None
    host: str | None
    error: str | None = Field(description="why it failed, or why the predictor skipped it")
    feasible: bool | None = Field(None, description="every constraint of the job met (F1 floor, p90 cap, size cap)")
    predicted: dict[str, Any] | None = Field(None, description="the speed predictor's figures per target before measuring")
    f1_before_refine: float | None = Field(None, description="a refined trial: F1 of the same subnet before refinement")
    exact_match_before_refine: float | None = None
    progress: StageProgress | None = Field(None, description="while running: its phase, step / total, loss and ETA")
    metrics: dict[str, Any] | None = Field(
        None,
        description="the task's figures besides f1/exact_match, with \"task\" and \"metric\": for squad-v2.0 exact, f1, "
        "HasAns_*/NoAns_* and the null-score threshold (chosen on held-out train questions); null for squad-v1.1; "
        "\"compression\" for a pruned or QAT trial (quantization PTQ/QAT, qat_steps, sparsity, prune_steps, "
        "prune_mode, weight_sparsity: the share of zeros in the IR's MatMul weights)",
    )
    started_at: datetime
    finished_at: datetime | None
    measurements: list[MeasurementOut]


class BaselineOut(_FromORM):
    precision: str
    state: str
    f1: float | None
    exact_match: float | None
    parameters: int | None
    stage_seconds: dict[str, Any] | None
    metrics: dict[str, Any] | None = Field(None, description="as a trial's: the task's figures besides f1/exact_match")
    measurements: list[MeasurementOut]


class Progress(BaseModel):
    trials_budget: int
    completed: int
    failed: int
    running: int
    skipped: int = Field(0, description="proposals the latency predictor ruled out (no budget spent)")
    elapsed_s: float | None
    timeout_s: float | None
    best_trial: int | None = Field(None, description="number of the most accurate completed trial so far")
    best_f1: float | None = Field(None, description="its INT8 F1")


class JobOut(_FromORM):
    id: str
    name: str | None
    status: str
    stage: str
    error: str | None
    synthetic_data: bool
    cancel_requested: bool = False
    study_name: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    spec: dict[str, Any]
    teacher_metrics: dict[str, Any] | None
    progress: Progress
    deployment: dict[str, Any] | None = Field(
        None, description="the precision the subnets are built and measured in, chosen_by (spec, measured), the "
        "reason and the teacher's FP32 and INT8 figures per target (nas.deployment)",
    )
    stage_progress: StageProgress | None = Field(
        None, description="while running: the current stage's long item (teacher fine-tune, baseline, supernet)"
    )
    baselines: list[BaselineOut]


class JobCreated(BaseModel):
    id: str
    status: str
    url: str


class Constraint(BaseModel):
    min_f1: float | None = None
    max_latency_ms: float | None = None


class ParetoOut(BaseModel):
    job_id: str
    target: str
    objectives: list[str]
    trials: list[TrialOut]
    baselines: list[BaselineOut]
    constraint: Constraint
    best: TrialOut | None = Field(None, description="fastest front member meeting the constraint (most accurate if only a latency cap is given)")
