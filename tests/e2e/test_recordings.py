"""A recorded call through the real Asterisk: MixMonitor on the caller's channel across a RONA
retry, the caller's spoken sentence in the decrypted recording, the card digits of a
sensitive step muted through AMI, and nothing readable on disk.

The caller (caller-sim) presses 3 (a fault), the first network agent does not answer, the
second does; the caller says a synthesized sentence while connected. When the agent hangs up,
the queue's after-agent menu offers payment by card: the test presses 1 and then keys a card
number through AMI (PlayDTMF, received on the caller's channel) while the recording is muted.
"""

from __future__ import annotations

import io
import socket
import time
from datetime import datetime
from pathlib import Path

import pytest
from pydub import AudioSegment
from pydub.silence import detect_nonsilent
from test_speech_calls import spoken

from ivr.speech.engines import PocketsphinxEngine
from ivr.speech.schema import load_intents
from privacy.keys import KeyRing
from recordings.crypto import RecordingVault
from recordings.metadata import RecordingMeta
from testbed.asterisk import Asterisk
from testbed.checks import call_gone, events, first_event, wait_for
from testbed.service import CONFIG
from testbed.stack import TESTBED_MASTER_KEY

pytestmark = pytest.mark.e2e

SENTENCE = "My internet is down and I have no signal since this morning."
CARD = "4111111111111111"


def ami(asterisk: Asterisk, *actions: dict[str, str]) -> list[str]:
    """Log in to AMI with the service's user (manager.conf) and send ``actions``."""
    with socket.create_connection(("127.0.0.1", 5038), timeout=10) as conn:
        conn.recv(1024)  # banner
        replies = []
        for action in ({"Action": "Login", "Username": "hotline",
                        "Secret": asterisk.ami_secret}, *actions, {"Action": "Logoff"}):
            conn.sendall(("".join(f"{k}: {v}\r\n" for k, v in action.items()) + "\r\n")
                         .encode())
            reply = b""
            while b"\r\n\r\n" not in reply:
                reply += conn.recv(4096)
            replies.append(reply.decode(errors="replace"))
        return replies


def key_in(asterisk: Asterisk, channel: str, digits: str) -> None:
    """The caller presses ``digits`` (DTMF received on the caller's channel)."""
    for digit in digits:
        (_, reply, _) = ami(asterisk, {"Action": "PlayDTMF", "Channel": channel,
                                       "Digit": digit, "Duration": "120", "Receive": "true"})
        assert "Success" in reply, reply
        time.sleep(0.15)


def decrypted(meta: RecordingMeta, sealed: bytes) -> AudioSegment:
    """The stored object opened with the testbed's master key: the stereo audio at 8 kHz."""
    vault = RecordingVault.from_keyring(
        KeyRing.load(environ={"HOTLINE_MASTER_KEY": TESTBED_MASTER_KEY}))
    audio = vault.open(meta.sealed(sealed))
    return AudioSegment.from_file(io.BytesIO(audio), format="ogg").set_frame_rate(8000)


def words_in(leg: AudioSegment, first: int, last: int) -> list[str]:
    """What the project's recognizer hears in ``leg`` from ``first`` to ``last`` ms: only
    where someone speaks (the rest of a leg is silence, which the decoder would fill with
    guesses), as the live endpointer hands speech to it."""
    engine = PocketsphinxEngine.load(load_intents(CONFIG / "intents.yaml"))
    recognizer = engine.recognizer(8000)
    pcm = leg[max(0, first - 200):last + 200].set_sample_width(2).raw_data
    for at in range(0, len(pcm), 3200):
        recognizer.accept(pcm[at:at + 3200])
    heard = recognizer.final().text.lower().split()
    recognizer.close()
    return heard


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def channel_name(asterisk: Asterisk, channel_id: str) -> str:
    (name,) = [c["name"] for c in asterisk.channels() if c.get("id") == channel_id]
    return str(name)


def agent_gone(asterisk: Asterisk, agent: str) -> bool:
    return not any(str(c.get("name", "")).startswith(f"PJSIP/{agent}")
                   for c in asterisk.channels())


def test_recorded_call_rona_sentence_and_muted_card_digits(
    hotline, agents, caller, asterisk, db, tmp_path
) -> None:
    """One recording across a RONA retry; the sentence, said while connected to the agent,
    is recognizable in the decrypted caller channel; the card step is a silent interval
    of the right length (no tones); the stored object is not audio."""
    agents("agent103", behaviour="no-answer")
    agents("agent104", answer_after=0.5, hold_for=30.0)
    raw_dir = asterisk.inside(asterisk.run_dir / "spool" / "monitor" / "hotline")
    service = hotline(agents=("agent103", "agent104"), overrides={
        "recordings.yaml": {"capture": {"raw_dir": raw_dir, "queues": {
            "faults": {"after_agent_menu": "after-billing"}}}}})
    words = spoken(asterisk, SENTENCE)
    # Connected at most ~21 s after the key (notice, 6 s RONA, the next offer), until 30 s
    # later: the sentence, 24 s after the key, falls inside (checked below on the file).
    call_id = caller(f"w2|d3|w24|p{words}")
    start = first_event(db, call_id, "RECORDSTART", timeout=30)
    recording_id = start["recording_id"]
    name = channel_name(asterisk, call_id)
    wait_for(lambda: not agent_gone(asterisk, "agent104"), 30, "agent104 to answer")
    wait_for(lambda: agent_gone(asterisk, "agent104"), 40, "agent104 to hang up")
    time.sleep(1.0)  # the offer prompt plays
    key_in(asterisk, name, "1")
    first_event(db, call_id, "RECORDPAUSE", timeout=15)
    key_in(asterisk, name, CARD + "#")
    first_event(db, call_id, "RECORDRESUME", timeout=30)
    call_gone(asterisk, call_id, timeout=30)
    stored = first_event(db, call_id, "RECORDSTORED", timeout=60)
    assert stored["recording_id"] == recording_id

    kinds = [e["kind"] for e in events(db, call_id)]
    assert kinds.count("RECORDSTART") == 1 and "RECORDMISSING" not in kinds
    assert "RECORDSHORT" not in kinds
    assert db.smembers(f"hotline:rec:by-call:{call_id}") == {recording_id}

    storage = Path(service.env["HOTLINE__SPOOL_DIR"]) / "recordings"
    meta = RecordingMeta.from_hash(recording_id, db.hgetall(f"hotline:rec:{recording_id}"))
    assert meta.agent == "agent104" and meta.talk_seconds > 8
    (sealed_path,) = storage.rglob(f"{recording_id}.hlr")
    sealed = sealed_path.read_bytes()
    # On disk: not audio (no container magic, undecodable), no raw leg left behind.
    assert sealed[:4] == b"HLR1" and b"OggS" not in sealed and b"RIFF" not in sealed
    with pytest.raises(Exception):  # noqa: B017 - any decoder error: it is not audio
        AudioSegment.from_file(io.BytesIO(sealed))
    assert not list((Path(asterisk.root) / raw_dir.lstrip("/")).glob(f"{recording_id}*"))

    stereo = decrypted(meta, sealed)
    caller_leg, agent_leg = stereo.split_to_mono()
    assert stereo.duration_seconds >= meta.talk_seconds

    # The sentence, recognized on the caller's channel by the project's recognizer.
    spans = detect_nonsilent(caller_leg, min_silence_len=700, silence_thresh=-45)
    assert spans, "the caller's channel is silent"
    first, last = max(spans, key=lambda span: span[1] - span[0])
    connected = [epoch(e["time"]) - meta.started_at for e in events(db, call_id)
                 if e["kind"] in ("CONNECT", "COMPLETEAGENT")]
    assert connected[0] * 1000 < first and last < connected[1] * 1000, (connected, spans)
    heard = words_in(caller_leg, first, last)
    said = {"internet", "down", "signal", "morning", "no"}
    assert "internet" in heard and len(said & set(heard)) >= 3, (heard, spans)

    # The card step: a paused interval, silent on both channels, its time kept in the file.
    (paused,) = [p for p in meta.paused if p.reason == "sensitive-step"]
    assert paused.end - paused.start > 2.0  # 17 keys were pressed inside it
    # Wall clock to file time: within a few hundred ms (the AGI and AMI round trips).
    begin_ms = int((paused.start - meta.started_at) * 1000) + 500
    end_ms = int((paused.end - meta.started_at) * 1000) - 500
    assert end_ms < len(stereo), (meta, len(caller_leg), len(agent_leg), spans,
                                  detect_nonsilent(agent_leg, 700, -45), events(db, call_id))
    for leg in (caller_leg, agent_leg):
        # Silence through the lossy codec: no energy (a DTMF tone or a voice is -20 dBFS or
        # louder), only the codec's faint residue.
        muted = leg[begin_ms:end_ms]
        assert muted.dBFS < -55 and muted.max_dBFS < -30, (
            muted.dBFS, muted.max_dBFS, begin_ms, end_ms,
            detect_nonsilent(leg[begin_ms - 3000:end_ms + 3000], 200, -50))
    assert not any(ch.isdigit() for ch in " ".join(heard))
