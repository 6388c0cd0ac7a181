"""The teacher stage: the base model itself when it has a QA head, else a fine-tuned copy (cached by key).

The job's ``teacher_metrics`` say which: ``{"given": true, "source": <base dir>}`` for a base that is the
teacher, ``{"given": false, "source": <base dir>, ...}`` with the fine-tuning's metrics otherwise."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from nas.context import JobContext
from nas.spec import JobSpec
from search_spaces.base_models import has_qa_head, resolve_base_model


def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def teacher_key(base_dir: Path, spec: JobSpec) -> str:
    """Cache key of a fine-tuned teacher: base weights, training data and every setting that changes it."""
    weights = sorted(p for p in base_dir.iterdir() if p.suffix in (".safetensors", ".bin"))
    payload = {
        "base": [(p.name, p.stat().st_size) for p in weights] + [str(base_dir)],
        "train": _file_digest(spec.task.train_file),
        "eval": _file_digest(spec.task.eval_file),
        "teacher": spec.teacher.model_dump(),
        "seq": spec.task.max_seq_length,
        "stride": spec.task.doc_stride,
        "max_eval": spec.task.max_eval_examples,
        "seed": spec.seed,
    }
    if (spec.task.version or "squad-v1.1") != "squad-v1.1":  # v1.1 teachers keep the keys they were cached under
        payload["task"] = spec.task.version
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def run_teacher_stage(ctx: JobContext) -> str:
    """The teacher's directory; trains it (a Ray task) unless this key's teacher exists already."""
    from nas.ray_cluster import task_cpus
    from workers.ray_tasks import build_teacher

    spec = ctx.spec
    ctx.update(stage="teacher")
    base_dir = resolve_base_model(spec.base_model)
    if has_qa_head(base_dir):  # the base is the teacher as it is: the job says so (the dashboard: "teacher: given")
        ctx.update(teacher_dir=str(base_dir), teacher_metrics={"given": True, "source": str(base_dir)})
        return str(base_dir)
    key = teacher_key(base_dir, spec)
    out = (ctx.settings.teachers_dir / key).resolve()
    with ctx.locks(key):
        if not (out / "metrics.json").is_file():
            kwargs = {
                "train_file": spec.task.train_file,
                "eval_file": spec.task.eval_file,
                "max_seq_length": spec.task.max_seq_length,
                "doc_stride": spec.task.doc_stride,
                "max_train_examples": spec.teacher.max_train_examples,
                "max_eval_examples": spec.task.max_eval_examples,
                "settings": {
                    "epochs": spec.teacher.epochs,
                    "max_steps": spec.teacher.max_steps,
                    "learning_rate": spec.teacher.learning_rate,
                    "batch_size": spec.teacher.batch_size,
                    "warmup_ratio": spec.teacher.warmup_ratio,
                    "seed": spec.seed,
                },
            }
            if (spec.task.version or "squad-v1.1") != "squad-v1.1":  # held-out articles and a null threshold
                kwargs["task"] = spec.task.version
            task = build_teacher.options(num_cpus=task_cpus(1))
            ctx.wait(task.remote(str(base_dir), str(out), kwargs, progress=ctx.progress_link("teacher")))
    metrics = json.loads((out / "metrics.json").read_text())
    ctx.update(teacher_dir=str(out), teacher_metrics={"given": False, "source": str(base_dir), **metrics})
    return str(out)
