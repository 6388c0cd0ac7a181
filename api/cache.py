"""Answers derived from a job's rows, kept until the job changes.

Why: the dashboard, ``hwnas watch`` and scripts poll the same few endpoints every second while a
search runs; recomputing a Pareto front over thousands of trials, or counting them, on every poll
spends the CPU that the search's measurements need. Every change to a job, its trials, their
measurements and its baselines is written together with an event row in the same transaction
(``nas.store.repo``), so the job's newest event id is its revision: an answer stored under
(job, revision, query) is valid exactly until the next event, and checking costs one indexed
``max()``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


def _weight(value: object) -> int:
    return len(value) if isinstance(value, (bytes, str)) else 1024  # rendered JSON by size; summaries are small


class RevisionCache:
    """An LRU of computed answers keyed by (job id, job revision, query), bounded in entries and bytes
    (a trials page of 10,000 rows renders to megabytes: the bound keeps the service's memory flat).
    Only the newest revision of each (job, query) is kept: a running search makes a new revision with
    every trial, and the old answers would otherwise fill the bound with what nobody asks for again."""

    def __init__(self, maxsize: int = 1024, max_bytes: int = 64 * 2**20) -> None:
        self.maxsize, self.max_bytes = maxsize, max_bytes
        self.bytes = 0
        self._data: OrderedDict[Hashable, object] = OrderedDict()
        self._newest: dict[tuple[str, Hashable], int] = {}  # (job, query) -> the one revision kept for it
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def peek(self, job_id: str, revision: int | None, query: Hashable) -> object | None:
        """The stored answer, or None; lets a route answer a repeated poll before loading anything else."""
        if revision is None:
            return None
        with self._lock:
            value = self._data.get((job_id, revision, query))
            if value is not None:
                self._data.move_to_end((job_id, revision, query))
                self.hits += 1
            return value

    def get(self, job_id: str, revision: int | None, query: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``'s answer for this revision, computed at most once per revision (best effort:
        two requests racing on a miss both compute; either answer is right for the revision)."""
        if revision is None:  # a job without events (not created through the store): never cached
            return compute()
        key = (job_id, revision, query)
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]  # type: ignore[return-value]
            self.misses += 1
        value = compute()
        if _weight(value) > self.max_bytes // 4:  # too big to be worth keeping
            return value
        with self._lock:
            kept = self._newest.get((job_id, query))
            if kept is not None and kept > revision:  # a newer answer was stored meanwhile: it stays
                return value
            if kept is not None and kept < revision:  # an older revision is never asked again: drop it
                self._drop((job_id, kept, query))
            if key not in self._data:
                self._data[key] = value
                self.bytes += _weight(value)
                self._newest[(job_id, query)] = revision
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize or self.bytes > self.max_bytes:
                self._drop(next(iter(self._data)))
        return value

    def _drop(self, key: Hashable) -> None:
        job_id, revision, query = key  # type: ignore[misc]
        self.bytes -= _weight(self._data.pop(key))
        if self._newest.get((job_id, query)) == revision:
            del self._newest[(job_id, query)]
