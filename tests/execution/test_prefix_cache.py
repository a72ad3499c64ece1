"""The prefix cache model: chained blocks, whole-block hits, LRU eviction."""

from __future__ import annotations

from governd.execution.prefix_cache import PrefixCache


def test_hits_are_whole_blocks_of_a_shared_prefix() -> None:
    cache = PrefixCache(capacity_tokens=1000, block_tokens=4)
    assert cache.lookup_and_insert(list(range(10))) == 0
    assert cache.lookup_and_insert([*range(10), 99]) == 8
    assert cache.lookup_and_insert([0, 1, 2, 3, 9, 9, 9, 9]) == 4


def test_a_block_after_a_miss_is_not_a_hit() -> None:
    cache = PrefixCache(1000, 4)
    cache.lookup_and_insert([1, 2, 3, 4, 5, 6, 7, 8])
    assert cache.lookup_and_insert([0, 0, 0, 0, 5, 6, 7, 8]) == 0


def test_at_least_one_token_is_computed() -> None:
    cache = PrefixCache(1000, 4)
    cache.lookup_and_insert(list(range(8)))
    assert cache.lookup_and_insert(list(range(8))) == 4


def test_least_recently_used_blocks_are_evicted() -> None:
    cache = PrefixCache(capacity_tokens=8, block_tokens=4)
    cache.lookup_and_insert([1] * 9)
    cache.lookup_and_insert([2] * 9)
    assert cache.used_tokens == 8
    assert cache.lookup_and_insert([1] * 9) == 0
