"""Envelope encryption of recordings (AES-256-GCM, a data key per recording)."""

from __future__ import annotations

import dataclasses

import pytest

from recordings.crypto import RecordingKeyError, RecordingVault

AUDIO = bytes(range(256)) * 64


def test_seal_then_open_gives_the_audio_back_and_hides_it() -> None:
    """A sealed recording opens to the same bytes; the stored ciphertext does not contain
    the audio, and two seals of the same audio differ (fresh key and nonce each time)."""
    vault = RecordingVault(RecordingVault.new_master_key())
    sealed = vault.seal("rec-1", AUDIO)
    assert vault.open(sealed) == AUDIO
    assert AUDIO[:64] not in sealed.ciphertext
    assert vault.seal("rec-1", AUDIO).ciphertext != sealed.ciphertext


def test_altered_ciphertext_or_moved_key_is_refused() -> None:
    """A flipped bit, a wrapped key moved to another recording, or another master key: the
    recording does not open (GCM authenticates data and recording id)."""
    vault = RecordingVault(RecordingVault.new_master_key())
    sealed = vault.seal("rec-1", AUDIO)
    other = vault.seal("rec-2", AUDIO)
    flipped = bytearray(sealed.ciphertext)
    flipped[-1] ^= 1
    with pytest.raises(RecordingKeyError):
        vault.open(dataclasses.replace(sealed, ciphertext=bytes(flipped)))
    with pytest.raises(RecordingKeyError):
        vault.open(dataclasses.replace(other, wrapped_key=sealed.wrapped_key))
    with pytest.raises(RecordingKeyError):
        RecordingVault(RecordingVault.new_master_key()).open(sealed)


def test_crypto_erase_makes_the_recording_unrecoverable() -> None:
    """Retention deletes by destroying the wrapped key: the ciphertext alone opens to
    nothing."""
    vault = RecordingVault(RecordingVault.new_master_key())
    erased = vault.erase(vault.seal("rec-1", AUDIO))
    with pytest.raises(RecordingKeyError, match="erased"):
        vault.open(erased)


def test_master_key_must_be_256_bits() -> None:
    """AES-256 is the standard's requirement: a shorter master key is refused at once."""
    with pytest.raises(ValueError, match="32 bytes"):
        RecordingVault(b"short")


def test_the_call_id_is_bound_too() -> None:
    """Recording and call id are both associated data: a recording relabelled with another
    call does not open."""
    vault = RecordingVault(RecordingVault.new_master_key())
    sealed = vault.seal("rec-1", AUDIO, call_id="1700000000.17")
    assert vault.open(sealed) == AUDIO
    with pytest.raises(RecordingKeyError):
        vault.open(dataclasses.replace(sealed, call_id="1700000000.18"))


def test_master_key_rotation_rewraps_without_touching_the_audio() -> None:
    """After a rotation, a recording sealed under the old master key opens with the new ring;
    ``rewrap`` puts its data key under the new key (same ciphertext), after which the old key
    alone no longer opens it; a second rewrap changes nothing."""
    old, new = RecordingVault.new_master_key(), RecordingVault.new_master_key()
    before = RecordingVault(old, versions=["1"])
    sealed = before.seal("rec-1", AUDIO, "c-1")
    assert sealed.master == "1"
    ring = RecordingVault(new, [old], versions=["2", "1"])
    assert ring.open(sealed) == AUDIO
    moved = ring.rewrap(sealed)
    assert (moved.master, moved.ciphertext) == ("2", sealed.ciphertext)
    assert RecordingVault(new, versions=["2"]).open(moved) == AUDIO
    with pytest.raises(RecordingKeyError, match="wrapped by 2"):
        RecordingVault(old, versions=["1"]).open(moved)
    assert ring.rewrap(moved) is moved


def test_the_tag_is_checked_before_any_byte_is_returned() -> None:
    """A recording altered anywhere (first byte of the audio, the tag) gives no partial
    audio: ``open`` refuses it whole."""
    vault = RecordingVault(RecordingVault.new_master_key())
    sealed = vault.seal("rec-1", AUDIO)
    for where in (4 + 12, len(sealed.ciphertext) - 1):
        altered = bytearray(sealed.ciphertext)
        altered[where] ^= 0x80
        with pytest.raises(RecordingKeyError, match="wrong key or altered"):
            vault.open(dataclasses.replace(sealed, ciphertext=bytes(altered)))
