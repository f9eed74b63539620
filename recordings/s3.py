"""Sealed recordings in an S3-compatible object store (AWS S3, MinIO, Ceph...), the
documented option to the directory (``storage.kind: s3`` in ``config/recordings.yaml``).

Written against the few calls of boto3's S3 client it needs (:class:`S3Client`), so it is
tested against a fake with boto3's answers, and boto3 (the ``s3`` extra) is imported only
when the service builds a real client (:func:`boto3_client`). Objects are
``<prefix><recording id>.hlr``; they are ciphertext only, like the directory's files.
"""

from __future__ import annotations

from typing import Any, Protocol

from recordings.schema import S3Settings
from recordings.storage import RecordingNotStored, check_recording_id

__all__ = ["ObjectStore", "S3Client", "boto3_client"]


class S3Client(Protocol):
    """The calls of ``boto3.client("s3")`` used here (keyword arguments as boto3 takes them)."""

    def put_object(self, *, Bucket: str, Key: str, Body: bytes) -> Any: ...

    def get_object(self, *, Bucket: str, Key: str) -> Any: ...

    def delete_object(self, *, Bucket: str, Key: str) -> Any: ...

    def head_object(self, *, Bucket: str, Key: str) -> Any: ...


class ObjectStore:
    """A :class:`recordings.storage.RecordingStorage` over an S3 bucket."""

    def __init__(self, client: S3Client, bucket: str, prefix: str = "recordings/") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def key_of(self, recording_id: str) -> str:
        return f"{self.prefix}{check_recording_id(recording_id)}.hlr"

    def put(self, recording_id: str, data: bytes) -> None:
        # A PUT is atomic in S3: the object appears whole or not at all.
        self.client.put_object(Bucket=self.bucket, Key=self.key_of(recording_id), Body=data)

    def get(self, recording_id: str) -> bytes:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key_of(recording_id))
        except Exception as exc:
            if _missing(exc):
                raise RecordingNotStored(
                    f"recording {recording_id}: not in s3://{self.bucket}/{self.prefix}"
                ) from None
            raise
        body: bytes = answer["Body"].read()
        return body

    def delete(self, recording_id: str) -> bool:
        key = self.key_of(recording_id)
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _missing(exc):
                return False
            raise
        self.client.delete_object(Bucket=self.bucket, Key=key)
        return True


def _missing(exc: Exception) -> bool:
    """botocore's ClientError for an absent object (``NoSuchKey``, or 404 for HEAD)."""
    error = getattr(exc, "response", {}).get("Error", {})
    return str(error.get("Code", "")) in ("NoSuchKey", "404", "NotFound")


def boto3_client(settings: S3Settings) -> ObjectStore:
    """The store over a real boto3 client (credentials from boto3's own sources)."""
    import boto3  # type: ignore[import-not-found, unused-ignore]  # the optional s3 extra

    client = boto3.client("s3", endpoint_url=settings.endpoint_url,
                          region_name=settings.region)
    return ObjectStore(client, settings.bucket, settings.prefix)
