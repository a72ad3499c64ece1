"""A KV prefix cache model: blocks of tokens hashed as a chain, evicted least recently used.

It mirrors vLLM's automatic prefix caching: a prompt's full blocks are hashed
with their parent's hash, so a block is a hit only when everything before it
matched too, and hits are whole blocks.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence


class PrefixCache:
    """Holds up to ``capacity_tokens`` tokens' worth of blocks of ``block_tokens`` tokens."""

    def __init__(self, capacity_tokens: int, block_tokens: int) -> None:
        self._block = block_tokens
        self._capacity = capacity_tokens // block_tokens
        self._blocks: OrderedDict[int, None] = OrderedDict()

    def _hashes(self, tokens: Sequence[int]) -> list[int]:
        out: list[int] = []
        parent = 0
        for start in range(0, len(tokens) - self._block + 1, self._block):
            parent = hash((parent, tuple(tokens[start : start + self._block])))
            out.append(parent)
        return out

    def lookup_and_insert(self, tokens: Sequence[int]) -> int:
        """Tokens of ``tokens`` already cached (at least one is always computed); then cache it."""
        hashes = self._hashes(tokens)
        hit = 0
        for h in hashes:
            if h not in self._blocks:
                break
            hit += 1
        for h in hashes:
            self._blocks[h] = None
            self._blocks.move_to_end(h)
        while len(self._blocks) > self._capacity:
            self._blocks.popitem(last=False)
        cached = hit * self._block
        if tokens and cached >= len(tokens):
            cached = ((len(tokens) - 1) // self._block) * self._block
        return cached

    @property
    def used_tokens(self) -> int:
        """Tokens currently held."""
        return len(self._blocks) * self._block
