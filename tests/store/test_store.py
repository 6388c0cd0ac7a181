"""Migrations up and down, and the store operations the coordinator relies on, on both backends."""

from __future__ import annotations

import optuna
import pytest
from sqlalchemy import inspect

from nas.store import repo
from nas.store.db import downgrade, make_engine, session_factory, upgrade
from core.types import Measurement, SubnetConfig, TrialResult

TABLES = {"hwnas_jobs", "hwnas_trials", "hwnas_baselines", "hwnas_measurements", "hwnas_events", "hwnas_api_tokens", "hwnas_artifacts", "hwnas_coordinator"}


def _result(number: int) -> TrialResult:
    m = Measurement("native", "int8", 128, 1, 1.0, 1.5, 2.0, 100, 16, 900.0, {"cpu_model_name": "x", "emulated": False})
    return TrialResult(number, SubnetConfig((0, 1), (2, 2), (32, 32)), 71.5, 60.0, 40, 1000, 4096, (m,), {"extract": 0.1}, "/a")


def test_migrations_up_and_down_coexist_with_optuna(db_url: str) -> None:
    optuna.storages.RDBStorage(db_url)  # Optuna's own tables and alembic_version first
    upgrade(db_url)
    engine = make_engine(db_url)
    names = set(inspect(engine).get_table_names())
    assert TABLES <= names and "hwnas_alembic_version" in names and "alembic_version" in names
    downgrade(db_url)
    names = set(inspect(make_engine(db_url)).get_table_names())
    assert not (TABLES & names) and "alembic_version" in names, "downgrade must leave Optuna's tables alone"
    upgrade(db_url)
    assert TABLES <= set(inspect(make_engine(db_url)).get_table_names())


def test_trial_lifecycle_round_trip(db_url: str) -> None:
    upgrade(db_url)
    sessions = session_factory(make_engine(db_url))
    with sessions.begin() as s:
        repo.create_job(s, job_id="j1", spec={"budget": {"trials": 2}, "name": "x"}, synthetic=True)
    with sessions.begin() as s:
        repo.start_trial(s, "j1", number=0, optuna_trial_id=1, config=_result(0).subnet.to_dict())
        repo.start_trial(s, "j1", number=1, optuna_trial_id=2, config=_result(1).subnet.to_dict())
    with sessions.begin() as s:
        repo.complete_trial(s, "j1", _result(0))
        repo.fail_trial(s, "j1", 1, "RuntimeError: boom")
    with sessions() as s:
        assert repo.count_trials(s, "j1") == {"completed": 1, "failed": 1}
        done = repo.trials_of(s, "j1", state="completed")[0]
        assert done.f1 == pytest.approx(71.5)
        assert done.measurements[0].fingerprint["cpu_model_name"] == "x"
        assert repo.get_trial(s, "j1", 1).error == "RuntimeError: boom"
        assert repo.get_job(s, "j1").synthetic_data is True


def test_a_completed_trial_is_never_overwritten_by_a_later_failure(db_url: str) -> None:
    """A coordinator killed between the store's commit and Optuna's tell finds the trial RUNNING in
    Optuna on restart; failing it there must not lose the stored result."""
    upgrade(db_url)
    sessions = session_factory(make_engine(db_url))
    with sessions.begin() as s:
        repo.create_job(s, job_id="j3", spec={"budget": {"trials": 1}}, synthetic=False)
        repo.start_trial(s, "j3", number=0, optuna_trial_id=1, config=_result(0).subnet.to_dict())
    with sessions.begin() as s:
        repo.complete_trial(s, "j3", _result(0))
    with sessions.begin() as s:
        repo.fail_trial(s, "j3", 0, "coordinator restarted while the trial was running")
    with sessions() as s:
        row = repo.get_trial(s, "j3", 0)
        assert (row.state, row.error, row.f1) == ("completed", None, pytest.approx(71.5))


def test_unique_trial_number_per_job(db_url: str) -> None:
    from sqlalchemy.exc import IntegrityError

    upgrade(db_url)
    sessions = session_factory(make_engine(db_url))
    with sessions.begin() as s:
        repo.create_job(s, job_id="j2", spec={"budget": {"trials": 1}}, synthetic=False)
        repo.start_trial(s, "j2", number=0, optuna_trial_id=1, config={})
    with pytest.raises(IntegrityError), sessions.begin() as s:
        repo.start_trial(s, "j2", number=0, optuna_trial_id=2, config={})
    with sessions() as s:  # the failed write lost nothing
        assert repo.count_trials(s, "j2") == {"running": 1}


def test_cancel_and_claim_are_atomic_between_api_and_coordinator(db_url: str) -> None:
    """The API and the coordinator are separate processes: a queued job cancelled before the
    coordinator claims it stays cancelled; a running one is only flagged."""
    upgrade(db_url)
    sessions = session_factory(make_engine(db_url))
    with sessions.begin() as s:
        for job_id in ("q1", "q2"):
            repo.create_job(s, job_id=job_id, spec={"budget": {"trials": 1}}, synthetic=False)
    with sessions.begin() as s:
        assert repo.jobs_to_coordinate(s) == (["q1", "q2"], [])
        assert repo.cancel_job(s, "q1") == "cancelled"
    with sessions.begin() as s:
        assert repo.claim_job(s, "q1", first_start=True) is False  # too late: it stays cancelled
        assert repo.claim_job(s, "q2", first_start=True) is True
    with sessions.begin() as s:
        assert repo.cancel_job(s, "q2") == "requested"
        assert repo.cancel_job(s, "q1") == "cancelled"  # already: the route answers 409
        assert repo.cancel_job(s, "nope") == "missing"
    with sessions() as s:
        assert repo.get_job(s, "q1").status == "cancelled" and repo.get_job(s, "q2").status == "running"
        assert repo.jobs_to_coordinate(s) == ([], ["q2"])
        assert repo.coordinator_beat(s) is None


def _lease(sessions, token: str, pid: int, *, gone: bool = False, nodes: list | None = None):  # type: ignore[no-untyped-def]
    with sessions.begin() as s:
        holder = repo.take_lease(s, token=token, host="h", pid=pid, started_at=repo.utcnow(), nodes=nodes or [],
                                 stale_after_s=15.0, holder_gone=gone)
        return None if holder is None else (holder.token, holder.pid)


def test_one_coordinator_holds_the_lease_until_it_stops_dies_or_goes_stale(db_url: str) -> None:
    """Two coordinators on one database: the first takes the lease, the second stands by; the
    lease passes on at a clean release, at once when the holder is known dead, else after it ages."""
    from datetime import timedelta

    from sqlalchemy import update

    from nas.store.models import CoordinatorBeat

    upgrade(db_url)
    sessions = session_factory(make_engine(db_url))
    assert _lease(sessions, "a", 1, nodes=[{"node_id": "n"}]) is None  # free: a takes it
    assert _lease(sessions, "b", 2) == ("a", 1)  # a is fresh: b stands by
    assert _lease(sessions, "a", 1) is None  # a renews
    with sessions() as s:
        assert (repo.coordinator_beat(s).token, repo.coordinator_beat(s).pid) == ("a", 1)
    assert _lease(sessions, "b", 2, gone=True) is None  # a died (kill -9 on b's host): b takes over now
    assert _lease(sessions, "a", 1) == ("b", 2)  # a came back: it lost the lease and must stop
    with sessions.begin() as s:  # b stalls past the stale time
        s.execute(update(CoordinatorBeat).values(beat_at=repo.utcnow() - timedelta(seconds=20)))
    assert _lease(sessions, "c", 3) is None and _lease(sessions, "b", 2) == ("c", 3)
    with sessions.begin() as s:
        repo.release_lease(s, "b")  # not the holder: no effect
    assert _lease(sessions, "a", 1) == ("c", 3)
    with sessions.begin() as s:
        repo.release_lease(s, "c")  # c stops cleanly: a takes over at once
    assert _lease(sessions, "a", 1) is None
    with sessions() as s:
        beat = repo.coordinator_beat(s)
        assert (beat.token, beat.pid, beat.nodes) == ("a", 1, [])


def test_of_coordinators_racing_for_a_free_lease_exactly_one_wins(db_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    upgrade(db_url)
    sessions = session_factory(make_engine(db_url))
    for round_ in range(3):  # an absent row (insert race), then a released one (update race), twice
        if round_:
            with sessions.begin() as s:
                repo.release_lease(s, repo.coordinator_beat(s).token)
        barrier = Barrier(6)

        def race(i: int) -> bool:
            barrier.wait()
            return _lease(sessions, f"r{round_}-{i}", 100 + i) is None

        with ThreadPoolExecutor(6) as pool:
            won = list(pool.map(race, range(6)))
        assert sum(won) == 1, won
        with sessions() as s:
            assert repo.coordinator_beat(s).token == f"r{round_}-{won.index(True)}"
