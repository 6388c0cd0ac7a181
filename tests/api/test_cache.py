"""The revision cache: one computation per (job, revision, query), bounded in entries and bytes."""

from __future__ import annotations

from api.cache import RevisionCache


def test_computes_once_per_revision_and_again_after_a_write() -> None:
    cache, calls = RevisionCache(), []

    def compute() -> bytes:
        calls.append(1)
        return b"x" * 10

    assert cache.get("j", 1, "q", compute) == cache.get("j", 1, "q", compute) == b"x" * 10
    assert len(calls) == 1 and cache.hits == 1
    cache.get("j", 2, "q", compute)  # the job changed: a new revision is computed
    cache.get("j", 2, "other", compute)  # another query of the same revision
    cache.get("j", None, "q", compute)  # no revision known: never cached
    cache.get("j", None, "q", compute)
    assert len(calls) == 5


def test_bounded_by_entries_and_bytes() -> None:
    cache = RevisionCache(maxsize=3, max_bytes=1000)
    for rev in range(10):
        cache.get("j", rev, "q", lambda: b"y" * 100)
    assert len(cache._data) == 3 and cache.bytes == 300
    for rev in range(10):
        cache.get("k", rev, "q", lambda: b"z" * 240)  # 4 would exceed 1000 bytes
    assert cache.bytes <= 1000 and len(cache._data) <= 3
    big = cache.get("k", 99, "q", lambda: b"w" * 600)  # over a quarter of the budget: served, not kept
    assert big == b"w" * 600 and ("k", 99, "q") not in cache._data
