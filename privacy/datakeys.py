"""Named data keys, kept in Redis only wrapped by the master key, unwrapped in memory.

``<prefix>keys:<name>`` holds one JSON record per data key::

    {"version": 1, "master": "<master key version>", "wrapped": "<base64 nonce+ciphertext>"}

``wrapped`` is the 32-byte data key sealed (AES-256-GCM, :mod:`privacy.envelope`) by that
master key, with the associated data ``hotline-data-key:<name>:<version>``, so a record copied
under another name does not open. Data keys encrypt the data (personal fields of work orders,
the blind index, the access tokens' HMAC); master keys only wrap data keys.

- Creation on first use is race-free across instances: each proposes a fresh key with
  ``SET NX`` and every one then uses what Redis kept.
- Rotation of the master key (``ivr keys rotate``) re-wraps each record under the current
  master key, one compare-and-set per key: atomic per key, resumable (a record already under
  the current key is left alone), and no data is re-encrypted.
- A service keeps a copy of each record it read in ``local_dir`` (mode 0600: the record is
  the wrapped key, which only the master key opens). When Redis is away at start, the data
  keys come from that copy, so the service starts and seals what it spools; a key that was
  never read here cannot be made without Redis (two instances would make two), and says so.
  The copy is brought up to date at each read from Redis (after a rotation, at the next
  start with Redis up).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from hotline.text import as_text
from privacy.envelope import new_key
from privacy.keys import KeyRing, MasterKeyError, PrivacyError

#: The data keys the hotline uses (others may be added; names are ``[a-z0-9-]``).
WORKORDERS_PII = "workorders-pii"
BLIND_INDEX = "blind-index"
ACCESS_TOKENS = "access-tokens"

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")

# Replace the record only if it is still the one that was re-wrapped (another instance may
# have rotated it meanwhile).
_COMPARE_AND_SET = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


class DataKeyError(PrivacyError):
    """A data key record is missing, malformed, or does not open with the master keys."""


@dataclass(frozen=True)
class DataKey:
    """An unwrapped data key: its name, its version (named in what it seals) and the key."""

    name: str
    version: int
    key: bytes = field(repr=False)


@dataclass
class RotationReport:
    """What ``rotate`` did: names re-wrapped now, already under the current key, failed."""

    master_version: str
    rewrapped: list[str] = field(default_factory=list)
    current: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


@dataclass
class CheckReport:
    """What ``check`` found: each data key that opens (with its master version), and those
    that do not (with the reason)."""

    opened: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


class DataKeys:
    """The data keys of one Redis key space, unwrapped with ``ring`` and cached here."""

    def __init__(
        self, redis: Redis, ring: KeyRing, *, prefix: str = "hotline:",
        local_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._redis = redis
        self.ring = ring
        self.prefix = prefix
        self.local_dir = Path(local_dir) if local_dir is not None else None
        self._cache: dict[str, DataKey] = {}
        self._cas = redis.register_script(_COMPARE_AND_SET)

    async def get(self, name: str) -> bytes:
        """The data key ``name`` (32 bytes), created on first use."""
        return (await self.key(name)).key

    async def key(self, name: str) -> DataKey:
        """The data key ``name`` with its version, created on first use."""
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        redis_key = self._redis_key(name)
        try:
            raw = await self._redis.get(redis_key)
            if raw is None:
                proposal = self._wrap(name, 1, new_key())
                await self._redis.set(redis_key, proposal, nx=True)
                raw = await self._redis.get(redis_key)  # ours, or the one another instance set
                if raw is None:
                    raise DataKeyError(
                        f"data key {name}: {redis_key} vanished right after creation"
                    )
        except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
            raw = self._local_copy(name, exc)
        key = self._unwrap(name, raw)
        self._keep_local_copy(name, raw)
        self._cache[name] = key
        return key

    def _local_path(self, name: str) -> Path | None:
        return self.local_dir / f"{name}.json" if self.local_dir is not None else None

    def _local_copy(self, name: str, why: BaseException) -> bytes:
        """The record kept here when Redis last gave it (Redis is away now: ``why``)."""
        path = self._local_path(name)
        if path is None:
            raise DataKeyError(f"data key {name}: Redis unreachable ({why}) and no local copy "
                               "is kept (no local_dir)")
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise DataKeyError(
                f"data key {name}: Redis unreachable ({why}) and never read here before "
                f"({path} missing): start once with Redis up"
            ) from None

    def _keep_local_copy(self, name: str, raw: bytes | str) -> None:
        path = self._local_path(name)
        if path is None:
            return
        data = raw.encode() if isinstance(raw, str) else raw
        with contextlib.suppress(FileNotFoundError):
            if path.read_bytes() == data:
                return
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:  # mkstemp: mode 0600
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    async def names(self) -> list[str]:
        """Every data key stored in this key space, sorted."""
        pattern = _glob_escape(self.prefix + "keys:") + "*"
        found = [
            as_text(k)[len(self.prefix) + len("keys:"):]
            async for k in self._redis.scan_iter(match=pattern, count=100)
        ]
        return sorted(found)

    async def rotate(self) -> RotationReport:
        """Re-wrap every data key under the current master key; see the module docstring."""
        report = RotationReport(self.ring.current.version)
        for name in await self.names():
            redis_key = self._redis_key(name)
            while True:
                raw = await self._redis.get(redis_key)
                if raw is None:
                    break
                try:
                    record = _record(name, raw)
                    if record.master == self.ring.current.version:
                        report.current.append(name)
                        break
                    key = self._unwrap(name, raw)
                except PrivacyError as exc:
                    report.failed[name] = str(exc)
                    break
                new = self._wrap(name, key.version, key.key)
                if await self._cas(keys=[redis_key], args=[raw, new]):
                    report.rewrapped.append(name)
                    self._cache[name] = key
                    break
                # Changed meanwhile (another rotate): look again.
        return report

    async def check(self) -> CheckReport:
        """Whether every stored data key opens with this key ring."""
        report = CheckReport()
        for name in await self.names():
            raw = await self._redis.get(self._redis_key(name))
            if raw is None:
                continue
            try:
                self._unwrap(name, raw)
                report.opened[name] = _record(name, raw).master
            except PrivacyError as exc:
                report.failed[name] = str(exc)
        return report

    def _redis_key(self, name: str) -> str:
        if not _NAME.fullmatch(name):
            raise DataKeyError(f"data key name {name!r}: lower-case letters, digits and '-'")
        return f"{self.prefix}keys:{name}"

    def _wrap(self, name: str, version: int, key: bytes) -> str:
        master, wrapped = self.ring.wrap(key, _aad(name, version))
        return json.dumps(
            {"version": version, "master": master, "wrapped": base64.b64encode(wrapped).decode()},
            separators=(",", ":"),
        )

    def _unwrap(self, name: str, raw: bytes | str) -> DataKey:
        record = _record(name, raw)
        what = f"data key {name} (version {record.version}, {self._redis_key(name)})"
        try:
            key = self.ring.unwrap(record.master, record.wrapped, _aad(name, record.version), what)
        except MasterKeyError as exc:
            raise DataKeyError(str(exc)) from None
        return DataKey(name, record.version, key)


@dataclass(frozen=True)
class _Record:
    version: int
    master: str
    wrapped: bytes


def _record(name: str, raw: bytes | str) -> _Record:
    try:
        data = json.loads(raw)
        return _Record(
            int(data["version"]), str(data["master"]), base64.b64decode(data["wrapped"])
        )
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise DataKeyError(f"data key {name}: malformed record ({exc!r})") from None


def _aad(name: str, version: int) -> bytes:
    return f"hotline-data-key:{name}:{version}".encode()


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)
