"""Who is asking: the seam the API calls with a request's ``Authorization`` header.

:class:`access.tokens.TokenStore` is the real :class:`Authenticator` (bearer tokens kept in
Redis); unit tests of the API use :class:`access.testing.StaticAuthenticator`.
"""

from __future__ import annotations

from typing import Protocol

from access.roles import Identity


class Unauthenticated(Exception):
    """No valid credentials (HTTP 401). ``reason`` says why (malformed, unknown, expired,
    revoked) and never repeats the secret it was given."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Authenticator(Protocol):
    async def authenticate(self, authorization: str | None, now: float) -> Identity:
        """The identity of a raw ``Authorization`` header (``Bearer <token>``); raises
        :class:`Unauthenticated`."""
        ...
