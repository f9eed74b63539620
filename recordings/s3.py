"""Sealed recordings in an S3-compatible object store (AWS S3, MinIO, Ceph...), the
documented option to the directory (``storage.kind: s3`` in ``config/recordings.yaml``).

Written against the few calls of boto3's S3 client it needs (:class:`S3Client`), so it is
unit-tested against a fake with boto3's answers and integration-tested against moto's S3
server with the real boto3 client; boto3 (the ``s3`` extra) is imported only when the service
builds a real client (:func:`boto3_client`). Objects are ``<prefix><recording id>.hlr``; they
are ciphertext only, like the directory's files.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any, Protocol

from recordings.schema import S3Settings
from recordings.storage import RecordingNotStored, StorageUnavailable, check_recording_id

__all__ = ["ObjectStore", "S3Client", "boto3_client"]

log = logging.getLogger(__name__)

# A store that has no versions API, or credentials that may not list versions: deleting
# falls back to the plain DELETE of the current object.
_NO_VERSIONS = ("NotImplemented", "501", "MethodNotAllowed", "405", "AccessDenied", "403")


class S3Client(Protocol):
    """The calls of ``boto3.client("s3")`` used here (keyword arguments as boto3 takes them)."""

    def put_object(self, *, Bucket: str, Key: str, Body: bytes) -> Any: ...

    def get_object(self, *, Bucket: str, Key: str) -> Any: ...

    def delete_object(self, *, Bucket: str, Key: str, **version: str) -> Any: ...

    def head_object(self, *, Bucket: str, Key: str) -> Any: ...

    def list_object_versions(self, *, Bucket: str, Prefix: str, **marker: str) -> Any: ...


class ObjectStore:
    """A :class:`recordings.storage.RecordingStorage` over an S3 bucket.

    ``transport_errors``: the client's exceptions for a store that does not answer
    (botocore's connection and HTTP client errors, :func:`boto3_client`); they, and the
    store's own 5xx answers, become :class:`StorageUnavailable`."""

    def __init__(self, client: S3Client, bucket: str, prefix: str = "recordings/",
                 transport_errors: tuple[type[Exception], ...] = ()) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.transport_errors = transport_errors

    def key_of(self, recording_id: str) -> str:
        return f"{self.prefix}{check_recording_id(recording_id)}.hlr"

    def put(self, recording_id: str, data: bytes) -> None:
        # A PUT is atomic in S3: the object appears whole or not at all.
        key = self.key_of(recording_id)
        with self._answering("put", recording_id):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get(self, recording_id: str) -> bytes:
        key = self.key_of(recording_id)
        with self._answering("get", recording_id):
            try:
                answer = self.client.get_object(Bucket=self.bucket, Key=key)
            except Exception as exc:
                if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                    raise RecordingNotStored(
                        f"recording {recording_id}: not in s3://{self.bucket}/{self.prefix}"
                    ) from None
                raise
            body = answer["Body"]
            try:
                data: bytes = body.read()
            finally:
                body.close()
        return data

    def delete(self, recording_id: str) -> bool:
        """Every stored version of the object: on a versioned bucket a plain DELETE only
        hides the ciphertext behind a delete marker (and each retry or overwrite left a
        version of its own), so each version and marker is removed by its id."""
        key = self.key_of(recording_id)
        with self._answering("delete", recording_id):
            return self._delete_versions(key, recording_id)

    @contextlib.contextmanager
    def _answering(self, action: str, recording_id: str) -> Iterator[None]:
        try:
            yield
        except StorageUnavailable:
            raise
        except Exception as exc:
            if isinstance(exc, self.transport_errors) or _status(exc) >= 500:
                raise StorageUnavailable(
                    f"s3://{self.bucket}: {action} of recording {recording_id} failed, the "
                    f"store did not answer: {type(exc).__name__}: {exc}") from exc
            raise

    def _delete_versions(self, key: str, recording_id: str) -> bool:
        try:
            versions, markers = self._versions_of(key)
        except Exception as exc:
            if _code(exc) not in _NO_VERSIONS:
                raise
            log.warning("s3://%s: cannot list object versions (%s); deleting the current "
                        "object of %s only", self.bucket, _code(exc), recording_id)
            return self._delete_current(key)
        if all(version == "null" for version in versions + markers):
            # An unversioned bucket: the plain DELETE removes it (and needs no more rights).
            return self._delete_current(key) if versions else False
        for version in versions + markers:
            self.client.delete_object(Bucket=self.bucket, Key=key, VersionId=version)
        return bool(versions)

    def _delete_current(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                return False
            raise
        self.client.delete_object(Bucket=self.bucket, Key=key)
        return True

    def _versions_of(self, key: str) -> tuple[list[str], list[str]]:
        """The version ids of ``key``'s objects and of its delete markers, every page."""
        versions: list[str] = []
        markers: list[str] = []
        page: dict[str, str] = {}
        while True:
            answer = self.client.list_object_versions(Bucket=self.bucket, Prefix=key, **page)
            versions += [v["VersionId"] for v in answer.get("Versions", []) if v["Key"] == key]
            markers += [m["VersionId"] for m in answer.get("DeleteMarkers", [])
                        if m["Key"] == key]
            if not answer.get("IsTruncated"):
                return versions, markers
            page = {"KeyMarker": answer["NextKeyMarker"],
                    "VersionIdMarker": answer["NextVersionIdMarker"]}


def _code(exc: Exception) -> str:
    """botocore's ClientError code (``NoSuchKey``, ``404`` for HEAD...); "" for others."""
    error = getattr(exc, "response", {}).get("Error", {})
    return str(error.get("Code", ""))


def _status(exc: Exception) -> int:
    """The HTTP status of a ClientError's answer (0 for other exceptions)."""
    meta = getattr(exc, "response", {}).get("ResponseMetadata", {})
    return int(meta.get("HTTPStatusCode", 0) or 0)


def boto3_client(settings: S3Settings, *, connect_timeout: float = 5.0,
                 read_timeout: float = 30.0, attempts: int = 3) -> ObjectStore:
    """The store over a real boto3 client (credentials from boto3's own sources).

    botocore's defaults (60 s to connect, 60 s per read, five attempts) would hold a worker
    thread for minutes on a store that accepts connections and never answers; these bound a
    put or get to well under two minutes, after which the pipeline keeps the recording in
    its retry area."""
    # The optional s3 extra, untyped (import-untyped), or absent (import-not-found).
    import boto3  # type: ignore[import-untyped, import-not-found, unused-ignore]
    import botocore.exceptions as boto_errors  # type: ignore[import-untyped, import-not-found, unused-ignore]
    from botocore.config import Config  # type: ignore[import-untyped, import-not-found, unused-ignore]

    config = Config(connect_timeout=connect_timeout, read_timeout=read_timeout,
                    retries={"total_max_attempts": attempts, "mode": "standard"})
    client = boto3.client("s3", endpoint_url=settings.endpoint_url,
                          region_name=settings.region, config=config)
    return ObjectStore(client, settings.bucket, settings.prefix,
                       transport_errors=(boto_errors.ConnectionError, boto_errors.HTTPClientError))
