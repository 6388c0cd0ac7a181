"""Progress inside a long piece of work (a teacher fine-tune, a supernet, a trial): phase, step / total,
loss, elapsed and ETA, sent to whoever listens, at most once per ``min_interval_s``.

Workers do not know where progress goes: a task sets the reporter for its duration with
``reporting(reporter)`` and the code underneath reads ``current()`` (a no-op reporter when nobody
listens), so the training loops, the evaluation and the measurement need no extra arguments.
On a Ray worker the sink is a fire-and-forget call to the coordinator's progress board
(``nas.progress``); in a test it is a list's ``append``.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Callable, Iterator

Sink = Callable[[dict[str, Any]], None]


class ProgressReporter:
    """Progress of one item (``stage``: the job stage it belongs to; ``item``: e.g. ``teacher``, ``trial 3``)."""

    def __init__(self, sink: Sink | None, *, stage: str, item: str, min_interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.sink, self.stage, self.item = sink, stage, item
        self.min_interval_s, self.clock = min_interval_s, clock
        self.started = clock()
        self.phase_name: str | None = None
        self._phase_started = self.started
        self._phase_step0 = 0  # the step the pace counts from (at ``_phase_started``)
        self._stepped = False  # a step seen in this phase yet
        self._last_sent: float | None = None
        self._state: dict[str, Any] = {"step": None, "total": None, "unit": None, "loss": None}

    def phase(self, name: str, *, total: int | None = None, unit: str = "steps") -> None:
        """A new phase (``fine-tuning``, ``evaluating``, ``measuring native``...); sent at once."""
        self.phase_name = name
        self._phase_started, self._phase_step0, self._stepped = self.clock(), 0, False
        self._state = {"step": 0 if total else None, "total": total, "unit": unit if total else None, "loss": None}
        self._send(force=True)

    def step(self, step: int, total: int, loss: float | None = None, *, unit: str | None = None) -> None:
        """``step`` of ``total`` done in the current phase (throttled; the last step is always sent)."""
        if not self._stepped and self._state["total"] is None:
            # the pace counts from the first step seen: a loop resumed at its checkpoint's step, or one
            # that reports every 16 windows, is timed by the steps it runs here
            self._phase_started, self._phase_step0 = self.clock(), step
        self._stepped = True
        self._state = {"step": step, "total": total, "unit": unit or self._state["unit"] or "steps", "loss": loss}
        self._send(force=step >= total)

    def on_step(self, step: int, total: int, loss: float) -> None:
        """The training loops' ``on_step(step, total, loss)`` callback."""
        self.step(step, total, loss)

    def snapshot(self) -> dict[str, Any]:
        """What is sent: JSON-ready, the wire shape of ``stage_progress`` / a trial's ``progress``."""
        now = self.clock()
        step, total = self._state["step"], self._state["total"]
        eta = None
        done = (step or 0) - self._phase_step0
        if step is not None and total and done > 0:
            eta = round((now - self._phase_started) / done * max(0, total - step), 1)
        loss = self._state["loss"]
        return {
            "stage": self.stage,
            "item": self.item,
            "phase": self.phase_name,
            "step": step,
            "total": total,
            "unit": self._state["unit"],
            "loss": None if loss is None else round(float(loss), 4),
            "elapsed_s": round(now - self.started, 1),
            "eta_s": eta,
        }

    def _send(self, *, force: bool = False) -> None:
        if self.sink is None:
            return
        now = self.clock()
        if not force and self._last_sent is not None and now - self._last_sent < self.min_interval_s:
            return
        self._last_sent = now
        try:
            self.sink(self.snapshot())
        except Exception:  # progress is advisory: a listener gone away never fails the work itself
            self.sink = None


@dataclass(frozen=True)
class ProgressLink:
    """A task's end of a progress board: the board's handle (anything with ``report.remote(key, snapshot)``,
    a Ray actor in the service) and the item it reports as."""

    board: Any
    key: str  # "job" (the stage's item) or "trial:<n>"
    stage: str
    item: str

    def reporter(self, *, min_interval_s: float = 1.0) -> ProgressReporter:
        return ProgressReporter(lambda snap: self.board.report.remote(self.key, snap), stage=self.stage, item=self.item,
                                min_interval_s=min_interval_s)  # fmt: skip


_NOBODY = ProgressReporter(None, stage="", item="")
_current: ContextVar[ProgressReporter] = ContextVar("hwnas_progress", default=_NOBODY)


def current() -> ProgressReporter:
    """The reporter of the work running now (one that sends nothing when nobody listens)."""
    return _current.get()


@contextmanager
def reporting(reporter: ProgressReporter | None) -> Iterator[ProgressReporter]:
    """Make ``reporter`` the ``current()`` one for the block (None: keep whatever is current)."""
    if reporter is None:
        yield current()
        return
    token = _current.set(reporter)
    try:
        yield reporter
    finally:
        _current.reset(token)
