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


def test_keeps_only_the_newest_revision_of_each_query() -> None:
    cache = RevisionCache()
    for rev in range(100):  # a search writing trial after trial while a client polls
        for query in ("pareto", "trials"):
            cache.get("j", rev, query, lambda: b"p" * 50)
    assert len(cache) == 2 and cache.bytes == 100
    assert cache.peek("j", 99, "pareto") == b"p" * 50 and cache.peek("j", 98, "pareto") is None
    assert cache.get("j", 50, "pareto", lambda: b"late") == b"late"  # a poll that read an older revision
    assert cache.peek("j", 99, "pareto") == b"p" * 50 and len(cache) == 2  # is answered, but not kept


def test_bounded_by_entries_and_bytes() -> None:
    cache = RevisionCache(maxsize=3, max_bytes=1000)
    for q in range(10):
        cache.get("j", 1, q, lambda: b"y" * 100)
    assert len(cache._data) == 3 and cache.bytes == 300
    for q in range(10):
        cache.get("k", 1, q, lambda: b"z" * 240)  # 4 would exceed 1000 bytes
    assert cache.bytes <= 1000 and len(cache._data) <= 3
    big = cache.get("k", 99, "q", lambda: b"w" * 600)  # over a quarter of the budget: served, not kept
    assert big == b"w" * 600 and ("k", 99, "q") not in cache._data
