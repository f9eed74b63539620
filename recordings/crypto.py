"""Envelope encryption of recordings at rest: AES-256-GCM, one data key per recording.

Each recording is encrypted with its own random 256-bit data key; the data key is stored only
wrapped (AES-256-GCM) by the operator's master key. Both layers bind the recording id and the
call id as associated data, so a ciphertext or a wrapped key moved to another recording (or
relabelled with another call) fails to open. Deleting a recording's wrapped key makes its
audio unrecoverable even where copies of the ciphertext survive in backups: that is how
retention deletes (crypto-erase).

The envelope (``nonce + ciphertext + tag``) is :mod:`privacy.envelope`, the one the personal
data of work orders uses too; the master keys come from the same :class:`privacy.keys.KeyRing`
(``RecordingVault.from_keyring``), and each sealed recording names the version of the master
key that wrapped its data key, so a rotation re-wraps (:meth:`RecordingVault.rewrap`) without
touching the audio. The ``cryptography`` package does the cryptography.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
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
    """What is stored: the encrypted audio and its wrapped data key (kept apart).

    ``master`` is the version of the master key that wrapped the data key ("" when unknown:
    every master key of the vault is tried)."""

    recording_id: str
    ciphertext: bytes  # FORMAT + nonce + AES-GCM(audio)
    wrapped_key: bytes  # nonce + AES-GCM(master key, data key)
    call_id: str = ""
    master: str = ""


class RecordingVault:
    """Seals under one master key (from a file or a KMS, never git); opens with it or with an
    older master key of the same key ring (a recording sealed before a rotation)."""

    def __init__(
        self, master_key: bytes, older: Sequence[bytes] = (),
        versions: Sequence[str] | None = None,
    ) -> None:
        keys = (master_key, *older)
        for key in keys:
            if len(key) != KEY_BYTES:
                raise ValueError(f"the master key must be {KEY_BYTES} bytes (AES-256)")
        if versions is None:
            # The same key always gets the same name (as privacy.keys names an unversioned key).
            versions = ["k" + hashlib.sha256(key).hexdigest()[:8] for key in keys]
        if len(versions) != len(keys):
            raise ValueError("one version per master key")
        self._masters = tuple(zip(versions, keys, strict=True))

    @classmethod
    def from_keyring(cls, ring: KeyRing) -> RecordingVault:
        """Seal under the ring's current master key, open with any of its keys."""
        return cls(ring.current.key, [master.key for master in ring.keys[1:]], ring.versions)

    @property
    def master_version(self) -> str:
        """The version of the master key that wraps from now on."""
        return self._masters[0][0]

    @staticmethod
    def new_master_key() -> bytes:
        return new_key()

    def seal(self, recording_id: str, audio: bytes, call_id: str = "") -> SealedRecording:
        data_key = new_key()
        ciphertext = FORMAT + seal(data_key, audio, _aad("audio", recording_id, call_id))
        version, master = self._masters[0]
        wrapped = seal(master, data_key, _aad("key", recording_id, call_id))
        return SealedRecording(recording_id, ciphertext, wrapped, call_id, version)

    def open(self, sealed: SealedRecording) -> bytes:
        """The audio; the GCM tag of both layers is checked before anything is returned."""
        if sealed.ciphertext[:4] != FORMAT:
            raise RecordingKeyError(f"recording {sealed.recording_id}: unknown format")
        data_key = self._data_key(sealed)
        try:
            return unseal(data_key, sealed.ciphertext[4:],
                          _aad("audio", sealed.recording_id, sealed.call_id))
        except EnvelopeError:
            raise RecordingKeyError(
                f"recording {sealed.recording_id}: wrong key or altered data"
            ) from None

    def rewrap(self, sealed: SealedRecording) -> SealedRecording:
        """The same recording with its data key wrapped by the current master key (a master
        key rotation: the audio is not re-encrypted)."""
        if sealed.master == self.master_version:
            return sealed
        data_key = self._data_key(sealed)
        version, master = self._masters[0]
        wrapped = seal(master, data_key, _aad("key", sealed.recording_id, sealed.call_id))
        return replace(sealed, wrapped_key=wrapped, master=version)

    def _data_key(self, sealed: SealedRecording) -> bytes:
        if not sealed.wrapped_key:
            raise RecordingKeyError(f"recording {sealed.recording_id}: key erased")
        aad = _aad("key", sealed.recording_id, sealed.call_id)
        # The named master key first; the others for a record that names none.
        for _version, master in sorted(self._masters, key=lambda vk: vk[0] != sealed.master):
            try:
                return unseal(master, sealed.wrapped_key, aad)
            except EnvelopeError:
                continue
        known = ", ".join(version for version, _ in self._masters)
        raise RecordingKeyError(
            f"recording {sealed.recording_id}: its data key does not open with the master "
            f"key(s) {known} (wrapped by {sealed.master or 'an unnamed key'}; wrong key, "
            "or altered)"
        )

    @staticmethod
    def erase(sealed: SealedRecording) -> SealedRecording:
        """Crypto-erase: the same recording without its wrapped key, never to be opened."""
        return replace(sealed, wrapped_key=b"")


def _aad(layer: str, recording_id: str, call_id: str) -> bytes:
    # JSON: unambiguous whatever characters the ids hold.
    return json.dumps(["HLR1", layer, recording_id, call_id], ensure_ascii=True).encode()
