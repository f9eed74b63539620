"""Envelope encryption of recordings at rest: AES-256-GCM, one data key per recording.

Each recording is encrypted with its own random 256-bit data key; the data key is stored only
wrapped (AES-256-GCM) by the operator's master key. Both layers bind the recording id as
associated data, so a ciphertext or a wrapped key moved to another recording fails to open.
Deleting a recording's wrapped key makes its audio unrecoverable even where copies of the
ciphertext survive in backups: that is how retention deletes (crypto-erase).

The envelope (``nonce + ciphertext + tag``) is :mod:`privacy.envelope`, the one the personal
data of work orders uses too; the master keys come from the same :class:`privacy.keys.KeyRing`
(``RecordingVault.from_keyring``). The ``cryptography`` package does the cryptography.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from privacy.envelope import KEY_BYTES, NONCE_BYTES, EnvelopeError, new_key, seal, unseal

if TYPE_CHECKING:
    from privacy.keys import KeyRing

__all__ = [
    "FORMAT",
    "KEY_BYTES",
    "NONCE_BYTES",
    "RecordingKeyError",
    "RecordingVault",
    "SealedRecording",
]

FORMAT = b"HLR1"  # header of a sealed recording: format, nonce, ciphertext+tag


class RecordingKeyError(Exception):
    """The key is missing, wrong, or the data was altered: the recording cannot be opened."""


@dataclass(frozen=True)
class SealedRecording:
    """What is stored: the encrypted audio and its wrapped data key (kept apart)."""

    recording_id: str
    ciphertext: bytes  # FORMAT + nonce + AES-GCM(audio)
    wrapped_key: bytes  # nonce + AES-GCM(master key, data key)


class RecordingVault:
    """Seals under one master key (from a file or a KMS, never git); opens with it or with an
    older master key of the same key ring (a recording sealed before a rotation)."""

    def __init__(self, master_key: bytes, older: Sequence[bytes] = ()) -> None:
        for key in (master_key, *older):
            if len(key) != KEY_BYTES:
                raise ValueError(f"the master key must be {KEY_BYTES} bytes (AES-256)")
        self._masters = (master_key, *older)

    @classmethod
    def from_keyring(cls, ring: KeyRing) -> RecordingVault:
        """Seal under the ring's current master key, open with any of its keys."""
        return cls(ring.current.key, [master.key for master in ring.keys[1:]])

    @staticmethod
    def new_master_key() -> bytes:
        return new_key()

    def seal(self, recording_id: str, audio: bytes) -> SealedRecording:
        aad = recording_id.encode()
        data_key = new_key()
        ciphertext = FORMAT + seal(data_key, audio, aad)
        return SealedRecording(recording_id, ciphertext, seal(self._masters[0], data_key, aad))

    def open(self, sealed: SealedRecording) -> bytes:
        aad = sealed.recording_id.encode()
        if not sealed.wrapped_key:
            raise RecordingKeyError(f"recording {sealed.recording_id}: key erased")
        if sealed.ciphertext[:4] != FORMAT:
            raise RecordingKeyError(f"recording {sealed.recording_id}: unknown format")
        for master in self._masters:
            try:
                data_key = unseal(master, sealed.wrapped_key, aad)
                return unseal(data_key, sealed.ciphertext[4:], aad)
            except EnvelopeError:
                continue
        raise RecordingKeyError(f"recording {sealed.recording_id}: wrong key or altered data")

    @staticmethod
    def erase(sealed: SealedRecording) -> SealedRecording:
        """Crypto-erase: the same recording without its wrapped key, never to be opened."""
        return SealedRecording(sealed.recording_id, sealed.ciphertext, b"")
