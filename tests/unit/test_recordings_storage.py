"""Where sealed recordings are kept: a directory (private modes, whole files only) or an
S3-compatible bucket (against boto3's calls and answers)."""

from __future__ import annotations

import io
import stat

import pytest

from recordings.s3 import ObjectStore
from recordings.storage import DirectoryStore, RecordingNotStored, StorageUnavailable


def test_directory_store_put_get_delete(tmp_path):
    """Put, get and delete by id; files 0600 in 0700 directories; deleting twice says so."""
    store = DirectoryStore(tmp_path / "recordings")
    store.put("rec-1", b"sealed bytes")
    assert store.get("rec-1") == b"sealed bytes"
    path = store.path_of("rec-1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    store.put("rec-1", b"replaced whole")
    assert store.get("rec-1") == b"replaced whole"
    assert store.delete("rec-1") and not store.delete("rec-1")
    with pytest.raises(RecordingNotStored):
        store.get("rec-1")


def test_ids_that_could_escape_the_directory_are_refused(tmp_path):
    """A recording id is a file name: no separators, no leading dot."""
    store = DirectoryStore(tmp_path)
    for bad in ("../x", "a/b", ".hidden", "", "a b"):
        with pytest.raises(ValueError):
            store.put(bad, b"x")


class FakeS3:
    """boto3's S3 client as far as ObjectStore uses it, answering as boto3 does (a
    ``ClientError``-shaped exception with ``response['Error']['Code']``)."""

    class ClientError(Exception):
        def __init__(self, code: str, status: int = 400) -> None:
            super().__init__(code)
            self.response = {"Error": {"Code": code},
                             "ResponseMetadata": {"HTTPStatusCode": status}}

    class EndpointConnectionError(Exception):
        """botocore's: no connection to the endpoint."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.calls: list[str] = []

    def put_object(self, *, Bucket, Key, Body):
        self.calls.append(f"put {Bucket}/{Key}")
        self.objects[(Bucket, Key)] = bytes(Body)
        return {"ETag": '"x"'}

    def get_object(self, *, Bucket, Key):
        if (Bucket, Key) not in self.objects:
            raise self.ClientError("NoSuchKey")
        return {"Body": io.BytesIO(self.objects[(Bucket, Key)])}

    def head_object(self, *, Bucket, Key):
        if (Bucket, Key) not in self.objects:
            raise self.ClientError("404")
        return {}

    def delete_object(self, *, Bucket, Key, VersionId=None):
        self.calls.append(f"delete {Bucket}/{Key}" + (f"?{VersionId}" if VersionId else ""))
        self.objects.pop((Bucket, Key), None)
        return {}

    def list_object_versions(self, *, Bucket, Prefix, **marker):
        # An unversioned bucket: each object's one version is "null".
        return {"IsTruncated": False, "Versions": [
            {"Key": key, "VersionId": "null", "IsLatest": True}
            for (bucket, key) in self.objects if bucket == Bucket and key.startswith(Prefix)]}


def test_object_store_put_get_delete():
    """Objects ``<prefix><id>.hlr`` in the bucket; a missing one is RecordingNotStored;
    deleting says whether there was one; other errors go through."""
    s3 = FakeS3()
    store = ObjectStore(s3, "hotline-recordings", "rec/")
    store.put("rec-1", b"sealed")
    assert s3.calls == ["put hotline-recordings/rec/rec-1.hlr"]
    assert store.get("rec-1") == b"sealed"
    assert store.delete("rec-1") and not store.delete("rec-1")
    with pytest.raises(RecordingNotStored):
        store.get("rec-1")

    def denied(**_):
        raise FakeS3.ClientError("AccessDenied")

    s3.get_object = denied
    with pytest.raises(FakeS3.ClientError):
        store.get("rec-2")


def test_object_store_deletes_every_version_and_falls_back_without_the_versions_api():
    """On an unversioned bucket (every version "null") deleting is the plain DELETE; on a
    versioned one each version and delete marker of that key is deleted by id (other keys
    sharing the prefix untouched); where listing versions is denied or not implemented, the
    current object is deleted all the same."""
    s3 = FakeS3()
    store = ObjectStore(s3, "b", "rec/")
    store.put("rec-1", b"sealed")
    s3.calls.clear()
    assert store.delete("rec-1")
    assert s3.calls == ["delete b/rec/rec-1.hlr"]

    pages = [
        {"IsTruncated": True, "NextKeyMarker": "rec/rec-1.hlr", "NextVersionIdMarker": "v2",
         "Versions": [{"Key": "rec/rec-1.hlr", "VersionId": "v1"},
                      {"Key": "rec/rec-1.hlr", "VersionId": "v2"}]},
        {"IsTruncated": False,
         "Versions": [{"Key": "rec/rec-1.hlrx", "VersionId": "v9"}],
         "DeleteMarkers": [{"Key": "rec/rec-1.hlr", "VersionId": "m1"}]},
    ]
    asked = []

    def versioned(**kwargs):
        asked.append(kwargs)
        return pages[len(asked) - 1]

    s3.list_object_versions = versioned
    s3.calls.clear()
    assert store.delete("rec-1")
    assert asked[1]["KeyMarker"] == "rec/rec-1.hlr" and asked[1]["VersionIdMarker"] == "v2"
    assert s3.calls == [f"delete b/rec/rec-1.hlr?{v}" for v in ("v1", "v2", "m1")]

    def denied(**_):
        raise FakeS3.ClientError("AccessDenied")

    s3.list_object_versions = denied
    store.put("rec-2", b"sealed")
    s3.calls.clear()
    assert store.delete("rec-2") and not store.delete("rec-2")
    assert s3.calls == ["delete b/rec/rec-2.hlr"]


def test_object_store_that_does_not_answer_is_unavailable():
    """The client's transport errors (no connection, a timeout) and the store's own 5xx
    answers are StorageUnavailable, a ConnectionError (the API's 503, a retry for the
    pipeline); a 4xx stays what it is, and a missing object stays RecordingNotStored."""
    s3 = FakeS3()
    store = ObjectStore(s3, "b", "rec/", transport_errors=(FakeS3.EndpointConnectionError,))

    def unreachable(**_):
        raise FakeS3.EndpointConnectionError("Could not connect to the endpoint URL")

    def slow_down(**_):
        raise FakeS3.ClientError("SlowDown", 503)

    s3.put_object = unreachable
    with pytest.raises(StorageUnavailable, match="put of recording rec-1") as away:
        store.put("rec-1", b"sealed")
    assert isinstance(away.value, ConnectionError)
    s3.get_object = slow_down
    with pytest.raises(StorageUnavailable, match="SlowDown"):
        store.get("rec-1")
    s3.list_object_versions = unreachable
    with pytest.raises(StorageUnavailable):
        store.delete("rec-1")
    s3.get_object = FakeS3().get_object
    with pytest.raises(RecordingNotStored):
        store.get("rec-1")
