"""The error tree: data given in constructors, and a refusal is a new error, never a patched one."""

from __future__ import annotations

import pytest

from governd.actions import Decision
from governd.errors import (
    ApprovalDenied,
    ApprovalRequired,
    BudgetExceeded,
    GovernError,
    InvalidRequest,
    PolicyDenied,
    RateLimited,
    RunLimitExceeded,
)

DENY = Decision("deny", ("because",))


@pytest.mark.parametrize(
    "error",
    [
        BudgetExceeded("over", budget="acme usd/day", retry_after=3.0),
        RunLimitExceeded("run r reached 3 steps", limit="steps"),
        PolicyDenied("no", policy="p", param="model"),
        ApprovalDenied("no", policy="p"),
        ApprovalRequired("ask", policy="p"),
        RateLimited("slow down", retry_after=1.0),
        InvalidRequest("bad", param="x", status=422),
    ],
    ids=lambda e: type(e).__name__,
)
def test_refusing_makes_a_new_error_with_everything_and_the_decision(error: GovernError) -> None:
    refused = error.refusing(DENY)
    assert refused is not error and type(refused) is type(error)
    assert refused.decision == DENY and error.decision is None
    assert {**vars(refused), "decision": None} == vars(error)
    assert str(refused) == str(error) and refused.status == error.status


def test_errors_carry_their_data_from_the_constructor() -> None:
    assert BudgetExceeded("x", budget="b", decision=DENY).budget == "b"
    assert RunLimitExceeded("x", limit="usd").limit == "usd"
    assert InvalidRequest("x", status=422).status == 422 and InvalidRequest("x").status == 400
    assert ApprovalDenied("x", policy="p").code == "approval_denied"
