"""The task's figures besides F1/EM (SQuAD v2.0: HasAns/NoAns, the null threshold): stored per trial and
baseline (migration 0008), returned by the API's schemas, reused with a cached trial; None for v1.1."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import inspect

from api.schemas import BaselineOut, TrialOut
from core.types import Measurement, SubnetConfig, TrialResult
from nas.store import repo
from nas.store.db import make_engine, session_factory, upgrade

V2 = {
    "task": "squad-v2.0", "metric": "SQuAD v2.0 F1 (official semantics; null threshold chosen on held-out train questions)",
    "exact": 50.0, "f1": 55.0, "HasAns_f1": 40.0, "HasAns_total": 80, "NoAns_f1": 85.0, "NoAns_total": 40, "threshold": -1.25,
}  # fmt: skip


def _result(number: int, **kw) -> TrialResult:  # type: ignore[no-untyped-def]
    m = Measurement("native", "int8", 128, 1, 1.0, 1.5, 2.0, 100, 16, 900.0, {"cpu_model_name": "x"})
    return replace(TrialResult(number, SubnetConfig((0,), (2,), (32,)), 55.0, 50.0, 120, 1000, 4096, (m,), {}, "/a"), **kw)


def test_metrics_columns_round_trip_and_reach_the_schemas(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    for table in ("hwnas_trials", "hwnas_baselines"):
        assert "metrics" in {c["name"] for c in inspect(engine).get_columns(table)}
    sessions = session_factory(engine)
    with sessions.begin() as s:
        repo.create_job(s, job_id="j", spec={"budget": {"trials": 2}}, synthetic=False)
        repo.start_trial(s, "j", number=0, optuna_trial_id=0, config={"layers": [0], "heads": [2], "ffn": [32]})
        repo.start_trial(s, "j", number=1, optuna_trial_id=1, config={"layers": [0], "heads": [2], "ffn": [32]})
    with sessions.begin() as s:
        repo.complete_trial(s, "j", _result(0, metrics=V2))
        repo.complete_trial(s, "j", _result(1))  # a v1.1 trial: nothing besides F1/EM
        repo.save_baseline(s, "j", "fp32", _result(-1, metrics={**V2, "threshold": 0.5}))
        repo.save_baseline(s, "j", "int8", _result(-2))
    with sessions() as s:
        v2, v1 = repo.get_trial(s, "j", 0), repo.get_trial(s, "j", 1)
        assert v2.metrics == V2 and v2.f1 == 55.0 and v1.metrics is None
        assert TrialOut.model_validate(v2).metrics == V2 and TrialOut.model_validate(v1).metrics is None
        baselines = {b.precision: BaselineOut.model_validate(b) for b in repo.baselines_of(s, "j")}
        assert baselines["fp32"].metrics == {**V2, "threshold": 0.5} and baselines["int8"].metrics is None

        from nas.stages.search import result_from_row

        reused = result_from_row(v2, trial_number=5, subnet=_result(0).subnet)
        assert reused.metrics == V2 and reused.f1 == 55.0
        assert result_from_row(v1, trial_number=6, subnet=_result(0).subnet).metrics == {}


def test_migration_0008_downgrades_to_0007_and_back(db_url: str) -> None:
    from nas.store.db import downgrade

    upgrade(db_url)
    downgrade(db_url, "0007")
    columns = {c["name"] for c in inspect(make_engine(db_url)).get_columns("hwnas_trials")}
    assert "metrics" not in columns and "progress" in columns  # 0007's column stays
    assert "metrics" not in {c["name"] for c in inspect(make_engine(db_url)).get_columns("hwnas_baselines")}
    upgrade(db_url)
    assert "metrics" in {c["name"] for c in inspect(make_engine(db_url)).get_columns("hwnas_baselines")}
