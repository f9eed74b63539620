"""Envelope encryption of recordings at rest: AES-256-GCM, one data key per recording.

Each recording is encrypted with its own random 256-bit data key; the data key is stored only
wrapped (AES-256-GCM) by the operator's master key. Both layers bind the recording id as
associated data, so a ciphertext or a wrapped key moved to another recording fails to open.
Deleting a recording's wrapped key makes its audio unrecoverable even where copies of the
ciphertext survive in backups: that is how retention deletes (crypto-erase).

The ``cryptography`` package does the cryptography; nothing here is hand-rolled.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # GCM's standard nonce
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
    """Seals and opens recordings under one master key (from a file or a KMS, never git)."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != KEY_BYTES:
            raise ValueError(f"the master key must be {KEY_BYTES} bytes (AES-256)")
        self._master = AESGCM(master_key)

    @staticmethod
    def new_master_key() -> bytes:
        return AESGCM.generate_key(bit_length=256)

    def seal(self, recording_id: str, audio: bytes) -> SealedRecording:
        aad = recording_id.encode()
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = FORMAT + nonce + AESGCM(data_key).encrypt(nonce, audio, aad)
        key_nonce = os.urandom(NONCE_BYTES)
        wrapped = key_nonce + self._master.encrypt(key_nonce, data_key, aad)
        return SealedRecording(recording_id, ciphertext, wrapped)

    def open(self, sealed: SealedRecording) -> bytes:
        aad = sealed.recording_id.encode()
        if not sealed.wrapped_key:
            raise RecordingKeyError(f"recording {sealed.recording_id}: key erased")
        if sealed.ciphertext[:4] != FORMAT:
            raise RecordingKeyError(f"recording {sealed.recording_id}: unknown format")
        try:
            data_key = self._master.decrypt(
                sealed.wrapped_key[:NONCE_BYTES], sealed.wrapped_key[NONCE_BYTES:], aad
            )
            body = sealed.ciphertext[4:]
            return AESGCM(data_key).decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], aad)
        except Exception as exc:  # cryptography raises InvalidTag; say what it means here
            raise RecordingKeyError(
                f"recording {sealed.recording_id}: wrong key or altered data"
            ) from exc

    @staticmethod
    def erase(sealed: SealedRecording) -> SealedRecording:
        """Crypto-erase: the same recording without its wrapped key, never to be opened."""
        return SealedRecording(sealed.recording_id, sealed.ciphertext, b"")
