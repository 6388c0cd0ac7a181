"""Service settings, read once from the environment (prefix ``HWNAS_``) by whoever starts the service.

Nothing here runs at import time: call ``Settings()`` (or ``Settings(db_url=...)`` in tests)
and pass the object down. Workers receive plain values, never this object.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.artifact_store import ArtifactStore, make_artifact_store


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HWNAS_", extra="ignore")

    data_dir: Path = Field(default=Path("hwnas-data"), description="jobs' artifacts, teachers, the SQLite file")
    db_url: str | None = Field(default=None, description="SQLAlchemy URL; default sqlite:///<data_dir>/hwnas.db")
    ray_address: str | None = Field(default=None, description="existing Ray cluster; default: start one in-process")
    ray_num_cpus: int | None = Field(default=None, description="CPUs of the in-process Ray (default: all)")
    host: str = "127.0.0.1"
    port: int = 8000
    coordinator: str = Field(
        default="process",
        pattern="^(process|thread|external)$",
        description="where `hwnas serve` runs the coordinator: its own child process (so the API never waits on "
        "the search's Python work), a thread of the API process, or external (`hwnas coordinator` run apart)",
    )
    coordinator_poll_s: float = Field(default=0.5, gt=0, le=60, description="how often the coordinator looks for new jobs and cancels")
    max_concurrent_trials: int = Field(default=1, ge=1, description="trials in flight per job")
    trial_max_retries: int = Field(default=1, ge=0, description="Ray retries of a trial whose worker died")
    auth: str = Field(
        default="auto",
        pattern="^(auto|required|open)$",
        description="required: every /api/v1 call needs a token; open: none; auto: required unless bound to loopback",
    )
    max_body_bytes: int = Field(default=1 << 20, ge=1024, description="larger request bodies get 413")
    artifact_store: str = Field(default="local", description="where trials' files live (core.artifact_store.ARTIFACT_STORES)")
    data_roots: list[Path] = Field(
        default_factory=list,
        description="directories job specs may read data files and base models from, besides data_dir "
        "(empty: only data_dir when tokens are required, any readable path when auth is open)",
    )

    @field_validator("artifact_store")
    @classmethod
    def _known_store(cls, value: str) -> str:
        from core.artifact_store import ARTIFACT_STORES

        if value not in ARTIFACT_STORES:
            raise ValueError(f"unknown artifact store {value!r} (known: {', '.join(sorted(ARTIFACT_STORES))})")
        return value

    def resolved_db_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{(self.data_dir / 'hwnas.db').resolve()}"

    def auth_required(self) -> bool:
        if self.auth == "auto":
            return self.host not in ("127.0.0.1", "localhost", "::1")
        return self.auth == "required"

    def allowed_data_roots(self) -> list[Path] | None:
        """Resolved directories job specs may read files from; None: any path the server can read.

        A spec names files the server opens, and its errors would tell the caller whether a path
        exists, so where callers need tokens (other users, other hosts) only the data directory
        (which holds the named-data-set cache) and ``data_roots`` are allowed. An open loopback
        service is its owner's tool and keeps any readable path, unless ``data_roots`` is set.
        """
        if not self.data_roots and not self.auth_required():
            return None
        roots: list[Path] = []
        for root in (self.data_dir, *self.data_roots):
            resolved = root.expanduser().resolve(strict=False)
            if resolved not in roots:
                roots.append(resolved)
        return roots

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    def artifacts(self) -> ArtifactStore:
        """The artifact store over ``artifacts_dir`` (a shared path every Ray node mounts)."""
        return make_artifact_store(self.artifact_store, self.artifacts_dir)

    @property
    def teachers_dir(self) -> Path:
        return self.data_dir / "teachers"
