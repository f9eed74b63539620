"""Bytes off the wire as text: the one helper for Redis replies and raw HTTP arguments.

The service's Redis clients do not decode replies (some callers hand in clients that do, so a
reply may already be ``str``), and Twisted gives a request's arguments as bytes. This module
imports nothing of the project, so any package (the pure cores too) may use it without an
import cycle.
"""

from __future__ import annotations

__all__ = ["as_text"]


def as_text(value: bytes | str, errors: str = "strict") -> str:
    """``value`` as ``str``: bytes decoded as UTF-8, anything else through ``str()``.

    ``errors`` is :meth:`bytes.decode`'s: ``"strict"`` for Redis replies, which the service
    wrote itself (a bad byte there is a fault to surface); ``"replace"`` for what a client
    sent, so a stray byte becomes U+FFFD, which no identifier pattern accepts.
    """
    return value.decode("utf-8", errors) if isinstance(value, bytes) else str(value)
