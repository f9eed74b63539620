"""Personal fields sealed one by one, and a keyed blind index of caller numbers.

A sealed value is text, so it fits a Redis hash field, a JSON history entry or a spool line::

    enc1:<data key version>:<base64 of nonce + ciphertext + tag>

AES-256-GCM (:mod:`privacy.envelope`) under the data key ``workorders-pii``, with associated
data naming the value's owner (a work order's call id) and its field: a sealed value copied to
another order or another field does not open. Text without the ``enc1:`` prefix is a value
written before encryption and is read as it is (see ``ivr keys migrate-orders``).

The blind index is HMAC-SHA256, under the data key ``blind-index``, of the normalized caller
number (its digits, a leading ``+`` kept): equal numbers give equal indexes, so repeat
contacts are found, while the index alone tells nothing about the number.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from json.encoder import encode_basestring_ascii as _json_text
from typing import Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from privacy.datakeys import BLIND_INDEX, WORKORDERS_PII, DataKey
from privacy.envelope import EnvelopeError, seal_with, unseal_with
from privacy.keys import PrivacyError

PREFIX = "enc1:"


class SealedFieldError(PrivacyError):
    """A sealed field does not open: wrong key, altered, or moved to another order or field."""


class DataKeySource(Protocol):
    """Where the cipher gets its data keys (:class:`privacy.datakeys.DataKeys`)."""

    async def key(self, name: str) -> DataKey: ...


def is_sealed(text: str) -> bool:
    return text.startswith(PREFIX)


_NOT_A_DIGIT = re.compile(r"[^0-9]")


def normalize_number(number: str) -> str:
    """The number's digits, with its leading ``+`` if it had one: ``+82 10-1234`` ->
    ``+82101234``. What the blind index is computed over."""
    # The ASCII digits, by one regular expression: a loop over the characters in Python was
    # a tenth of the blind index a creation computes (the tests compare the two).
    digits = _NOT_A_DIGIT.sub("", number)
    return "+" + digits if number.strip().startswith("+") and digits else digits


class FieldCipher:
    """Seals and opens personal fields, and computes blind indexes; keys held in memory."""

    def __init__(self, pii: DataKey, blind_index: DataKey) -> None:
        self._pii = pii
        self._aead = AESGCM(pii.key)  # set up once: it costs more than sealing a field
        # Keyed once, copied per number: keying HMAC costs more than hashing a number.
        self._index_mac = hmac.new(blind_index.key, digestmod=hashlib.sha256)

    @classmethod
    async def load(cls, keys: DataKeySource) -> FieldCipher:
        """With the data keys ``workorders-pii`` and ``blind-index`` (created on first use)."""
        return cls(await keys.key(WORKORDERS_PII), await keys.key(BLIND_INDEX))

    @staticmethod
    def is_sealed(text: str) -> bool:
        """Whether ``text`` is a sealed value (else: written before encryption)."""
        return is_sealed(text)

    def seal(self, owner: str, field: str, value: str) -> str:
        """``value`` sealed for ``field`` of ``owner``, as ``enc1:`` text."""
        body = seal_with(self._aead, value.encode("utf-8"), _aad(owner, field))
        return f"{PREFIX}{self._pii.version}:{base64.b64encode(body).decode()}"

    def open(self, owner: str, field: str, text: str) -> str:
        """The plaintext of a sealed ``text``; text without the prefix is returned as is."""
        if not is_sealed(text):
            return text
        version, colon, encoded = text[len(PREFIX):].partition(":")
        if not colon or not version.isdigit():
            raise SealedFieldError(f"{field} of {owner}: malformed sealed value")
        if int(version) != self._pii.version:
            raise SealedFieldError(
                f"{field} of {owner}: sealed with data key {self._pii.name} version {version}, "
                f"this process holds version {self._pii.version}"
            )
        try:
            body = base64.b64decode(encoded, validate=True)
            return unseal_with(self._aead, body, _aad(owner, field)).decode("utf-8")
        except (binascii.Error, ValueError, EnvelopeError):
            raise SealedFieldError(
                f"{field} of {owner} does not open: a wrong data key, altered, or moved from "
                "another order or field"
            ) from None

    def blind_index(self, number: str) -> str | None:
        """The keyed index of ``number`` (hex), or None for a number without digits
        (anonymous callers are not one repeat caller)."""
        normalized = normalize_number(number)
        if not normalized.lstrip("+"):
            return None
        mac = self._index_mac.copy()
        mac.update(normalized.encode())
        return mac.hexdigest()


def _aad(owner: str, field: str) -> bytes:
    # JSON: unambiguous whatever characters the call id holds. The bytes of
    # ``json.dumps(["enc1", owner, field])`` built from json's own string encoder: a whole
    # dumps() cost as much as the sealing itself, and every value sealed so far depends on
    # these exact bytes.
    return f'["enc1", {_json_text(owner)}, {_json_text(field)}]'.encode()
