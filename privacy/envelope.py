"""The one envelope of the hotline: AES-256-GCM, ``nonce (12 bytes) + ciphertext + tag``.

Recordings (:mod:`recordings.crypto`), wrapped data keys (:mod:`privacy.datakeys`) and
personal fields of work orders (:mod:`privacy.fields`) all seal with these two functions, so
there is one format to review. The associated data binds a sealed value to where it belongs
(a recording id, a key's name and version, an order and field): moved elsewhere, it does not
open. The ``cryptography`` package does the cryptography; nothing here is hand-rolled.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # GCM's standard nonce, random per seal


class EnvelopeError(Exception):
    """Wrong key, altered data, or bound to other associated data: it does not open."""


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return AESGCM.generate_key(bit_length=256)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """``nonce + AES-256-GCM(key, plaintext, aad)``."""
    return seal_with(AESGCM(key), plaintext, aad)


def unseal(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """The plaintext of :func:`seal`'s output; :class:`EnvelopeError` if it does not open."""
    return unseal_with(AESGCM(key), sealed, aad)


def seal_with(aead: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    """:func:`seal` under a key made into an ``AESGCM`` once: for many small values under one
    key (personal fields), where setting the key up costs three times sealing one."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + aead.encrypt(nonce, plaintext, aad)


def unseal_with(aead: AESGCM, sealed: bytes, aad: bytes) -> bytes:
    """:func:`unseal` under a key made into an ``AESGCM`` once (see :func:`seal_with`)."""
    if len(sealed) < NONCE_BYTES + 16:
        raise EnvelopeError("too short to be sealed data")
    try:
        return aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except InvalidTag:
        raise EnvelopeError("wrong key, altered data or another owner's data") from None
