"""RFC 9162 Merkle trees: every path verifies, and what the RFC's verifier refuses is refused."""

from __future__ import annotations

import hashlib

import pytest

from governd.ledger.chain import inclusion_path, leaf_hash, merkle_root, root_from_path

LEAVES = [leaf_hash(bytes([i])) for i in range(9)]


@pytest.mark.parametrize("size", range(1, 10))
def test_every_leafs_path_leads_to_the_root(size: int) -> None:
    root = merkle_root(LEAVES[:size])
    for index in range(size):
        path = inclusion_path(index, LEAVES[:size])
        assert root_from_path(index, size, LEAVES[index], path) == root


def test_the_empty_tree_and_a_single_leaf_are_as_the_rfc_defines() -> None:
    assert merkle_root([]) == hashlib.sha256(b"").digest()  # MTH({}) = SHA-256()
    assert merkle_root(LEAVES[:1]) == LEAVES[0]  # MTH({d0}) = SHA-256(0x00 || d0)


GOOD = inclusion_path(5, LEAVES[:7])


@pytest.mark.parametrize(
    ("index", "size", "leaf", "path", "message"),
    [
        # 2.1.3.2: "If leaf_index is greater than or equal to tree_size, ... fail"
        (7, 7, LEAVES[5], GOOD, "outside a tree of 7"),
        (8, 7, LEAVES[5], GOOD, "outside a tree of 7"),
        (-1, 7, LEAVES[5], GOOD, "outside a tree of 7"),
        (0, 0, LEAVES[0], [], "outside a tree of 0"),
        (True, 7, LEAVES[5], GOOD, "must be an integer"),
        (5.0, 7, LEAVES[5], GOOD, "must be an integer"),
        # every hash is HASH_SIZE (32) bytes for SHA-256
        (5, 7, LEAVES[5][:31], GOOD, "32 bytes"),
        (5, 7, LEAVES[5], [*GOOD[:-1], GOOD[-1] + b"\0"], "32 bytes"),
        # a path longer or shorter than the tree is deep
        (5, 7, LEAVES[5], [*GOOD, LEAVES[0]], "longer than the tree is deep"),
        (5, 7, LEAVES[5], GOOD[:-1], "shorter than the tree is deep"),
    ],
    ids=[
        "index=size",
        "index>size",
        "negative",
        "empty tree",
        "bool",
        "float",
        "short leaf",
        "long node",
        "long path",
        "short path",
    ],
)
def test_the_verifier_refuses_what_rfc_9162_refuses(
    index: int, size: int, leaf: bytes, path: list[bytes], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        root_from_path(index, size, leaf, path)
