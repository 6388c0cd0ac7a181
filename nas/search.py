"""One job's search stage: Optuna asks, Ray builds and measures, the store and Optuna are told.

Per proposal, cheapest first: a subnet this job already measured is answered from the store; one
measured by another job with the same cache key on the same kind of machine is reused (its
artifacts linked in); one the speed predictor rules out by a clear margin is skipped (recorded,
never on a front); anything else is built (a Ray ``build`` task) and measured (one ``measure``
task per target). Every result is told to Optuna with its objective values and named constraints.
The refine stage then distils the fronts' best members standalone and measures them again.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from search_spaces.base_models import read_config
from nas.errors import JobCancelled, failure_reason
from nas.dedupe import link_artifacts, same_machine, trial_cache_key
from nas.objectives import JobObjectives
from nas.pareto import pareto_keys
from nas.predictors.base import fingerprint_key
from nas.predictors.tracker import SpeedPredictors
from nas.samplers import grid_of, make_sampler
from nas.spec import JobSpec
from nas.store import repo
from core.types import Measurement, SubnetConfig, TrialRequest, TrialResult
from search_spaces.bert.space import BertSpace

if TYPE_CHECKING:
    from nas.coordinator import Coordinator

log = logging.getLogger(__name__)
STALE = "hwnas:stale"  # trial failed by a restart: its budget is spent again
SKIPPED = "hwnas:skipped"  # ruled out by the predictor: no budget spent
RETRIED = "hwnas:retried_as_new_trial"  # lost with its worker or node: failed, and run again (no budget spent)
ANCHOR = "hwnas:anchor"  # one of the fixed first trials (BertSpace.anchors)


def system_failure(exc: BaseException) -> bool:
    """A task that died with its process or node (not an error of the pipeline itself)."""
    import ray.exceptions as rex

    lost = (rex.WorkerCrashedError, rex.NodeDiedError, rex.OutOfMemoryError, rex.LocalRayletDiedError, rex.ObjectLostError, rex.OwnerDiedError)
    return isinstance(exc, lost)
MAX_SKIPS_IN_A_ROW = 20  # then the predictor stops dropping, so a search always progresses


@dataclass
class _Flight:
    """One trial between dispatch and result: built first, then measured once per target."""

    trial: optuna.Trial
    subnet: SubnetConfig
    request: TrialRequest
    predicted: dict[str, float] = field(default_factory=dict)  # target -> predicted p90 before measuring
    started: float = field(default_factory=time.monotonic)
    built: TrialResult | None = None
    measurements: list[Any] = field(default_factory=list)


def result_from_row(row: Any, *, trial_number: int, subnet: SubnetConfig, artifact_dir: str | None = None) -> TrialResult:
    """A stored trial's figures as a ``TrialResult`` (for reuse under another trial number)."""
    return TrialResult(
        trial_number=trial_number,
        subnet=subnet,
        f1=row.f1,
        exact_match=row.exact_match,
        num_eval_questions=row.eval_questions or 0,
        parameters=row.parameters or 0,
        ir_size_bytes=row.ir_size_bytes or 0,
        measurements=tuple(Measurement(**{c: getattr(m, c) for c in Measurement.__dataclass_fields__}) for m in row.measurements),
        stage_seconds={},
        artifact_dir=artifact_dir or row.artifact_dir or "",
        host=row.host or "",
        checksums={a.name: a.sha256 for a in row.artifacts},
    )


class JobSearch:
    def __init__(self, coord: "Coordinator", job_id: str, spec: JobSpec, teacher_dir: str, supernet_dir: str | None) -> None:
        self.coord, self.job_id, self.spec = coord, job_id, spec
        self.teacher_dir, self.supernet_dir = teacher_dir, supernet_dir
        self.sessions = coord.sessions
        base_config = read_config(Path(teacher_dir))
        self.space = BertSpace.from_spec(spec.search_space, base_config)
        self.base_hidden = int(base_config.hidden_size)
        with self.sessions() as s:
            baselines = {b.precision: b for b in repo.baselines_of(s, job_id)}
            self.baseline_fps = {
                m.target: m for m in (baselines["int8"].measurements if "int8" in baselines else []) if m.precision == "int8"
            }
            fp32 = baselines.get("fp32")
            self.objectives = JobObjectives.of(spec, fp32.f1 if fp32 is not None else None)
            self.study_name = repo.get_job(s, job_id).study_name  # type: ignore[union-attr]
        self.study = self._study()
        self._anchors = [] if spec.sampler == "grid" else self.space.anchors(spec.anchor_trials)
        self.predictors = self._predictors()
        self.profiles = self._profiles()

    # ---- set-up ------------------------------------------------------------------------------
    def _study(self) -> optuna.Study:
        grid = grid_of(self.space.sample) if self.spec.sampler == "grid" else None
        study = optuna.create_study(
            storage=self.coord._storage,
            study_name=self.study_name,
            directions=self.objectives.directions,
            sampler=make_sampler(self.spec.sampler, seed=self.spec.seed if self.spec.sampler_seed is None else self.spec.sampler_seed, grid=grid),
            load_if_exists=True,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(self.objectives.names)
        study.set_user_attr("hwnas:job_id", self.job_id)
        study.set_user_attr("hwnas:objective", self.spec.objective)
        study.set_user_attr("hwnas:min_f1", self.objectives.min_f1)
        return study

    def _profiles(self) -> dict[str, dict[str, Any]]:
        from targets import get_target

        return {t: get_target(t).to_profile() for t in self.spec.targets}

    def _speed_key(self, m: Any) -> str:
        return fingerprint_key(m.target, m.precision, m.seq_len, m.latency_batch, m.throughput_batch, m.fingerprint or {})

    def _predictors(self) -> SpeedPredictors | None:
        """Warm-started from every stored measurement taken like this job's INT8 baseline, per target."""
        if self.spec.predictor.kind == "none" or set(self.baseline_fps) != set(self.spec.targets):
            return None
        from workers.pipeline import full_subnet

        keys = {t: self._speed_key(m) for t, m in self.baseline_fps.items()}
        predictors = SpeedPredictors(self.spec.predictor.kind, base_hidden=self.base_hidden, keys=keys)
        full = full_subnet(self.teacher_dir)
        with self.sessions() as s:
            for target, key in keys.items():
                base = self.baseline_fps[target]
                samples = [(full, base.p90_ms, base.throughput_sps)]
                samples += [
                    (SubnetConfig.from_dict(config), m.p90_ms, m.throughput_sps)
                    for config, m in repo.speed_samples(s, target)
                    if self._speed_key(m) == key
                ]
                used = predictors.warm_start(target, key, samples)
                log.info("job %s: %s predictor warm-started from %d measurements", self.job_id, target, used)
        return predictors

    # ---- the loop ----------------------------------------------------------------------------
    def run(self) -> None:
        import ray

        coord, spec, study = self.coord, self.spec, self.study
        self._fail_stale()
        seen: dict[str, int] = {}
        with self.sessions() as s:
            for row in repo.trials_of(s, self.job_id, state="completed"):
                seen.setdefault(SubnetConfig.from_dict(row.config).encoding(), row.number)
        finished = sum(
            1
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
            if not {STALE, SKIPPED, RETRIED} & set(t.user_attrs)
        )
        deadline = time.monotonic() + spec.budget.timeout_s if spec.budget.timeout_s else None
        concurrent = min(spec.budget.max_concurrent, coord.settings.max_concurrent_trials)
        cpus = coord._task_cpus(concurrent)
        flights: dict[Any, _Flight] = {}  # every outstanding task ref -> its trial's state
        in_flight: set[int] = set()
        try:
            self._loop(flights, in_flight, finished, deadline, concurrent, cpus, seen)
        except BaseException:
            for ref in list(flights):  # an outage or a crash of this loop: no task is left running unowned
                ray.cancel(ref, force=True)
            raise

    def _loop(
        self, flights: dict[Any, _Flight], in_flight: set[int], finished: int, deadline: float | None,
        concurrent: int, cpus: float, seen: dict[str, int],
    ) -> None:  # fmt: skip
        """The dispatch/collect loop of ``run`` (its state passed in so ``run`` can clean up after it)."""
        import ray

        from workers.pipeline import finalize
        from workers.ray_tasks import build

        coord, spec, study = self.coord, self.spec, self.study
        cancel = coord._cancel[self.job_id]
        skips_in_a_row = 0
        retries: dict[str, int] = {}  # subnet encoding -> times re-run after a lost worker

        def fail(flight: _Flight, reason: str) -> None:
            for ref in [r for r, f in flights.items() if f is flight]:
                ray.cancel(ref, force=True)
                flights.pop(ref)
            in_flight.discard(flight.trial.number)
            self._record_failure(flight.trial, reason)

        while True:
            if cancel.is_set():
                for ref in list(flights):
                    ray.cancel(ref, force=True)
                if not coord._stopping.is_set():  # on shutdown they stay RUNNING: a restart re-runs them
                    for flight in {id(f): f for f in flights.values()}.values():
                        self._record_failure(flight.trial, "cancelled")
                return
            out_of_time = deadline is not None and time.monotonic() > deadline
            while not out_of_time and len(in_flight) < concurrent and finished + len(in_flight) < spec.budget.trials:
                if cancel.is_set():
                    break
                trial = self._ask()
                subnet = self.space.sample(trial)
                trial.set_user_attr("hwnas:config", subnet.to_dict())
                out = coord.settings.artifacts_dir.resolve() / self.job_id / f"trial-{trial.number}"
                request = self._request(trial.number, subnet, out)
                key = trial_cache_key(request, self.profiles)
                predicted = self._predict(subnet)
                with self.sessions.begin() as s:
                    repo.start_trial(
                        s, self.job_id, number=trial.number, optuna_trial_id=trial._trial_id, config=subnet.to_dict(),
                        cache_key=key, predicted=predicted or None,
                    )  # fmt: skip
                if subnet.encoding() in seen:
                    self._reuse_own(trial, subnet, seen[subnet.encoding()])
                    finished += 1
                    continue
                if self._reuse_other(trial, subnet, key, out):
                    seen.setdefault(subnet.encoding(), trial.number)
                    finished += 1
                    continue
                reason = self._drop_reason(predicted) if skips_in_a_row < MAX_SKIPS_IN_A_ROW else None
                if reason:
                    self._skip(trial, reason)
                    skips_in_a_row += 1
                    continue
                skips_in_a_row = 0
                flight = _Flight(trial, subnet, request, {t: p["p90_ms"] for t, p in predicted.items()})
                ref = build.options(num_cpus=cpus, max_retries=0).remote(flight.request)  # lost workers: see retries
                flights[ref] = flight
                in_flight.add(trial.number)
            if not flights:
                return
            ready, _ = ray.wait(list(flights), num_returns=1, timeout=1.0)
            for flight in {id(f): f for f in flights.values()}.values():
                if time.monotonic() - flight.started > spec.budget.trial_timeout_s:
                    stage = "building" if flight.built is None else "measuring"
                    fail(flight, f"TimeoutError: trial still {stage} after budget.trial_timeout_s = {spec.budget.trial_timeout_s:g} s; its tasks were cancelled")
                    finished += 1
            for ref in ready:
                flight = flights.pop(ref, None)
                if flight is None:  # already failed through a sibling task
                    continue
                try:
                    value = ray.get(ref)
                except Exception as exc:
                    reason = failure_reason(exc)
                    done = retries.get(flight.subnet.encoding(), 0)
                    if system_failure(exc) and done < coord.settings.trial_max_retries:
                        # failed with its reason, then the same subnet is asked again (bounded); no budget spent
                        retries[flight.subnet.encoding()] = done + 1
                        flight.trial.set_user_attr(RETRIED, True)
                        fail(flight, f"{reason} [worker lost: retry {done + 1} of {coord.settings.trial_max_retries} as a new trial]")
                        study.enqueue_trial(flight.trial.params, user_attrs={"hwnas:retry_of": flight.trial.number})
                        continue
                    fail(flight, reason)
                    finished += 1
                    continue
                if flight.built is None:  # the build finished: measure on every target
                    flight.built = value
                    try:
                        for mref in coord._launch_measures(flight.request, "int8", max_retries=0):
                            flights[mref] = flight
                    except Exception as exc:
                        if isinstance(exc, JobCancelled):
                            raise
                        fail(flight, failure_reason(exc))
                        finished += 1
                    continue
                flight.measurements.append(value)
                if len(flight.measurements) == len(spec.targets):
                    in_flight.discard(flight.trial.number)
                    finished += 1
                    try:
                        result = finalize(flight.request, flight.built, flight.measurements)
                    except Exception as exc:
                        self._record_failure(flight.trial, failure_reason(exc))
                        continue
                    self._learn(flight, result)
                    self._record_success(flight.trial, result)
                    seen.setdefault(flight.subnet.encoding(), flight.trial.number)

    def _ask(self) -> optuna.Trial:
        """The next trial: an enqueued retry first, then the next anchor not yet asked (by this run or
        one before a restart), then the sampler's own proposal."""
        if self._anchors and not self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            asked = {t.user_attrs[ANCHOR] for t in self.study.get_trials(deepcopy=False) if ANCHOR in t.user_attrs}
            todo = [a for a in self._anchors if a.encoding() not in asked]
            if todo:
                self.study.enqueue_trial(self.space.params_of(todo[0]), user_attrs={ANCHOR: todo[0].encoding()})
            else:
                self._anchors = []
        return self.study.ask()

    def _request(self, number: int, subnet: SubnetConfig, out: Path) -> TrialRequest:
        req = self.coord._request(self.job_id, self.spec, self.teacher_dir, number, subnet, out)
        return replace(req, supernet_dir=self.supernet_dir) if self.supernet_dir else req

    # ---- predictor ---------------------------------------------------------------------------
    def _predict(self, subnet: SubnetConfig) -> dict[str, dict[str, float]]:
        if self.predictors is None:
            return {}
        return {
            t: {"p90_ms": round(p.p90_ms, 4), "throughput_sps": round(p.throughput_sps, 3), "points": self.predictors.points(t)}
            for t, p in self.predictors.predict(subnet).items()
        }

    def _drop_reason(self, predicted: dict[str, dict[str, float]]) -> str | None:
        cap = self.objectives.max_latency_ms
        if cap is None or self.predictors is None:
            return None
        limit = cap * (1 + self.spec.predictor.drop_margin)
        for target, p in predicted.items():
            if p["points"] >= self.spec.predictor.min_points and p["p90_ms"] > limit:
                return (
                    f"predicted p90 on {target} {p['p90_ms']:.2f} ms exceeds max_latency_ms {cap:g} by more than "
                    f"{self.spec.predictor.drop_margin:.0%} (predictor fitted on {int(p['points'])} measurements)"
                )
        return None

    def _learn(self, flight: _Flight, result: TrialResult) -> None:
        if self.predictors is None:
            return
        for m in result.measurements:
            if m.target not in self.predictors.targets:
                continue
            if m.target in flight.predicted:
                self.predictors.record(m.target, flight.predicted[m.target], m.p90_ms)
                flight.trial.set_user_attr(f"hwnas:{m.target}:predicted_p90_ms", flight.predicted[m.target])
            self.predictors.add(m.target, flight.subnet, m.p90_ms, m.throughput_sps)

    # ---- outcomes ----------------------------------------------------------------------------
    def _record_success(self, trial: optuna.Trial, result: TrialResult, *, reused_from: int | str | None = None) -> None:
        constraints = self.objectives.constraints(result)
        feasible = all(v <= 0 for v in constraints.values())
        with self.sessions.begin() as s:
            repo.complete_trial(s, self.job_id, result, reused_from=reused_from, feasible=feasible)
        trial.set_user_attr("hwnas:exact_match", result.exact_match)
        trial.set_user_attr("hwnas:parameters", result.parameters)
        trial.set_user_attr("hwnas:ir_size_mb", round(result.ir_size_bytes / 2**20, 3))
        for m in result.measurements:
            other = ("throughput_sps", m.throughput_sps) if self.spec.objective == "latency" else ("p90_ms", m.p90_ms)
            trial.set_user_attr(f"hwnas:{m.target}:{other[0]}", other[1])
        if reused_from is not None:
            trial.set_user_attr("hwnas:reused_from", reused_from)
        for name, value in constraints.items():
            trial.set_constraint(name, value)
        self.study.tell(trial, self.objectives.values(result))

    def _record_failure(self, trial: optuna.Trial, reason: str) -> None:
        with self.sessions.begin() as s:
            repo.fail_trial(s, self.job_id, trial.number, reason)
        trial.set_user_attr("hwnas:error", reason[:1000])
        self.study.tell(trial, state=TrialState.FAIL)

    def _skip(self, trial: optuna.Trial, reason: str) -> None:
        with self.sessions.begin() as s:
            repo.skip_trial(s, self.job_id, trial.number, reason)
        trial.set_user_attr(SKIPPED, reason[:1000])
        self.study.tell(trial, state=TrialState.FAIL)

    def _reuse_own(self, trial: optuna.Trial, subnet: SubnetConfig, source: int) -> None:
        """The sampler proposed a subnet this job already measured: tell Optuna the stored figures."""
        with self.sessions() as s:
            row = repo.get_trial(s, self.job_id, source)
            assert row is not None
            result = result_from_row(row, trial_number=trial.number, subnet=subnet)
        self._record_success(trial, result, reused_from=source)

    def _reuse_other(self, trial: optuna.Trial, subnet: SubnetConfig, key: str, out: Path) -> bool:
        """Another job evaluated this subnet with the same inputs, on the same kind of machine: reuse it."""
        with self.sessions() as s:
            row = repo.cached_trial(s, key, exclude_job=self.job_id)
            if row is None:
                return False
            cached = {m.target: m.fingerprint or {} for m in row.measurements if m.precision == "int8"}
            here = {t: m.fingerprint or {} for t, m in self.baseline_fps.items()}
            if not same_machine(cached, here) or not row.artifact_dir:
                return False
            try:
                link_artifacts(row.artifact_dir, str(out), [a.name for a in row.artifacts])
            except OSError as exc:
                log.warning("job %s: cannot reuse %s/%s (%s); evaluating again", self.job_id, row.job_id, row.number, exc)
                return False
            result = result_from_row(row, trial_number=trial.number, subnet=subnet, artifact_dir=str(out))
            source = f"{row.job_id}/{row.number}"
        self._record_success(trial, result, reused_from=source)
        return True

    def _fail_stale(self) -> None:
        """Trials left RUNNING by a coordinator that died: fail them with a reason (their budget is re-spent)."""
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            reason = "coordinator restarted while the trial was running"
            with self.sessions.begin() as s:
                repo.fail_trial(s, self.job_id, t.number, reason)
            self.study._storage.set_trial_user_attr(t._trial_id, "hwnas:error", reason)
            self.study._storage.set_trial_user_attr(t._trial_id, STALE, True)
            self.study.tell(t.number, state=TrialState.FAIL)

    # ---- refine ------------------------------------------------------------------------------
    def refine(self) -> None:
        """Distil the best ``refine.top_k`` front members per target standalone, then measure them again:
        each becomes a new trial (``refined_from``) with its F1 before and after."""
        from workers.pipeline import finalize
        from workers.ray_tasks import refine as refine_task

        top_k, steps = self.spec.refine.top_k, self.spec.refine.steps
        if top_k == 0 or self.supernet_dir is None or self.coord._cancel[self.job_id].is_set():
            return
        chosen = self._refine_candidates(top_k)
        if not chosen:
            return
        self.coord._update(self.job_id, stage="refine")
        for number in chosen:
            if self.coord._cancel[self.job_id].is_set():
                return
            with self.sessions() as s:
                row = repo.get_trial(s, self.job_id, number)
                assert row is not None
                subnet = SubnetConfig.from_dict(row.config)
                before = result_from_row(row, trial_number=number, subnet=subnet)
            source = self.study.trials[number]
            self.study.enqueue_trial(source.params, skip_if_exists=False)  # same architecture; the sampler is not asked
            trial = self.study.ask()
            for name, dist in source.distributions.items():  # the search's own choices, so the study's space stays one
                trial.suggest_categorical(name, list(dist.choices))  # type: ignore[attr-defined]
            trial.set_user_attr("hwnas:config", subnet.to_dict())
            trial.set_user_attr("hwnas:refined_from", number)
            out = self.coord.settings.artifacts_dir.resolve() / self.job_id / f"trial-{trial.number}-refined"
            request = replace(self._request(trial.number, subnet, out), finetune_lr=self.spec.refine.learning_rate)
            with self.sessions.begin() as s:
                repo.start_trial(s, self.job_id, number=trial.number, optuna_trial_id=trial._trial_id, config=subnet.to_dict())
            if trial.params != source.params:  # a queued trial (an unspent retry) was handed out first
                self._record_failure(trial, f"refinement of trial {number} failed: the study handed out queued trial {trial.number}")
                continue
            try:
                opts = {"num_cpus": self.coord._task_cpus(1), "max_retries": self.coord.settings.trial_max_retries}
                built = self.coord._await(self.job_id, refine_task.options(**opts).remote(request, steps, before))
                measured = [self.coord._await(self.job_id, ref) for ref in self.coord._launch_measures(request, "int8")]
                result = finalize(request, built, measured)
            except Exception as exc:
                if isinstance(exc, JobCancelled):
                    raise
                self._record_failure(trial, f"refinement of trial {number} failed: {failure_reason(exc)}")
                continue
            self._record_success(trial, result)

    def _refine_candidates(self, top_k: int) -> list[int]:
        """Per target, ``nas.refine.refine_choice`` over the front of the job's own objective."""
        from nas.refine import refine_choice

        latency = self.spec.objective == "latency"
        metric, speed_dir = ("p90_ms", "minimize") if latency else ("throughput_sps", "maximize")
        chosen: list[int] = []
        with self.sessions() as s:
            completed = repo.trials_of(s, self.job_id, state="completed")
            feasible = {t.number for t in completed if t.feasible}
            subnets = {t.number: SubnetConfig.from_dict(t.config) for t in completed}
            refined = {subnets[t.number] for t in completed if t.f1_before_refine is not None}
            done = {n for n, sub in subnets.items() if sub in refined}  # a resumed job refines once
            for target in self.spec.targets:
                points = repo.pareto_points(s, self.job_id, target, metric)
                on_front = set(pareto_keys([(n, (f1, v)) for n, f1, v in points], ["maximize", speed_dir]))
                front = [(n, f1, -v if latency else v) for n, f1, v in points if n in on_front and n not in done]
                rs = self.spec.refine
                for n in refine_choice(front, feasible, top_k, rs.policy, floor=self.objectives.min_f1, max_gap=rs.max_gap):
                    if n not in chosen:
                        chosen.append(n)
        return chosen
