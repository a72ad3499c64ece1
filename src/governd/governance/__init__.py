"""The governance plane: principals, keys, policies, rate limits, budgets, admission.

Pure and fast: no I/O to upstreams here. Exports ``PrincipalTree``,
``KeyRing`` and ``decide``; ``admission.Admission`` puts them together.
"""

from governd.governance.decide import decide
from governd.governance.keys import ApiKey, KeyRing
from governd.governance.principals import PrincipalTree

__all__ = ["ApiKey", "KeyRing", "PrincipalTree", "decide"]
