"""One job's search stage: Optuna asks, Ray builds and measures, the store and Optuna are told.

Per proposal, cheapest first: a subnet this job already measured is answered from the store; one
measured by another job with the same cache key on the same kind of machine is reused (its
artifacts linked in); one the speed predictor rules out by a clear margin is skipped (recorded,
never on a front); anything else is built (a Ray ``build`` task) and measured (one ``measure``
task per target, joined into one result: ``nas.dispatch.TrialRunner``). Up to the job's concurrency
of trials run at once, each in a thread of its own that only waits on Ray; this loop alone talks
to Optuna. Every result is told to Optuna with its objective values and named constraints.
The refine stage (``nas.stages.refine``) then distils the fronts' best members standalone.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from core.types import Measurement, SubnetConfig, TrialRequest, TrialResult
from nas.context import JobContext
from nas.dedupe import same_machine, trial_cache_key
from nas.errors import JobCancelled
from nas.objectives import JobObjectives
from nas.predictors.base import fingerprint_key
from nas.predictors.tracker import SpeedPredictors
from nas.ray_cluster import task_cpus
from nas.samplers import grid_of, make_sampler
from nas.sparsity import SparsityDecision, decide_sparsity
from nas.store import repo
from search_spaces import full_subnet, space_for
from search_spaces.base_models import read_config

log = logging.getLogger(__name__)
STALE = "hwnas:stale"  # trial failed by a restart: its budget is spent again
SKIPPED = "hwnas:skipped"  # ruled out by the predictor: no budget spent
RETRIED = "hwnas:retried_as_new_trial"  # lost with its worker or node: failed, and run again (no budget spent)
ANCHOR = "hwnas:anchor"  # one of the fixed first trials (JobSpace.anchors)
SPARSITY = "sparsity"  # the study parameter of the sparsity dimension (nas.sparsity)


MAX_SKIPS_IN_A_ROW = 20  # then the predictor stops dropping, so a search always progresses


@dataclass
class _Flight:
    """One trial between dispatch and outcome."""

    trial: optuna.Trial
    subnet: SubnetConfig
    request: TrialRequest
    predicted: dict[str, float] = field(default_factory=dict)  # target -> predicted p90 before measuring


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
        metrics=row.metrics or {},
    )


class JobSearch:
    """The search stage of one job, and the bookkeeping (store and Optuna) that the refine stage shares."""

    def __init__(self, ctx: JobContext, teacher_dir: str, supernet_dir: str | None) -> None:
        self.ctx, self.job_id, self.spec = ctx, ctx.job_id, ctx.spec
        self.teacher_dir, self.supernet_dir = teacher_dir, supernet_dir
        self.sessions = ctx.sessions
        spec, job_id = ctx.spec, ctx.job_id
        base_config = read_config(Path(teacher_dir))
        self.base_config = base_config
        self.space = space_for(spec.search_space, base_config)
        self.base_hidden = int(base_config.hidden_size)
        self.precision = ctx.precision  # the deployment choice of the baselines stage (nas.deployment)
        with self.sessions() as s:
            baselines = {b.precision: b for b in repo.baselines_of(s, job_id)}
            same = baselines.get(self.precision)  # the teacher in the precision the subnets are built in
            self.baseline_fps = {
                m.target: m for m in (same.measurements if same is not None else []) if m.precision == self.precision
            }
            fp32 = baselines.get("fp32")
            self.objectives = JobObjectives.of(spec, fp32.f1 if fp32 is not None else None)
            self.study_name = repo.get_job(s, job_id).study_name  # type: ignore[union-attr]
        self.sparsity = self._sparsity()
        self.study = self._study()
        self._anchors = [] if spec.sampler == "grid" else self.space.anchors(spec.anchor_trials)
        self.predictors = self._predictors()
        self.profiles = self._profiles()

    # ---- set-up ------------------------------------------------------------------------------
    def _study(self) -> optuna.Study:
        grid = grid_of(self.sample) if self.spec.sampler == "grid" else None
        study = optuna.create_study(
            storage=self.ctx.storage,
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

    def _sparsity(self) -> SparsityDecision:
        """What the job's targets can use of its sparsity choices (``nas.sparsity``), decided once and stored
        with the job's deployment (a resumed job keeps its first decision)."""
        with self.sessions() as s:
            job = repo.get_job(s, self.job_id)
            stored = (job.deployment or {}).get("sparsity") if job is not None else None
            deployment = dict(job.deployment or {}) if job is not None else {}
        if stored is not None:
            return SparsityDecision(tuple(stored["choices"]), tuple(stored["requested"]), tuple(stored["pays_on"]), stored["reason"])
        decision = decide_sparsity(self.spec)
        if self.spec.sparsity.enabled:
            self.ctx.update(deployment={**deployment, "sparsity": decision.to_dict()})
            log.info("job %s: %s", self.job_id, decision.reason)
        return decision

    @property
    def searches_sparsity(self) -> bool:
        return self.spec.sparsity.stage == "search" and len(self.sparsity.choices) > 1

    def sample(self, trial: optuna.Trial) -> SubnetConfig:
        """The space's subnet, with the sparsity the sampler chooses where sparsity is a search dimension."""
        subnet = self.space.sample(trial)
        if self.searches_sparsity:
            subnet = replace(subnet, sparsity=float(trial.suggest_categorical(SPARSITY, list(self.sparsity.choices))))
        elif self.spec.sparsity.stage == "search" and self.sparsity.choices != (0.0,):
            subnet = replace(subnet, sparsity=self.sparsity.choices[0])  # one sparsity asked for: every trial gets it
        return subnet

    def _profiles(self) -> dict[str, dict[str, Any]]:
        from targets import get_target

        return {t: get_target(t).to_profile() for t in self.spec.targets}

    def _speed_key(self, m: Any) -> str:
        return fingerprint_key(m.target, m.precision, m.seq_len, m.latency_batch, m.throughput_batch, m.fingerprint or {})

    def _predictors(self) -> SpeedPredictors | None:
        """Warm-started from every stored measurement taken like this job's INT8 baseline, per target."""
        if self.spec.predictor.kind == "none" or set(self.baseline_fps) != set(self.spec.targets):
            return None
        keys = {t: self._speed_key(m) for t, m in self.baseline_fps.items()}
        predictors = SpeedPredictors(self.spec.predictor.kind, base_hidden=self.base_hidden, keys=keys)
        full = full_subnet(self.base_config)
        with self.sessions() as s:
            for target, key in keys.items():
                base = self.baseline_fps[target]
                samples = [(full, base.p90_ms, base.throughput_sps)]
                samples += [
                    (SubnetConfig.from_dict(config), m.p90_ms, m.throughput_sps)
                    for config, m in repo.speed_samples(s, target, self.precision)
                    if self._speed_key(m) == key
                ]
                used = predictors.warm_start(target, key, samples)
                log.info("job %s: %s predictor warm-started from %d measurements", self.job_id, target, used)
        return predictors

    # ---- the loop ----------------------------------------------------------------------------
    def run(self) -> None:
        spec, study = self.spec, self.study
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
        concurrent = min(spec.budget.max_concurrent, self.ctx.settings.max_concurrent_trials)
        abort = threading.Event()  # this loop failed (an outage, a crash): no trial is left running unowned
        with ThreadPoolExecutor(max_workers=concurrent, thread_name_prefix=f"trial-{self.job_id[:8]}") as pool:
            try:
                self._loop(pool, abort, finished, deadline, concurrent, task_cpus(concurrent), seen)
            except BaseException:
                abort.set()
                raise

    def _loop(
        self, pool: ThreadPoolExecutor, abort: threading.Event, finished: int, deadline: float | None,
        concurrent: int, cpus: float, seen: dict[str, int],
    ) -> None:  # fmt: skip
        """Ask, dispatch (up to ``concurrent`` trials in flight), collect outcomes, until the budget is spent."""
        ctx, spec, study = self.ctx, self.spec, self.study
        flights: dict[Future[Any], _Flight] = {}
        skips_in_a_row = 0
        retries: dict[str, int] = {}  # subnet encoding -> times re-run after a lost worker

        while True:
            if ctx.cancel.is_set():
                wait(list(flights))  # each runner sees the flag within a second and cancels its tasks
                if not ctx.stopping.is_set():  # on shutdown they stay RUNNING: a restart re-runs them
                    for flight in flights.values():
                        self.record_failure(flight.trial, "cancelled")
                return
            out_of_time = deadline is not None and time.monotonic() > deadline
            while not out_of_time and len(flights) < concurrent and finished + len(flights) < spec.budget.trials:
                if ctx.cancel.is_set():
                    break
                trial = self._ask()
                subnet = self.sample(trial)
                trial.set_user_attr("hwnas:config", subnet.to_dict())
                out = ctx.trial_dir(f"trial-{trial.number}")
                request = self.request(trial.number, subnet, out)
                key = trial_cache_key(request, self.profiles, precision=self.precision)
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
                future = pool.submit(
                    ctx.runner.run, request, precision=self.precision, cpus=cpus, max_retries=0,  # lost workers: see retries
                    timeout_s=spec.budget.trial_timeout_s, abort=abort,
                )  # fmt: skip
                flights[future] = flight
            if not flights:
                return
            done, _ = wait(list(flights), timeout=1.0, return_when=FIRST_COMPLETED)
            for future in done:
                flight = flights.pop(future)
                try:
                    outcome = future.result()
                except JobCancelled:
                    if not ctx.stopping.is_set():
                        self.record_failure(flight.trial, "cancelled")
                    continue
                encoding = flight.subnet.encoding()
                if outcome.result is not None:
                    finished += 1
                    self._learn(flight, outcome.result)
                    self.record_success(flight.trial, outcome.result)
                    seen.setdefault(encoding, flight.trial.number)
                    continue
                tries, most = retries.get(encoding, 0), ctx.settings.trial_max_retries
                if outcome.lost and tries < most:
                    # failed with its reason, then the same subnet is asked again (bounded); no budget spent
                    retries[encoding] = tries + 1
                    flight.trial.set_user_attr(RETRIED, True)
                    self.record_failure(flight.trial, f"{outcome.error} [worker lost: retry {tries + 1} of {most} as a new trial]")
                    study.enqueue_trial(flight.trial.params, user_attrs={"hwnas:retry_of": flight.trial.number})
                    continue
                self.record_failure(flight.trial, str(outcome.error))
                finished += 1

    def _ask(self) -> optuna.Trial:
        """The next trial: an enqueued retry first, then the next anchor not yet asked (by this run or
        one before a restart), then the sampler's own proposal."""
        if self._anchors and not self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            asked = {t.user_attrs[ANCHOR] for t in self.study.get_trials(deepcopy=False) if ANCHOR in t.user_attrs}
            todo = [a for a in self._anchors if a.encoding() not in asked]
            if todo:
                params = {**self.space.params_of(todo[0]), **({SPARSITY: 0.0} if self.searches_sparsity else {})}  # dense anchors
                self.study.enqueue_trial(params, user_attrs={ANCHOR: todo[0].encoding()})
            else:
                self._anchors = []
        return self.study.ask()

    def request(self, number: int, subnet: SubnetConfig, out: Path) -> TrialRequest:
        return self.ctx.request(number, subnet, out, teacher_dir=self.teacher_dir, supernet_dir=self.supernet_dir)

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
    def record_success(self, trial: optuna.Trial, result: TrialResult, *, reused_from: int | str | None = None) -> None:
        constraints = self.objectives.constraints(result)
        feasible = all(v <= 0 for v in constraints.values())
        with self.sessions.begin() as s:
            repo.complete_trial(s, self.job_id, result, reused_from=reused_from, feasible=feasible)
        self._tell_success(trial, result, constraints, reused_from)

    def _tell_success(
        self, trial: optuna.Trial, result: TrialResult, constraints: dict[str, float], reused_from: int | str | None
    ) -> None:
        """The Optuna half of a success (the store's half is already committed)."""
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

    def record_failure(self, trial: optuna.Trial, reason: str) -> None:
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
        self.record_success(trial, result, reused_from=source)

    def _reuse_other(self, trial: optuna.Trial, subnet: SubnetConfig, key: str, out: Path) -> bool:
        """Another job evaluated this subnet with the same inputs, on the same kind of machine: reuse it."""
        with self.sessions() as s:
            row = repo.cached_trial(s, key, exclude_job=self.job_id)
            if row is None:
                return False
            cached = {m.target: m.fingerprint or {} for m in row.measurements if m.precision == self.precision}
            here = {t: m.fingerprint or {} for t, m in self.baseline_fps.items()}
            if not same_machine(cached, here) or not row.artifact_dir:
                return False
            try:
                self.ctx.artifacts.link(row.artifact_dir, out, [a.name for a in row.artifacts])
            except OSError as exc:
                log.warning("job %s: cannot reuse %s/%s (%s); evaluating again", self.job_id, row.job_id, row.number, exc)
                return False
            result = result_from_row(row, trial_number=trial.number, subnet=subnet, artifact_dir=str(out))
            source = f"{row.job_id}/{row.number}"
        self.record_success(trial, result, reused_from=source)
        return True

    def _fail_stale(self) -> None:
        """Trials left RUNNING by a coordinator that died: fail them with a reason (their budget is re-spent).

        A trial the store already completed (the coordinator died between the store's commit and
        Optuna's tell) keeps its result: Optuna is told the stored figures instead."""
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            with self.sessions() as s:
                row = repo.get_trial(s, self.job_id, t.number)
                done = row is not None and row.state == "completed"
                if done:
                    subnet = SubnetConfig.from_dict(row.config)
                    result = result_from_row(row, trial_number=t.number, subnet=subnet)
                    reused = (row.stage_seconds or {}).get("reused_from_trial")
            if done:
                log.info("job %s: trial %d was stored as completed before the restart; keeping it", self.job_id, t.number)
                self._tell_success(optuna.Trial(self.study, t._trial_id), result, self.objectives.constraints(result), reused)
                continue
            reason = "coordinator restarted while the trial was running"
            with self.sessions.begin() as s:
                repo.fail_trial(s, self.job_id, t.number, reason)
            self.study._storage.set_trial_user_attr(t._trial_id, "hwnas:error", reason)
            self.study._storage.set_trial_user_attr(t._trial_id, STALE, True)
            self.study.tell(t.number, state=TrialState.FAIL)
