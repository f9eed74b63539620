"""Master keys (``privacy.keys``): where they are loaded from, and the clear errors when none
is usable; the envelope shared with recordings."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from privacy.envelope import EnvelopeError, new_key, seal, unseal
from privacy.keys import ENV_KEY, ENV_PREVIOUS, KeyRing, MasterKeyError, key_file_line
from recordings.crypto import RecordingKeyError, RecordingVault


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def key_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "master.key"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_env_key_without_a_version_is_named_by_its_fingerprint() -> None:
    """``HOTLINE_MASTER_KEY=<base64>`` loads one key whose version is derived from the key,
    the same on every instance; the environment wins over a configured key file."""
    key = new_key()
    ring = KeyRing.load(key_file="/nonexistent", environ={ENV_KEY: b64(key)})
    again = KeyRing.load(environ={ENV_KEY: b64(key)})
    assert ring.current.key == key and ring.versions == again.versions
    assert ring.current.version.startswith("k") and len(ring.current.version) == 9
    assert "environment variable HOTLINE_MASTER_KEY" in ring.source


def test_env_key_with_previous_keys_for_a_rotation() -> None:
    """``version:base64`` names the version; ``HOTLINE_MASTER_KEY_PREVIOUS`` adds older keys
    after the current one, which alone wraps."""
    new, old = new_key(), new_key()
    ring = KeyRing.load(environ={ENV_KEY: f"2:{b64(new)}", ENV_PREVIOUS: f"1:{b64(old)}"})
    assert ring.versions == ("2", "1") and ring.current.key == new
    version, wrapped = ring.wrap(b"k" * 32, b"aad")
    assert version == "2"
    assert ring.unwrap("2", wrapped, b"aad", "test key") == b"k" * 32


def test_key_file_lines_newest_first(tmp_path: Path) -> None:
    """The key file holds ``version:base64`` lines, newest first; comments and blank lines
    are skipped; ``key_file_line`` writes a line the loader reads back."""
    line_new, line_old = key_file_line("v2"), key_file_line("v1")
    path = key_file(tmp_path, f"# hotline master keys\n{line_new}\n\n{line_old}\n")
    ring = KeyRing.load(key_file=path, environ={})
    assert ring.versions == ("v2", "v1")
    assert ring.current.key == base64.b64decode(line_new.split(":", 1)[1])
    assert str(path) in ring.source


def test_key_file_open_to_others_is_refused(tmp_path: Path) -> None:
    """A key file readable by group or others is refused, with its mode and the fix."""
    path = key_file(tmp_path, key_file_line("1") + "\n", mode=0o644)
    with pytest.raises(MasterKeyError, match=r"open to group or others \(mode 0644\).*chmod 600"):
        KeyRing.load(key_file=path, environ={})


def test_no_key_anywhere_names_both_places() -> None:
    """Neither the variable nor the config key: the error names both, at load."""
    with pytest.raises(MasterKeyError) as caught:
        KeyRing.load(key_file=None, environ={})
    assert "HOTLINE_MASTER_KEY" in str(caught.value)
    assert "keys.master_key_file" in str(caught.value)


def test_missing_key_file_names_its_path(tmp_path: Path) -> None:
    """A configured key file that does not exist: the error names the path and the config
    key that named it."""
    path = tmp_path / "absent.key"
    with pytest.raises(MasterKeyError, match=rf"{path}.*keys.master_key_file"):
        KeyRing.load(key_file=path, environ={})


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1:not base64!\n", r"master\.key:1: the key is not valid base64"),
        (f"1:{b64(b'short')}\n", r"master\.key:1: the key is 5 bytes, AES-256 needs 32"),
        ("no colon here\n", r"master\.key:1: expected 'version:base64'"),
        ("# only a comment\n", r"no key in the file"),
        # Fresh keys: stable ids, so every pytest-xdist worker collects the same tests.
        pytest.param(f"1:{b64(new_key())}\n1:{b64(new_key())}\n",
                     r"version\(s\) \['1'\] given twice", id="version-given-twice"),
        pytest.param(f"bad version:{b64(new_key())}\n", r"master\.key:1: .*letters, digits",
                     id="bad-version-name"),
    ],
)
def test_malformed_key_files_say_line_and_reason(tmp_path: Path, text: str, reason: str) -> None:
    """Each malformed key file fails at load with the file, the line and what is wrong."""
    with pytest.raises(MasterKeyError, match=reason):
        KeyRing.load(key_file=key_file(tmp_path, text), environ={})


def test_malformed_env_key_names_the_variable() -> None:
    """A bad ``HOTLINE_MASTER_KEY`` is reported as that variable, never silently ignored."""
    with pytest.raises(MasterKeyError, match="environment variable HOTLINE_MASTER_KEY"):
        KeyRing.load(environ={ENV_KEY: b64(b"too short")})


def test_unwrap_with_another_key_or_unknown_version_is_a_clear_error() -> None:
    """A wrapped key opened under the wrong key, or under a version the ring lacks, raises
    ``MasterKeyError`` naming the version and where the ring was loaded from."""
    ring = KeyRing.load(environ={ENV_KEY: f"1:{b64(new_key())}"})
    other = KeyRing.load(environ={ENV_KEY: f"1:{b64(new_key())}"})
    _, wrapped = other.wrap(new_key(), b"aad")
    with pytest.raises(MasterKeyError, match="does not open with master key version '1'"):
        ring.unwrap("1", wrapped, b"aad", "data key x")
    with pytest.raises(MasterKeyError, match="version '9' is not in the key ring"):
        ring.unwrap("9", wrapped, b"aad", "data key x")


def test_envelope_binds_its_associated_data() -> None:
    """The one envelope opens with its key and associated data only."""
    key = new_key()
    sealed = seal(key, b"secret", b"here")
    assert unseal(key, sealed, b"here") == b"secret"
    with pytest.raises(EnvelopeError):
        unseal(key, sealed, b"there")
    with pytest.raises(EnvelopeError):
        unseal(new_key(), sealed, b"here")


def test_recordings_use_the_key_ring_and_open_after_a_rotation() -> None:
    """A recording sealed under the old master key still opens once the ring has a newer
    key first; new recordings are sealed under the newest key only."""
    old, new = new_key(), new_key()
    before = RecordingVault.from_keyring(KeyRing.load(environ={ENV_KEY: f"1:{b64(old)}"}))
    sealed = before.seal("rec-1", b"audio")
    rotated = RecordingVault.from_keyring(
        KeyRing.load(environ={ENV_KEY: f"2:{b64(new)}", ENV_PREVIOUS: f"1:{b64(old)}"})
    )
    assert rotated.open(sealed) == b"audio"
    fresh = rotated.seal("rec-2", b"audio 2")
    with pytest.raises(RecordingKeyError):
        RecordingVault(old).open(fresh)
    assert RecordingVault(new).open(fresh) == b"audio 2"
