"""The governance plane: principals, keys and admission decisions.

Pure and fast: no I/O to upstreams here. Exports ``PrincipalTree``,
``KeyRing`` and ``decide``.
"""

from governd.governance.decide import decide
from governd.governance.keys import ApiKey, KeyRing
from governd.governance.principals import PrincipalTree

__all__ = ["ApiKey", "KeyRing", "PrincipalTree", "decide"]
