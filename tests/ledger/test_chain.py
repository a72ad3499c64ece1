"""The canonical form is a contract with every entry already hashed: pinned bytes, typed coercion."""

from __future__ import annotations

from dataclasses import replace

import pytest

from governd.ledger.chain import canonical, canonical_entry
from governd.ledger.entries import FIELDS
from tests.ledger.test_storage import BASE

V1 = (
    b'["governd.entry.v1","req_0",1000.0,"model_call","chat","acme/t/p","key_1",null,"m","m",'
    b'"u/m","allow","",200,null,false,1,12.5,3.0,10,4,5,"upstream",0.001]'
)


def test_the_bytes_of_both_versions_never_change() -> None:
    assert canonical_entry(BASE) == V1
    signalled = canonical_entry(replace(BASE, signals='{"tier":"read"}'))
    assert signalled == V1.replace(b"v1", b"v2")[:-1] + b',"{\\"tier\\":\\"read\\"}"]'


def test_values_as_a_database_returns_them_hash_alike() -> None:
    # SQLite hands back whole floats as ints and booleans as 0/1; PostgreSQL numerics as floats.
    row = list(BASE.as_tuple())
    names = ("ts", "stream", "status", "attempts", "input_tokens", "latency_ms")
    for name, stored in zip(names, (1000, 0, 200.0, True, 10.0, 12.5), strict=True):
        row[FIELDS.index(name)] = stored
    assert canonical(tuple(row)) == V1


def test_a_row_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError, match="fields"):
        canonical(BASE.as_tuple()[:5])
