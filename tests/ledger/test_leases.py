"""Leases: one holder at a time, renewed by it, taken by another once expired; writes fenced."""

from __future__ import annotations

import pytest

from governd.errors import LeaseLost
from governd.ledger import Storage
from governd.ledger.job_store import JobRequest, JobStore
from governd.ledger.leases import Fence, Leases
from governd.testing.jobs import fixed_sealer, job_record


def test_one_holder_until_it_expires_then_another(storage_url: str) -> None:
    leases = Leases(Storage(storage_url).engine)
    assert leases.take("s", "a", 5.0, now=100.0)
    assert not leases.take("s", "b", 5.0, now=101.0), "a holds it"
    assert leases.take("s", "a", 5.0, now=104.0), "its holder renews it"
    assert not leases.take("s", "b", 5.0, now=108.9), "renewed until 109"
    assert leases.take("s", "b", 5.0, now=109.0), "expired: another takes it"
    assert leases.holder("s", now=110.0) == "b"
    assert not leases.take("s", "a", 5.0, now=110.0)
    leases.give_up("s", "b")
    assert leases.holder("s", now=110.0) is None
    assert leases.take("s", "a", 5.0, now=110.0), "given up: taken at once"


def test_a_write_under_a_lost_lease_is_refused(storage_url: str) -> None:
    storage = Storage(storage_url)
    leases, store = Leases(storage.engine), JobStore(storage, fixed_sealer())
    assert leases.take("s", "a", 5.0, now=100.0)
    store.put(job_record("j1", "acme/a", "running"), fence=Fence("s", "a", 101.0))
    assert leases.take("s", "b", 5.0, now=106.0)
    with pytest.raises(LeaseLost):
        store.put(job_record("j1", "acme/a", "failed"), fence=Fence("s", "a", 106.5))
    found = store.get("j1")
    assert found is not None and found.status == "running", "the fenced write changed nothing"


def test_requests_are_kept_once_until_answered(storage_url: str) -> None:
    store = JobStore(Storage(storage_url), fixed_sealer())
    asked = JobRequest("j1", "cancel", "acme/a", 1.0)
    store.ask(asked)
    store.ask(JobRequest("j1", "cancel", "admin", 2.0))  # asked again: the first one stands
    assert store.requests() == [asked]
    store.answered(asked)
    assert store.requests() == []
