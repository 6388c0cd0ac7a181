"""Reuse of evaluated subnets within and across jobs.

A trial's figures depend on the base/teacher (or supernet) weights, the data, the subnet, the
INT8 and measurement settings and the target (profile, and the machine setup it is measured on).
``trial_cache_key`` hashes everything but the last, which is only known once measured: a cached
result is reused only if its measurements' speed fingerprints equal the ones this job's own
baselines were measured with (``same_machine``). Reused artifacts are linked into the new trial's
directory by the artifact store (``ArtifactStore.link``), so deleting the first job keeps them.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from nas.predictors.base import SPEED_KEYS
from core.types import TrialRequest

_PER_TRIAL = ("job_id", "trial_number", "output_dir")


@lru_cache(maxsize=256)
def _content_digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_digest(path: str | None) -> str | None:
    if not path or not os.path.isfile(path):
        return None
    st = os.stat(path)
    return _content_digest(os.path.realpath(path), st.st_size, st.st_mtime_ns)


def weights_digest(directory: str | None) -> str | None:
    """Digest of a model directory's weights and config (names, sizes, config bytes): cheap, and it
    changes whenever a model is retrained into the same path."""
    if not directory or not os.path.isdir(directory):
        return None
    d = Path(directory)
    parts = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(d.iterdir()) if p.suffix in (".safetensors", ".bin")]
    config = d / "config.json"
    parts.append(("config.json", config.read_text() if config.is_file() else None))  # type: ignore[arg-type]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def trial_cache_key(req: TrialRequest, target_profiles: dict[str, dict[str, Any]], *, precision: str = "int8") -> str:
    fields = {k: v for k, v in asdict(req).items() if k not in _PER_TRIAL}
    if precision != "int8":  # INT8 was the only precision when earlier results were stored: their keys stay
        fields["precision"] = precision
    if fields.get("measure_max_repeats") == 5:  # the default, what results stored before the field had: keep their keys
        del fields["measure_max_repeats"]
    if fields.get("task") == "squad-v1.1":  # likewise the default task
        del fields["task"]
    if fields.get("deployment") is None:  # no deployment sweep, as results stored before it had: keep their keys
        fields.pop("deployment", None)
    if fields.get("compression") is None:  # no pruning or QAT, likewise
        fields.pop("compression", None)
    fields["subnet"] = req.subnet.encoding()
    fields["teacher_dir"] = weights_digest(req.teacher_dir)
    fields["supernet_dir"] = weights_digest(req.supernet_dir) if req.supernet_dir else None
    fields["train_file"] = file_digest(req.train_file)
    fields["eval_file"] = file_digest(req.eval_file)
    fields["targets"] = [[t, target_profiles.get(t)] for t in req.targets]
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def speed_signature(fingerprint: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(fingerprint.get(k) for k in SPEED_KEYS)


def same_machine(cached: dict[str, dict[str, Any]], here: dict[str, dict[str, Any]]) -> bool:
    """``cached`` and ``here`` map target -> fingerprint; reuse needs every target measured alike."""
    return bool(here) and all(t in cached and speed_signature(cached[t]) == speed_signature(fp) for t, fp in here.items())
