"""Who may see and change what: identities, roles, tokens, web sessions.

- :mod:`access.roles`: the role × permission table and the scope rules (pure): ``authorize``;
- :mod:`access.authentication`: ``Unauthenticated`` and the ``Authenticator`` seam;
- :mod:`access.teams`: teams from ``agents.yaml``;
- :mod:`access.tokens`: bearer tokens in Redis (the real ``Authenticator``);
- :mod:`access.sessions`: the screens' cookie sessions and CSRF tokens;
- :mod:`access.cli`: ``ivr tokens``; :mod:`access.testing`: fakes for other packages' tests.
"""

from access.authentication import Authenticator, Unauthenticated
from access.roles import AccessDenied, Identity, Permission, Role, Scope, authorize
from access.teams import team_of

__all__ = [
    "AccessDenied",
    "Authenticator",
    "Identity",
    "Permission",
    "Role",
    "Scope",
    "Unauthenticated",
    "authorize",
    "team_of",
]
