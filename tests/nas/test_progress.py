"""Progress inside long stages: the reporter's throttle and ETA, and the path from a real Ray task
through the job's progress board into the store (SQLite and PostgreSQL), where stale reports are dropped."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from core.progress import ProgressReporter, current, reporting
from tests.helpers import wait_until


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _reporter(min_interval_s: float = 1.0) -> tuple[ProgressReporter, list[dict[str, Any]], FakeClock]:
    sent: list[dict[str, Any]] = []
    clock = FakeClock()
    return ProgressReporter(sent.append, stage="teacher", item="teacher", min_interval_s=min_interval_s, clock=clock), sent, clock


def test_steps_are_throttled_but_phases_and_the_last_step_always_go_out() -> None:
    rep, sent, clock = _reporter()
    rep.phase("fine-tuning")
    for step in range(1, 11):
        clock.t += 0.25
        rep.step(step, 10, loss=5.0 - step * 0.1)
    # phase at t=100; steps every 0.25 s: one per second gets through, and step 10 (the last) always
    assert [s["step"] for s in sent] == [None, 4, 8, 10]
    last = sent[-1]
    assert last["phase"] == "fine-tuning" and last["total"] == 10 and last["unit"] == "steps"
    assert last["loss"] == pytest.approx(4.0)
    assert last["elapsed_s"] == pytest.approx(2.5)
    assert last["eta_s"] == 0


def test_eta_is_the_pace_so_far_times_the_steps_left() -> None:
    rep, sent, clock = _reporter(min_interval_s=0)
    rep.phase("fine-tuning", total=100)
    clock.t += 30
    rep.step(25, 100, loss=2.0)
    assert sent[-1]["eta_s"] == pytest.approx(90.0)  # 30 s for 25 steps: 75 more take 90 s
    rep.phase("evaluating")  # a new phase: no steps yet, no ETA, the item's clock keeps running
    assert sent[-1]["step"] is None and sent[-1]["eta_s"] is None and sent[-1]["elapsed_s"] == pytest.approx(30)


def test_a_resumed_loop_times_only_the_steps_it_runs() -> None:
    rep, sent, clock = _reporter(min_interval_s=0)
    rep.phase("fine-tuning")
    clock.t += 5
    rep.step(401, 500)  # resumed at its checkpoint: step 401 came 5 s after the phase began (loading)
    clock.t += 10
    rep.step(411, 500)
    assert sent[-1]["eta_s"] == pytest.approx(89 * 1.0)  # 10 s for 10 steps here, 89 left


def test_a_listener_that_fails_never_fails_the_work() -> None:
    def broken(_: dict[str, Any]) -> None:
        raise ConnectionError("board gone")

    rep = ProgressReporter(broken, stage="search", item="trial 0")
    rep.phase("distil")
    rep.step(1, 2)  # no exception: reporting just stops


def test_current_is_a_silent_reporter_outside_any_task() -> None:
    current().phase("anything")
    current().step(1, 2, loss=0.5)
    rep, sent, _ = _reporter()
    with reporting(rep):
        current().phase("inside")
    current().phase("outside again")
    assert [s["phase"] for s in sent] == ["inside"]


# ---- board -> store, with real Ray --------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sessions(request, tmp_path):  # type: ignore[no-untyped-def]
    from nas.store.db import make_engine, session_factory, upgrade
    from tests.store.conftest import _drop, _pg_database

    if request.param == "sqlite":
        url, name = f"sqlite:///{tmp_path / 'hwnas.db'}", None
    else:
        name = _pg_database()
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    upgrade(url)
    engine = make_engine(url)
    yield session_factory(engine)
    engine.dispose()
    if name:
        _drop(name)


def _running_job(sessions, stage: str) -> str:  # type: ignore[no-untyped-def]
    from nas.store import repo

    job_id = uuid.uuid4().hex
    with sessions.begin() as s:
        repo.create_job(s, job_id=job_id, spec={"budget": {"trials": 2}}, synthetic=False)
        repo.update_job(s, job_id, status="running", stage=stage)
    return job_id


def test_a_ray_task_reports_into_the_job_and_its_trial(ray_local, sessions) -> None:  # type: ignore[no-untyped-def]
    import ray

    from nas.progress import ProgressRecorder
    from nas.store import repo
    from nas.store.models import Event

    job_id = _running_job(sessions, "teacher")
    with sessions.begin() as s:
        repo.start_trial(s, job_id, number=0, optuna_trial_id=1, config={"layers": [0, 1]})
    recorder = ProgressRecorder(job_id, sessions, every_s=0.2).start()
    try:
        @ray.remote(num_cpus=0)
        def train(link, steps: int) -> int:
            from core.progress import reporting

            with reporting(link.reporter(min_interval_s=0)) as rep:
                rep.phase("fine-tuning")
                for i in range(1, steps + 1):
                    rep.step(i, steps, loss=1.0 / i)
            return steps

        ray.get(train.remote(recorder.link("job", stage="teacher", item="teacher"), 20))
        ray.get(train.remote(recorder.link("trial:0", stage="search", item="trial 0"), 7))

        def stored() -> Any:
            with sessions() as s:
                job, trial = repo.get_job(s, job_id), repo.get_trial(s, job_id, 0)
                return (job.stage_progress, trial.progress) if job.stage_progress and trial.progress else None

        job_p, trial_p = wait_until(stored, 30, "both reports stored")
        assert (job_p["item"], job_p["phase"], job_p["step"], job_p["total"]) == ("teacher", "fine-tuning", 20, 20)
        assert job_p["loss"] == pytest.approx(0.05) and job_p["updated_at"]
        assert (trial_p["item"], trial_p["step"], trial_p["total"]) == ("trial 0", 7, 7)
        with sessions() as s:
            kinds = [e.kind for e in s.query(Event).filter_by(job_id=job_id)]
        assert "progress" in kinds  # the dashboard's event stream sees it move

        # a report of a stage that is over (the job moved on) is dropped; a new stage starts clean
        with sessions.begin() as s:
            repo.update_job(s, job_id, stage="baseline")
            assert repo.get_job(s, job_id).stage_progress is None
            assert repo.record_progress(s, job_id, "job", {**job_p, "step": 21}) is False
            repo.fail_trial(s, job_id, 0, "boom")
            assert repo.get_trial(s, job_id, 0).progress is None
            assert repo.record_progress(s, job_id, "trial:0", trial_p) is False
    finally:
        recorder.stop()
