"""``hwnas watch`` and the demo show the progress inside long stages (job ``stage_progress``, trial ``progress``)."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from cli.client_commands import _watch_view, progress_renderables, trial_progress_line

TEACHER = {
    "stage": "teacher", "item": "teacher", "phase": "fine-tuning", "step": 120, "total": 480, "unit": "steps",
    "loss": 2.31, "elapsed_s": 60.2, "eta_s": 180.5, "updated_at": "2026-12-02T07:30:00Z",
}  # fmt: skip


def _job(stage_progress: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "f" * 32, "status": "running", "stage": "teacher", "spec": {"targets": ["native"]},
        "progress": {"trials_budget": 6, "completed": 1, "failed": 0, "elapsed_s": 75.0},
        "stage_progress": stage_progress, **extra,
    }  # fmt: skip


def _trial(number: int, state: str, progress: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"number": number, "state": state, "config": {"layers": [0, 1], "heads": [6, 6], "ffn": [384, 384]},
            "measurements": [], "progress": progress, "f1": None, "error": None}  # fmt: skip


def _text(*renderables: Any) -> str:
    console = Console(record=True, width=120, color_system=None)
    for r in renderables:
        console.print(r)
    return console.export_text()


def test_stage_bar_and_running_trials():
    distil = {"stage": "search", "item": "trial 3", "phase": "distil", "step": 40, "total": 120, "unit": "steps", "loss": 1.523, "elapsed_s": 10.0, "eta_s": 20.0}
    trials = [_trial(2, "completed"), _trial(3, "running", distil), _trial(4, "running")]
    text = _text(_watch_view(_job(TEACHER), trials))
    assert "teacher: fine-tuning loss 2.31" in text
    assert "120/480 steps" in text and "elapsed 1:00" in text and "ETA 3:00" in text  # the server's clock, not ours
    assert "━" in text  # the bar itself
    assert "trial 3: distil 40/120 steps, loss 1.52, ETA 0:20" in text
    assert "trial 4: running" in text and "trial 2:" not in text  # only running trials get a line


def test_unknown_figures_and_older_servers():
    early = {**TEACHER, "phase": "tokenising", "step": None, "total": None, "loss": None, "eta_s": None}
    text = _text(*progress_renderables(_job(early), []))
    assert "teacher: tokenising" in text and "loss" not in text
    assert "-/? steps" in text and "ETA -" in text
    # a server without the fields (before they landed): no bar, no crash
    old_job = _job(None)
    del old_job["stage_progress"]
    old_trial = _trial(5, "running")
    del old_trial["progress"]
    assert progress_renderables(old_job, []) == []
    assert f"job {'f' * 32} [running] stage teacher" in _text(_watch_view(old_job, [old_trial]))
    assert trial_progress_line(old_trial).strip() == "trial 5: running"
