"""The bearer token the ``ivr`` commands (and the testbed) send to the HTTP API.

From ``HOTLINE_TOKEN``, else from the file named by ``HOTLINE_TOKEN_FILE`` (so the token
stays out of the shell history and the process list); ``ivr tokens create`` makes one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__all__ = ["TOKEN_HELP", "TokenFileError", "api_token", "authorization"]

TOKEN_HELP = (
    "The API wants a bearer token: set HOTLINE_TOKEN to it, or HOTLINE_TOKEN_FILE to a file "
    "holding it (ivr tokens create makes one)."
)


class TokenFileError(Exception):
    """``HOTLINE_TOKEN_FILE`` names a file that cannot be read."""


def api_token(environ: Mapping[str, str]) -> str | None:
    """The token, ``None`` when neither variable is set."""
    token = environ.get("HOTLINE_TOKEN", "").strip()
    if token:
        return token
    path = environ.get("HOTLINE_TOKEN_FILE", "")
    if not path:
        return None
    try:
        return Path(path).read_text().strip() or None
    except OSError as exc:
        raise TokenFileError(
            f"HOTLINE_TOKEN_FILE={path}: cannot read it ({exc.strerror})"
        ) from None


def authorization(token: str | None) -> dict[str, str]:
    """The request header for ``token`` (none without one)."""
    return {"Authorization": f"Bearer {token}"} if token else {}
