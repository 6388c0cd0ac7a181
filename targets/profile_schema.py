"""What a hardware target profile may hold, and the errors a bad one raises.

The schema is what a profile file, ``register_target`` and ``POST /api/v1/targets`` all accept
(the API publishes ``TargetProfile`` as its request body). The rules a profile must meet are kept
here, in one place, apart from where profiles come from and how they are kept
(``targets.registry``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# Values oneDNN accepts in ONEDNN_MAX_CPU_ISA (DEFAULT means no cap and is stored as null).
ONEDNN_ISAS = (
    "SSE41",
    "AVX",
    "AVX2",
    "AVX2_VNNI",
    "AVX2_VNNI_2",
    "AVX512_CORE",
    "AVX512_CORE_VNNI",
    "AVX512_CORE_BF16",
    "AVX512_CORE_FP16",
    "AVX10_1_512",
    "AVX512_CORE_AMX",
    "AVX512_CORE_AMX_FP16",
    "AVX10_1_512_AMX",
    "AVX10_1_512_AMX_FP16",
    "AVX10_2_512",
    "AVX10_2_512_AMX_2",
)


class TargetProfileError(ValueError):
    """A profile that cannot be used; the message names the file (or source) and the field."""

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.field = field


class TargetExistsError(TargetProfileError):
    """A profile of that name is already known (built-in, from a file, or registered)."""


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch: int = Field(ge=1, le=1024, description="inputs per inference request")


class Scenarios(BaseModel):
    model_config = ConfigDict(extra="forbid")

    single_stream: Scenario = Field(default_factory=lambda: Scenario(batch=1), description="latency: sync requests")
    offline: Scenario = Field(default_factory=lambda: Scenario(batch=16), description="throughput: AsyncInferQueue")


class TargetProfile(BaseModel):
    """What a profile file (or the POST body) holds; unknown fields are errors, so typos show."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$", description="lower-case letters, digits, '.', '_', '-'"
    )
    description: str = Field(default="", max_length=500)
    microarchitecture: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$",
        description="the CPU this profile stands for, as detect_cpu names it (icelake, zen4, ...); a host of "
        "that microarchitecture measures it natively. Default: the name when an ISA cap is set, else the host",
    )
    isa: str | None = Field(default=None, description="ONEDNN_MAX_CPU_ISA cap; null = no cap")
    cores: int | None = Field(default=None, ge=1, le=4096, description="physical cores of the deployment")
    threads: int | None = Field(
        default=None, ge=1, le=8192, description="INFERENCE_NUM_THREADS; default: one per core, or OpenVINO's choice"
    )
    streams: int | None = Field(default=None, ge=1, le=4096, description="NUM_STREAMS of the Offline scenario")
    seq_len: int = Field(default=384, ge=8, le=8192, description="sequence length of both scenarios")
    sparse_weights_rate: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE of INT8 compiles: weights at least this sparse run OpenVINO's "
        "sparse kernels (AMX CPUs only; elsewhere OpenVINO runs them densely); null: dense kernels",
    )
    runtime: str = Field(
        default="openvino",
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="the inference runtime that measures this target (workers.runtimes: openvino, or deepsparse "
        "where `make deepsparse-venv` installed it; a job whose target's runtime is missing drops that target and says why)",
    )
    scenarios: Scenarios = Field(default_factory=Scenarios)

    @field_validator("isa", mode="before")
    @classmethod
    def _isa_known(cls, v: Any) -> Any:
        if v is None:
            return None
        if not isinstance(v, str):
            raise ValueError(f"must be a oneDNN ISA name, one of {', '.join(ONEDNN_ISAS)}")
        isa = v.strip().upper()
        if isa in ("", "DEFAULT", "NONE"):
            return None
        if isa not in ONEDNN_ISAS:
            raise ValueError(f"unknown oneDNN ISA {v!r}; one of {', '.join(ONEDNN_ISAS)} (or null for no cap)")
        return isa

    @field_validator("microarchitecture")
    @classmethod
    def _lower(cls, v: str | None) -> str | None:
        return v.lower() if v is not None else None

    @field_validator("description")
    @classmethod
    def _printable(cls, v: str) -> str:
        if not v.isprintable() or v != v.encode("utf-8", "replace").decode("utf-8"):
            raise ValueError("must be printable text on one line")
        return v


def _validation_message(exc: ValidationError) -> tuple[str, str]:
    """('field.path', 'every error, field by field') of a pydantic error."""
    parts, first = [], ""
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(profile)"
        first = first or loc
        parts.append(f"{loc}: {err['msg']}")
    return first, "; ".join(parts)


def validate_profile(profile: Mapping[str, Any] | TargetProfile, *, source: str = "profile") -> TargetProfile:
    """Check a profile mapping; ``TargetProfileError`` names ``source`` and the bad field(s)."""
    if isinstance(profile, TargetProfile):
        return profile
    if not isinstance(profile, Mapping):
        raise TargetProfileError(
            f"{source}: a target profile must be a mapping of fields, got {type(profile).__name__}", source=source
        )
    try:
        return TargetProfile.model_validate(dict(profile))
    except ValidationError as exc:
        field, message = _validation_message(exc)
        raise TargetProfileError(f"{source}: {message}", source=source, field=field) from None
