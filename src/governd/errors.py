"""The one exception tree of governd; the edges render it (HTTP: the OpenAI error envelope).

    GovernError                      code                    HTTP
    ├── InvalidRequest               invalid_request_error   400
    │   └── RequestTooLarge          request_too_large       413
    ├── AuthenticationFailed         invalid_api_key         401
    ├── PermissionDenied             permission_denied       403
    │   ├── PolicyDenied             policy_denied           403
    │   │   └── ApprovalDenied       approval_denied         403
    │   ├── ToolQuarantined          tool_quarantined        403
    │   └── ApprovalRequired         approval_required       403
    ├── NotFound                     not_found               404
    │   └── ModelNotFound            model_not_found         404
    ├── Conflict                     conflict                409
    ├── RateLimited                  rate_limit_exceeded     429
    ├── BudgetExceeded               budget_exceeded         429
    ├── RunLimitExceeded             run_limit_exceeded      429
    ├── UpstreamError                upstream_error          502
    ├── UpstreamUnavailable          upstream_unavailable    503
    │   └── Overloaded               overloaded              503
    ├── StateUnavailable             state_unavailable       503
    ├── StorageUnavailable           storage_unavailable     503
    ├── UpstreamTimeout              upstream_timeout        504
    ├── ClientDisconnected           client_disconnected     499 (ledger only)
    └── LeaseLost                    internal_error          500 (never meant for a client)

A bare ``GovernError`` is an internal error: details go to the log, the
client gets ``internal_error`` and nothing more.

Tests check ``type`` and ``code``, never message text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from governd.actions import Decision


class GovernError(Exception):
    """Root of every error governd raises on purpose."""

    code = "internal_error"
    type = "server_error"
    status = 500
    #: Where the action last ran and how many attempts it made, when routing it failed.
    deployment: str | None = None
    attempts = 0

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        retry_after: float | None = None,
        decision: Decision | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after = retry_after
        #: The admission verdict of the action that failed, once it was decided.
        self.decision = decision
        if status is not None:
            self.status = status

    def refusing(self, decision: Decision) -> Self:
        """This error as the refusal of ``decision`` (a new error; this one is left as it is)."""
        return self._with(decision=decision)

    def failed_at(self, deployment: str, attempts: int) -> Self:
        """This error as the end of ``attempts`` tries, the last at ``deployment`` (a new error)."""
        return self._with(deployment=deployment, attempts=attempts)

    def _with(self, **changes: object) -> Self:
        copy = type(self).__new__(type(self))
        Exception.__init__(copy, *self.args)
        copy.__dict__.update(self.__dict__, **changes)
        return copy

    def envelope(self) -> dict[str, dict[str, str | None]]:
        """The OpenAI error shape: ``{"error": {message, type, code, param}}``."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "code": self.code,
                "param": self.param,
            }
        }


class InvalidRequest(GovernError):
    """The request is malformed: bad JSON, a missing or ill-typed field."""

    code = "invalid_request_error"
    type = "invalid_request_error"
    status = 400


class RequestTooLarge(InvalidRequest):
    """The request body exceeds the configured size limit."""

    code = "request_too_large"
    status = 413


class TooManyHeaders(InvalidRequest):
    """More request headers than governd reads."""

    code = "too_many_headers"
    status = 431


class AuthenticationFailed(GovernError):
    """No key, or an unknown, revoked or expired one."""

    code = "invalid_api_key"
    type = "authentication_error"
    status = 401


class PermissionDenied(GovernError):
    """The principal may not do this."""

    code = "permission_denied"
    type = "permission_error"
    status = 403


class PolicyDenied(PermissionDenied):
    """A policy denied the action; the message names the policy."""

    code = "policy_denied"

    def __init__(
        self,
        message: str,
        *,
        policy: str,
        param: str | None = None,
        decision: Decision | None = None,
    ) -> None:
        super().__init__(message, param=param, decision=decision)
        self.policy = policy


class ApprovalDenied(PolicyDenied):
    """A human denied the approval a policy asked for."""

    code = "approval_denied"


class ToolQuarantined(PermissionDenied):
    """A tool changed since it was trusted (or looks like an injection) and awaits an admin."""

    code = "tool_quarantined"


class ApprovalRequired(PermissionDenied):
    """A policy requires a human's approval, and none can be asked for this action."""

    code = "approval_required"

    def __init__(self, message: str, *, policy: str, decision: Decision | None = None) -> None:
        super().__init__(message, decision=decision)
        self.policy = policy


class NotFound(GovernError):
    """The addressed object does not exist."""

    code = "not_found"
    type = "invalid_request_error"
    status = 404


class ModelNotFound(NotFound):
    """No model alias of that name is configured."""

    code = "model_not_found"


class Conflict(GovernError):
    """The thing asked for cannot be done in the state its target is in (a release's phase, gates)."""

    code = "conflict"
    type = "invalid_request_error"
    status = 409


class RateLimited(GovernError):
    """A rate limit is exhausted; ``retry_after`` says when to come back."""

    code = "rate_limit_exceeded"
    type = "rate_limit_error"
    status = 429


class AuthThrottled(RateLimited):
    """A client address that failed to authenticate too often, refused before its key is read."""

    code = "too_many_auth_failures"


class BudgetExceeded(GovernError):
    """A hard budget would be exceeded; the message and ``budget`` name the budget."""

    code = "budget_exceeded"
    type = "insufficient_quota"
    status = 429

    def __init__(
        self,
        message: str,
        *,
        budget: str,
        retry_after: float | None = None,
        decision: Decision | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after, decision=decision)
        self.budget = budget


class RunLimitExceeded(GovernError):
    """An agent run reached one of its limits (steps, tool calls, USD, wall time); ``limit`` names it."""

    code = "run_limit_exceeded"
    type = "insufficient_quota"
    status = 429

    def __init__(self, message: str, *, limit: str, decision: Decision | None = None) -> None:
        super().__init__(message, decision=decision)
        self.limit = limit


class UpstreamError(GovernError):
    """Every upstream attempt failed (connection refused, 5xx, broken reply)."""

    code = "upstream_error"
    type = "api_error"
    status = 502


class UpstreamUnavailable(GovernError):
    """No deployment can take the call now (all circuit breakers open, or shed)."""

    code = "upstream_unavailable"
    type = "api_error"
    status = 503


class Overloaded(UpstreamUnavailable):
    """Capacity is full and a sheddable request would wait too long; ``retry_after`` says when."""

    code = "overloaded"


class StateUnavailable(GovernError):
    """Shared live state (Redis) cannot be reached: calls are refused, budgets stay hard."""

    code = "state_unavailable"
    type = "api_error"
    status = 503


class StorageUnavailable(GovernError):
    """The ledger's database cannot be reached or opened."""

    code = "storage_unavailable"
    type = "api_error"
    status = 503


class UpstreamTimeout(GovernError):
    """The upstream did not answer within its timeout."""

    code = "upstream_timeout"
    type = "api_error"
    status = 504


class ClientDisconnected(GovernError):
    """The client went away before the reply finished (recorded, never sent)."""

    code = "client_disconnected"
    type = "client_error"
    status = 499


class LeaseLost(GovernError):
    """This replica acted under a lease another replica has since taken: it must stop acting."""
