"""The master keys: AES-256 keys by version, from the environment or a key file, never git.

Where they come from, in this order (the first that is set wins; nothing set is an error):

- ``HOTLINE_MASTER_KEY``: one key, ``base64`` or ``version:base64``; during a rotation
  ``HOTLINE_MASTER_KEY_PREVIOUS`` holds the older key(s), comma-separated, newest first.
  A key given without a version is named ``k`` + 8 hex digits of its SHA-256, so the same key
  always gets the same version.
- the file named by ``service.yaml`` ``keys.master_key_file``: one ``version:base64`` line per
  key, newest first (``#`` comments and blank lines allowed), readable by its owner only.

The newest key (:attr:`KeyRing.current`) wraps; every key in the ring unwraps what it wrapped
before a rotation. Master keys only ever wrap data keys (:mod:`privacy.datakeys`), never data,
so a rotation re-wraps a handful of data keys and no personal data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from privacy.envelope import KEY_BYTES, EnvelopeError, new_key, seal, unseal

ENV_KEY = "HOTLINE_MASTER_KEY"
ENV_PREVIOUS = "HOTLINE_MASTER_KEY_PREVIOUS"
CONFIG_KEY = "service.yaml keys.master_key_file"

_VERSION = re.compile(r"[A-Za-z0-9._-]{1,40}")


class PrivacyError(Exception):
    """A key or a sealed value cannot be used; the message says which and where it looked."""


class MasterKeyError(PrivacyError, KeyError):
    """No usable master key: missing, malformed, unsafe file, or not the key that wrapped."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class MasterKey:
    """One master key and the version it is named by in what it wraps."""

    version: str
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not _VERSION.fullmatch(self.version):
            raise MasterKeyError(
                f"master key version {self.version!r}: letters, digits, '.', '_', '-' only"
            )
        if len(self.key) != KEY_BYTES:
            raise MasterKeyError(
                f"master key {self.version}: {len(self.key)} bytes, AES-256 needs {KEY_BYTES}"
            )


class KeyRing:
    """Master keys by version, newest first; ``source`` says where they were loaded from."""

    def __init__(self, keys: Sequence[MasterKey], source: str) -> None:
        if not keys:
            raise MasterKeyError(f"no master key in {source}")
        versions = [key.version for key in keys]
        duplicates = sorted({v for v in versions if versions.count(v) > 1})
        if duplicates:
            raise MasterKeyError(f"{source}: master key version(s) {duplicates} given twice")
        self.keys = tuple(keys)
        self.source = source
        self._by_version = {key.version: key for key in keys}

    @property
    def current(self) -> MasterKey:
        """The newest key: everything wrapped from now on is wrapped by it."""
        return self.keys[0]

    @property
    def versions(self) -> tuple[str, ...]:
        return tuple(key.version for key in self.keys)

    def get(self, version: str) -> MasterKey:
        try:
            return self._by_version[version]
        except KeyError:
            raise MasterKeyError(
                f"master key version {version!r} is not in the key ring loaded from "
                f"{self.source} (versions: {', '.join(self.versions)})"
            ) from None

    def wrap(self, data_key: bytes, aad: bytes) -> tuple[str, bytes]:
        """``data_key`` sealed by the current key: (the key's version, the wrapped bytes)."""
        return self.current.version, seal(self.current.key, data_key, aad)

    def unwrap(self, version: str, wrapped: bytes, aad: bytes, what: str) -> bytes:
        """The data key that ``wrap`` sealed under ``version``; ``what`` names it in errors."""
        try:
            return unseal(self.get(version).key, wrapped, aad)
        except EnvelopeError:
            raise MasterKeyError(
                f"{what} does not open with master key version {version!r} from {self.source}: "
                "a different key under that version, or the wrapped key was altered"
            ) from None

    @classmethod
    def load(
        cls,
        *,
        key_file: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> KeyRing:
        """From ``HOTLINE_MASTER_KEY`` (and ``..._PREVIOUS``), else from ``key_file``.

        Raises :class:`MasterKeyError` naming where it looked when there is no usable key.
        """
        environ = os.environ if environ is None else environ
        if environ.get(ENV_KEY, "").strip():
            keys = [_env_key(environ[ENV_KEY], ENV_KEY)]
            previous = environ.get(ENV_PREVIOUS, "")
            keys += [_env_key(text, ENV_PREVIOUS) for text in previous.split(",") if text.strip()]
            source = ENV_KEY + (f" and {ENV_PREVIOUS}" if len(keys) > 1 else "")
            return cls(keys, f"environment variable {source}")
        if key_file:
            return cls.from_file(key_file)
        raise MasterKeyError(
            f"no master key: environment variable {ENV_KEY} is not set and {CONFIG_KEY} is "
            "not configured (personal data is never written unencrypted; create a key with "
            "`ivr keys init`)"
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> KeyRing:
        file = Path(path)
        try:
            info = file.stat()
        except OSError as exc:
            raise MasterKeyError(
                f"master key file {file} ({CONFIG_KEY}; {ENV_KEY} is not set): "
                f"{exc.strerror or exc}"
            ) from None
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise MasterKeyError(
                f"master key file {file} is open to group or others (mode "
                f"{stat.S_IMODE(info.st_mode):04o}): refused; make it readable by its owner "
                f"only: chmod 600 {file}"
            )
        try:
            text = file.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise MasterKeyError(f"master key file {file}: cannot read it: {exc}") from None
        return cls(parse_key_file(text, str(file)), f"master key file {file}")


def parse_key_file(text: str, where: str) -> list[MasterKey]:
    """The keys of a key file's text, newest first; errors name ``where`` and the line."""
    keys = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        version, colon, encoded = line.partition(":")
        if not colon:
            raise MasterKeyError(f"{where}:{number}: expected 'version:base64'")
        keys.append(_master_key(version.strip(), encoded.strip(), f"{where}:{number}"))
    if not keys:
        raise MasterKeyError(f"{where}: no key in the file (one 'version:base64' per line)")
    return keys


def key_file_line(version: str | None = None, key: bytes | None = None) -> str:
    """A new key as a key-file line (``ivr keys init``); version defaults to the UTC time."""
    version = version or datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    master = MasterKey(version, key or new_key())
    return f"{master.version}:{base64.b64encode(master.key).decode()}"


def _env_key(text: str, where: str) -> MasterKey:
    where = f"environment variable {where}"
    version, colon, encoded = text.strip().rpartition(":")
    if not colon:
        key = _decode(text.strip(), where)
        return MasterKey("k" + hashlib.sha256(key).hexdigest()[:8], key)
    return _master_key(version, encoded, where)


def _master_key(version: str, encoded: str, where: str) -> MasterKey:
    try:
        return MasterKey(version, _decode(encoded, where))
    except MasterKeyError as exc:
        if str(exc).startswith(where):
            raise
        raise MasterKeyError(f"{where}: {exc}") from None


def _decode(encoded: str, where: str) -> bytes:
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError(f"{where}: the key is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise MasterKeyError(
            f"{where}: the key is {len(key)} bytes, AES-256 needs {KEY_BYTES} "
            "(base64 of 32 random bytes; `ivr keys init` makes one)"
        )
    return key
