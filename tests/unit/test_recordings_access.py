"""Audited access to recordings, through the library and the HTTP API: who may list and
play which recordings, the stated reason and the audit entry of every access, clear errors
for a tampered object, a wrong key and a wrong id, and the audio streamed from memory."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
from twisted.web.test.requesthelper import DummyRequest

from access import AccessDenied, Identity, Role
from api.app import build_api
from api.openapi import document
from api.routes import BinaryAnswer
from api.testing import (
    IDENTITIES,
    TEAMS,
    FakeAudit,
    FakeHealth,
    FakeRouter,
    FakeTokens,
    FakeWorkOrders,
    answer,
    run_now,
)
from api.web import ApiResource
from recordings.crypto import RecordingVault
from recordings.library import (
    RecordingLibrary,
    RecordingNotFound,
    RecordingUnreadable,
    Requester,
)
from recordings.testing import MemoryCatalog, MemoryStore, run_inline, sample_meta
from routing.core import RoutingConfig

MASTER = RecordingVault.new_master_key()
AUDIO = b"OggS" + bytes(range(256)) * 600  # > two 64 KiB chunks
NOW = 1234.5


class Desk:
    """A library over in-memory catalog and store, with the API's test teams
    (north: agent101, agent102; south: agent103)."""

    def __init__(self) -> None:
        self.catalog, self.store, self.audit = MemoryCatalog(), MemoryStore(), FakeAudit()
        self.vault = RecordingVault(MASTER)
        self.library = RecordingLibrary(
            catalog=self.catalog, storage=self.store, vault=lambda: self.vault,
            audit=self.audit, teams=TEAMS.get,
            members=lambda team: [a for a, t in TEAMS.items() if t == team],
            run_blocking=run_inline,
        )
        for n, agent in ((1, "agent101"), (2, "agent102"), (3, "agent103")):
            self.add(f"rec-{n}", agent, ended_at=1000.0 + n)

    def add(self, rid: str, agent: str, **changes) -> None:
        sealed = self.vault.seal(rid, AUDIO, f"c-{rid}")
        self.store.put(rid, sealed.ciphertext)
        run_now(self.catalog.add(sample_meta(
            rid, agent=agent, call_id=f"c-{rid}", sha256=hashlib.sha256(
                sealed.ciphertext).hexdigest(), wrapped_key=sealed.wrapped_key,
            master=sealed.master, size=len(sealed.ciphertext), **changes)))


def who(user: str, role: Role, team: str | None = None, reason: str = "QA review 2026-11"):
    return Requester(Identity(user, role, team), "192.0.2.7", NOW, reason)


QUALITY = who("quinn", Role.QUALITY)
SUPERVISOR = who("sam", Role.SUPERVISOR, "north")
AGENT = who("agent101", Role.AGENT, "north")
OPS = who("olga", Role.OPS)


def test_who_may_list_what():
    """Quality and ops list every recording; a supervisor their team's; an agent none,
    neither others' nor their own (no recordings:read)."""
    desk = Desk()
    ids = lambda found: [m.recording_id for m in found]  # noqa: E731
    assert ids(run_now(desk.library.list(QUALITY))) == ["rec-3", "rec-2", "rec-1"]
    assert ids(run_now(desk.library.list(OPS))) == ["rec-3", "rec-2", "rec-1"]
    assert ids(run_now(desk.library.list(SUPERVISOR))) == ["rec-2", "rec-1"]
    with pytest.raises(AccessDenied, match="team north"):
        run_now(desk.library.list(SUPERVISOR, agent="agent103"))
    with pytest.raises(AccessDenied, match="agent agent101 may not read recordings"):
        run_now(desk.library.list(AGENT))
    with pytest.raises(AccessDenied):
        run_now(desk.library.list(AGENT, agent="agent102"))


def test_who_may_play_what_and_every_access_is_audited_with_its_reason():
    """A supervisor plays a recording of their team, not of another; an agent plays none,
    not even learning whether an id exists; each access is one audit entry with the
    stated reason, written before the audio is handed out."""
    desk = Desk()
    playback = run_now(desk.library.open(SUPERVISOR, "rec-2"))
    assert b"".join(playback.chunks()) == AUDIO and len(list(playback.chunks())) == 3
    assert desk.audit.entries == [{
        "user": "sam", "role": "supervisor", "action": "recording.play",
        "obj": "recording:rec-2", "address": "192.0.2.7", "now": NOW,
        "reason": "QA review 2026-11", "details": None,
    }]
    with pytest.raises(AccessDenied, match="team north"):
        run_now(desk.library.open(SUPERVISOR, "rec-3"))
    with pytest.raises(AccessDenied):
        run_now(desk.library.open(AGENT, "rec-1"))
    with pytest.raises(AccessDenied):
        run_now(desk.library.open(AGENT, "rec-404"))
    assert len(desk.audit.entries) == 1  # refusals hand out nothing, so record nothing
    run_now(desk.library.metadata(QUALITY, "rec-3"))
    run_now(desk.library.list(QUALITY, call_id="c-rec-3"))
    assert [e["action"] for e in desk.audit.entries] == [
        "recording.play", "recording.read", "recording.list"]
    assert desk.audit.entries[-1]["details"] == {"call_id": "c-rec-3"}


def test_a_reason_is_required():
    """No stated reason (or a blank one), no access."""
    desk = Desk()
    for reason in ("", "  ", "x"):
        with pytest.raises(ValueError, match="stated reason"):
            run_now(desk.library.open(dataclasses.replace(QUALITY, reason=reason), "rec-1"))
    assert desk.audit.entries == []


def test_tampered_object_wrong_key_and_wrong_id_are_clear_errors():
    """An altered object (checksum), a ciphertext whose tag fails (checksum updated too),
    a vault of another master key, a missing object, an unknown id: each refused by name."""
    desk = Desk()
    altered = bytearray(desk.store.get("rec-1"))
    altered[-1] ^= 1
    desk.store.put("rec-1", bytes(altered))
    with pytest.raises(RecordingUnreadable, match="checksum"):
        run_now(desk.library.open(QUALITY, "rec-1"))
    meta = desk.catalog.records["rec-1"]
    desk.catalog.records["rec-1"] = dataclasses.replace(
        meta, sha256=hashlib.sha256(bytes(altered)).hexdigest())
    with pytest.raises(RecordingUnreadable, match="wrong key or altered"):
        run_now(desk.library.open(QUALITY, "rec-1"))
    desk.vault = RecordingVault(RecordingVault.new_master_key())
    with pytest.raises(RecordingUnreadable, match="does not open with the master key"):
        run_now(desk.library.open(QUALITY, "rec-2"))
    desk.store.delete("rec-3")
    with pytest.raises(RecordingUnreadable, match="missing"):
        run_now(desk.library.open(QUALITY, "rec-3"))
    with pytest.raises(RecordingNotFound):
        run_now(desk.library.open(QUALITY, "rec-404"))


def test_legal_hold_and_release_are_ops_only_and_audited():
    """Ops put a recording on hold (the reason kept with it) and release it, each audited;
    quality and supervisors may not."""
    desk = Desk()
    held = run_now(desk.library.hold(dataclasses.replace(OPS, reason="case 2026-77"), "rec-1"))
    assert held.legal_hold and held.hold_reason == "case 2026-77"
    released = run_now(desk.library.release(OPS, "rec-1"))
    assert not released.legal_hold and released.hold_reason == ""
    assert [(e["action"], e["reason"]) for e in desk.audit.entries] == [
        ("recording.hold", "case 2026-77"), ("recording.release", "QA review 2026-11")]
    for someone in (QUALITY, SUPERVISOR):
        with pytest.raises(AccessDenied, match="recordings:hold"):
            run_now(desk.library.hold(someone, "rec-1"))
    with pytest.raises(RecordingNotFound):
        run_now(desk.library.hold(OPS, "rec-404"))


# --- HTTP -----------------------------------------------------------------------------------


def api_of(desk: Desk):
    config = RoutingConfig({}, {}, {})
    return build_api(router=FakeRouter(config), workorders_store=FakeWorkOrders({}),
                     health_source=FakeHealth(), authenticator=FakeTokens(IDENTITIES),
                     audit=desk.audit, clock=lambda: NOW, teams=TEAMS.get,
                     recordings=desk.library)


REASON = "reason=customer%20complaint%2017"


def test_http_list_metadata_and_audio():
    """``GET /api/recordings`` lists, ``/{id}`` shows the metadata (never the wrapped key),
    ``/{id}/audio`` answers the decrypted audio in chunks with its media type."""
    desk = Desk()
    api = api_of(desk)
    listed = answer(api, "GET", f"/api/recordings?{REASON}&limit=2", token="tok-quality")
    assert listed.status == 200 and [r["id"] for r in listed.body] == ["rec-3", "rec-2"]
    shown = answer(api, "GET", f"/api/recordings/rec-1?{REASON}", token="tok-supervisor-north")
    assert shown.status == 200 and shown.body["agent"] == "agent101"
    assert "wrapped_key" not in shown.body and shown.body["paused"][0]["reason"] == (
        "sensitive-step")
    audio = answer(api, "GET", f"/api/recordings/rec-1/audio?{REASON}", token="tok-quality")
    assert audio.status == 200 and isinstance(audio.body, BinaryAnswer)
    assert (audio.body.media_type, audio.body.length) == ("audio/ogg; codecs=opus", len(AUDIO))
    assert b"".join(audio.body.chunks) == AUDIO
    assert desk.audit.entries[-1]["reason"] == "customer complaint 17"


def test_http_errors_have_stable_ids():
    """No reason, or one with a line break (it goes into the audit log): 400; an agent:
    403; an unknown id: 404 ``recording-not-found``; a tampered object: 422
    ``recording-unreadable``; a malformed id: 400; hold by quality: 403."""
    desk = Desk()
    api = api_of(desk)
    cases = [
        ("GET", "/api/recordings/rec-1/audio", "tok-quality", 400, "bad-request"),
        ("GET", "/api/recordings/rec-1?reason=a%0d%0aforged", "tok-quality", 400,
         "bad-request"),
        ("GET", f"/api/recordings?{REASON}", "tok-agent101", 403, "forbidden"),
        ("GET", f"/api/recordings/rec-1/audio?{REASON}", "tok-agent101", 403, "forbidden"),
        ("GET", f"/api/recordings/rec-9/audio?{REASON}", "tok-quality", 404,
         "recording-not-found"),
        ("GET", f"/api/recordings/..%2Fetc/audio?{REASON}", "tok-quality", 400, "bad-request"),
        ("POST", f"/api/recordings/rec-1/hold?{REASON}", "tok-quality", 403, "forbidden"),
        ("GET", f"/api/recordings?{REASON}", None, 401, "unauthenticated"),
    ]
    for method, path, token, status, error_id in cases:
        response = answer(api, method, path, token=token)
        assert (response.status, response.body["id"]) == (status, error_id), path
    desk.store.put("rec-1", b"HLR1" + b"\0" * 40)
    response = answer(api, "GET", f"/api/recordings/rec-1/audio?{REASON}", token="tok-quality")
    assert (response.status, response.body["id"]) == (422, "recording-unreadable")


def test_http_hold_and_release():
    """Ops hold and release through the API; the answer is the metadata."""
    desk = Desk()
    api = api_of(desk)
    held = answer(api, "POST", f"/api/recordings/rec-2/hold?{REASON}", token="tok-ops")
    assert held.status == 200 and held.body["legal_hold"] is True
    released = answer(api, "POST", f"/api/recordings/rec-2/release?{REASON}", token="tok-ops")
    assert released.status == 200 and released.body["legal_hold"] is False


def test_the_web_shell_streams_the_audio_from_memory():
    """twisted.web writes the audio as its chunks, with length, media type and no-store."""
    desk = Desk()
    request = DummyRequest([b"api", b"recordings", b"rec-1", b"audio"])
    request.args = {b"reason": [b"complaint 17"]}
    request.requestHeaders.setRawHeaders(b"authorization", [b"Bearer tok-quality"])
    from twisted.internet import defer

    ApiResource(api_of(desk), run=defer.ensureDeferred).render(request)
    assert request.finished and request.responseCode == 200
    assert b"".join(request.written) == AUDIO and len(request.written) == 3
    headers = request.responseHeaders
    assert headers.getRawHeaders(b"content-type") == [b"audio/ogg; codecs=opus"]
    assert headers.getRawHeaders(b"content-length") == [str(len(AUDIO)).encode()]
    assert headers.getRawHeaders(b"cache-control") == [b"no-store"]


def test_openapi_documents_the_recordings_routes():
    """The document lists the five routes with their permission, audit action and the
    audio answer as binary."""
    desk = Desk()
    paths = document(api_of(desk).table.routes)["paths"]
    assert paths["/api/recordings"]["get"]["x-audit"] == "recording.list"
    audio = paths["/api/recordings/{recording_id}/audio"]["get"]
    assert audio["x-permission"] == "recordings:read"
    assert audio["responses"]["200"]["content"] == {
        "audio/ogg": {"schema": {"type": "string", "format": "binary"}}}
    assert "422" in audio["responses"]
    assert paths["/api/recordings/{recording_id}/hold"]["post"]["x-permission"] == (
        "recordings:hold")
    json.dumps(paths)
