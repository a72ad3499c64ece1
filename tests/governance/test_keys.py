"""Keys: shown once, stored hashed, resolved to their principal, revocable, expiring."""

from __future__ import annotations

from pathlib import Path

import pytest

from governd.clock import ManualClock
from governd.config import parse_config
from governd.errors import AuthenticationFailed, NotFound
from governd.governance import KeyRing, PrincipalTree
from governd.ledger import Storage

CFG = parse_config("principals: {org: acme, teams: {t: {projects: {p: {}}}}}\n")


@pytest.fixture
def ring(tmp_path: Path) -> tuple[KeyRing, Storage, ManualClock]:
    storage = Storage(f"sqlite:///{tmp_path / 'k.db'}")
    clock = ManualClock()
    return KeyRing(storage, PrincipalTree(CFG), clock, cache_s=5), storage, clock


async def test_key_resolves_to_its_principal(ring: tuple[KeyRing, Storage, ManualClock]) -> None:
    keys, _, _ = ring
    record, secret = keys.create("t/p", name="ci")
    who = await keys.authenticate(secret)
    assert (who.path, who.key_id) == ("acme/t/p", record.id)


def test_key_is_stored_only_as_a_hash(ring: tuple[KeyRing, Storage, ManualClock]) -> None:
    keys, storage, _ = ring
    _, secret = keys.create("t/p")
    stored = storage.keys()
    assert len(stored) == 1 and secret not in str(stored)
    db = Path(storage.url.removeprefix("sqlite:///"))
    files = list(db.parent.glob(db.name + "*"))
    assert db in files
    assert all(secret.encode() not in f.read_bytes() for f in files)


async def test_unknown_and_malformed_keys_fail(ring: tuple[KeyRing, Storage, ManualClock]) -> None:
    keys, _, _ = ring
    for bad in ("gvd-nope", "sk-something", ""):
        with pytest.raises(AuthenticationFailed):
            await keys.authenticate(bad)


async def test_revocation_takes_effect_at_once(ring: tuple[KeyRing, Storage, ManualClock]) -> None:
    keys, _, _ = ring
    record, secret = keys.create("t")
    await keys.authenticate(secret)
    keys.revoke(record.id)
    with pytest.raises(AuthenticationFailed, match="revoked"):
        await keys.authenticate(secret)
    with pytest.raises(NotFound):
        keys.revoke("key_missing")


async def test_revocation_by_another_replica_is_seen_after_the_cache_time(tmp_path: Path) -> None:
    storage = Storage(f"sqlite:///{tmp_path / 'k.db'}")
    clock = ManualClock()
    tree = PrincipalTree(CFG)
    here, there = KeyRing(storage, tree, clock, cache_s=5), KeyRing(storage, tree, clock, cache_s=5)
    record, secret = here.create("t")
    await here.authenticate(secret)
    there.revoke(record.id)
    await here.authenticate(secret)  # still cached
    clock.advance(6)
    with pytest.raises(AuthenticationFailed):
        await here.authenticate(secret)


async def test_expiry(ring: tuple[KeyRing, Storage, ManualClock]) -> None:
    keys, _, clock = ring
    _, secret = keys.create("t", expires_in_s=60)
    await keys.authenticate(secret)
    clock.advance(61)
    with pytest.raises(AuthenticationFailed, match="expired"):
        await keys.authenticate(secret)


def test_list_is_scoped_to_a_subtree(ring: tuple[KeyRing, Storage, ManualClock]) -> None:
    keys, _, _ = ring
    keys.create("t")
    keys.create("t/p")
    keys.create("acme")
    assert len(keys.list("acme/t/p")) == 1
    assert len(keys.list("acme/t")) == 2
    assert len(keys.list()) == 3
