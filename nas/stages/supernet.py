"""The supernet stage: train (or reuse, by cache key) the job's weight-sharing supernet."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from nas.context import JobContext
from nas.spec import JobSpec
from search_spaces import space_for
from search_spaces.base_models import read_config
from search_spaces.training_settings import SUPERNET_FILE, SupernetSettings, supernet_key


def supernet_settings(spec: JobSpec) -> SupernetSettings:
    """The job's supernet training settings: its cache key's input."""
    return SupernetSettings(
        **spec.supernet.model_dump(exclude={"enabled"}),
        max_seq_length=spec.task.max_seq_length,
        doc_stride=spec.task.doc_stride,
        seed=spec.seed,
    )


def run_supernet_stage(ctx: JobContext, teacher_dir: str) -> str | None:
    """The supernet's directory; None when the job slices the teacher itself."""
    spec = ctx.spec
    if not spec.supernet.enabled:
        return None
    from nas.ray_cluster import task_cpus
    from workers.ray_tasks import build_supernet

    ctx.update(stage="supernet")
    space = space_for(spec.search_space, read_config(Path(teacher_dir)))
    settings = supernet_settings(spec)
    key = supernet_key(teacher_dir, spec.task.train_file, space, settings)
    out = (ctx.settings.data_dir / "supernets" / key).resolve()
    with ctx.locks(f"supernet:{key}"):
        if not (out / SUPERNET_FILE).is_file():
            kwargs = {"train_file": spec.task.train_file, "space": spec.search_space.model_dump(), "settings": asdict(settings)}
            opts = {"num_cpus": task_cpus(1), "max_retries": ctx.settings.trial_max_retries}
            ctx.wait(build_supernet.options(**opts).remote(teacher_dir, str(out), kwargs, progress=ctx.progress_link("supernet")))
    return str(out)
