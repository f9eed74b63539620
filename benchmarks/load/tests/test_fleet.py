"""The fleet's own parts without a phone: SIPp's log, joining it with the media, and what
a caller's media endpoint sends (silence, keys, speech) and when."""

from __future__ import annotations

import asyncio

import pytest

from benchmarks.load.audio import PCMU, TELEPHONE_EVENT, parse_rtp, rtp_header
from benchmarks.load.fleet import outcomes_from, parse_sipp_log, rtp_address
from benchmarks.load.media import SILENCE, CallerMedia
from benchmarks.load.mix import CallerPlan, Sentence

LOG = """\
INVITE|load-s-0|1-2@127.0.0.1|1800000000.000000|250000.000000
ANSWERED|load-s-0|1-2@127.0.0.1|1800000000|300000
HANGUP|load-s-0|1-2@127.0.0.1|1800000020|0|remote
FAILED|load-s-1|3-2@127.0.0.1|1800000001|0|refused
garbage line
"""


class SentTo(asyncio.DatagramTransport):
    """A transport that keeps what is sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.sent_to: list[object] = []

    def sendto(self, data: bytes, addr: object = None) -> None:  # type: ignore[override]
        self.sent.append(data)
        self.sent_to.append(addr)

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 40000) if name == "sockname" else default

    def close(self) -> None:
        pass


def loud_packet(seq: int) -> bytes:
    return rtp_header(PCMU, seq, seq * 160, 99) + b"\x10" * 160  # mu-law 0x10: loud


def test_sipp_log_lines() -> None:
    """Each scenario log line becomes an event with its wall-clock time; others are skipped."""
    lines = parse_sipp_log(LOG)
    assert [(line.event, line.tag) for line in lines] == [
        ("INVITE", "load-s-0"), ("ANSWERED", "load-s-0"), ("HANGUP", "load-s-0"),
        ("FAILED", "load-s-1")]
    assert lines[0].at == 1800000000.25 and lines[2].detail == "remote"


def test_keys_follow_the_first_prompt() -> None:
    """Nothing is sent before Asterisk's first packet; then silence each tick; a key is
    sent as RFC 4733 packets once its time after the first audible packet has come."""
    plan = CallerPlan(0, "keys", "load-s-0", keys=((2.5, "3"),))
    media = CallerMedia(plan)
    transport = SentTo()
    media.connection_made(transport)
    media.tick(0.0)
    assert transport.sent == []
    media.answered(("127.0.0.1", 10000), 0.0)
    media.datagram_received(loud_packet(1), ("127.0.0.1", 10000))
    assert media.heard_at is not None
    heard = media.heard_at
    media.tick(heard + 1.0)
    assert transport.sent[-1][12:] == SILENCE
    media.tick(heard + 2.6)
    sent = parse_rtp(transport.sent[-1], 0)
    assert sent is not None and sent.payload_type == TELEPHONE_EVENT and sent.marker
    assert media.keys_sent == [(heard + 2.6, "3")]


def test_the_caller_sends_from_the_answer_on() -> None:
    """Like a phone, a caller sends silence to Asterisk's RTP address from the SDP as soon as
    the call is answered, before Asterisk sends anything (Answer() waits up to 500 ms for the
    caller's first packet); the first packet's time is kept, and keys still wait for the
    welcome."""
    plan = CallerPlan(0, "keys", "load-s-0", keys=((0.5, "3"),))
    media = CallerMedia(plan)
    transport = SentTo()
    media.connection_made(transport)
    media.answered(("127.0.0.1", 12000), 10.0)
    assert media.peer == ("127.0.0.1", 12000) and media.answered_at == 10.0
    media.tick(10.02)
    media.tick(10.6)
    assert [sent[12:] for sent in transport.sent] == [SILENCE, SILENCE]
    assert media.first_sent_at == 10.02 and media.keys_sent == []


def test_an_answer_without_sdp_waits_for_asterisks_first_packet() -> None:
    """When SIPp could not read Asterisk's RTP address the caller stays silent until
    Asterisk's first packet names it."""
    media = CallerMedia(CallerPlan(0, "keys", "load-s-0"))
    transport = SentTo()
    media.connection_made(transport)
    media.answered(None, 10.0)
    media.tick(10.02)
    assert transport.sent == [] and media.first_sent_at is None
    media.datagram_received(loud_packet(1), ("127.0.0.1", 10000))
    assert media.peer == ("127.0.0.1", 10000)
    media.tick(10.04)
    assert len(transport.sent) == 1


def test_a_stream_meant_for_another_call_is_not_heard_nor_answered() -> None:
    """Asterisk still sending from a session of an ended call to the port this caller got
    again: before the answer and after it, those packets are not heard, and the caller
    sends to the address the SDP names (before, the first stale packet became the peer and
    the caller's audio and keys went where Asterisk never heard them)."""
    media = CallerMedia(CallerPlan(0, "keys", "load-s-0", keys=((2.5, "3"),)))
    transport = SentTo()
    media.connection_made(transport)
    stale, asterisk = ("127.0.0.1", 17000), ("127.0.0.1", 12000)
    media.datagram_received(loud_packet(1), stale)
    media.answered(asterisk, 10.0)
    assert media.peer == asterisk and media.packets == [] and media.heard_at is None
    media.datagram_received(loud_packet(2), stale)
    assert media.packets == []
    media.datagram_received(loud_packet(3), asterisk)
    assert len(media.packets) == 1 and media.heard_at is not None
    media.tick(media.heard_at + 0.02)
    assert transport.sent_to == [asterisk]


def test_rtp_address_of_an_answered_line() -> None:
    """The ANSWERED line's ``host:port`` is Asterisk's RTP address; empty SIPp variables
    (no SDP read) give None."""
    assert rtp_address("127.0.0.1:14020") == ("127.0.0.1", 14020)
    assert rtp_address(":") is None and rtp_address("") is None


def test_speech_end_is_the_last_voiced_frame() -> None:
    """A speaker sends the sentence's frames and marks the speech end at its last audible
    frame, not at the line noise after it."""
    sentence = Sentence("my internet is down", "fault")
    plan = CallerPlan(0, "speak", "load-s-0", sentence=sentence)
    media = CallerMedia(plan, speech=[b"\x10" * 160, b"\x10" * 160, SILENCE, SILENCE])
    media.connection_made(SentTo())
    media.answered(("127.0.0.1", 10000), 0.0)
    media.datagram_received(loud_packet(1), ("127.0.0.1", 10000))
    heard = media.heard_at
    assert heard is not None
    for i in range(6):
        media.tick(heard + 5.0 + 0.02 * i)
    assert media.speech_started_at == heard + 5.0
    assert media.speech_end_at == heard + 5.02


def test_a_speaker_answers_the_confirmation_after_their_words() -> None:
    """The words go over the speech prompt, which the hotline confirms ("Press 1 if right"):
    the speaker presses 1 four seconds after their last frame."""
    sentence = Sentence("my internet is down", "fault")
    plan = CallerPlan(0, "speak", "load-s-0", sentence=sentence)
    media = CallerMedia(plan, speech=[b"\x10" * 160] * 50)  # 1 s of words
    media.connection_made(SentTo())
    media.answered(("127.0.0.1", 10000), 0.0)
    media.datagram_received(loud_packet(1), ("127.0.0.1", 10000))
    heard = media.heard_at
    assert heard is not None
    t = heard + 5.0
    while t < heard + 11.0:
        media.tick(t)
        t += 0.02
    assert [key for _at, key in media.keys_sent] == ["1"]
    assert media.keys_sent[0][0] == pytest.approx(heard + 5.0 + 1.0 + 4.0, abs=0.05)


def test_outcomes_join_log_and_media() -> None:
    """The SIPp times and the media's audio analysis end up on one outcome per plan; a
    refused INVITE is a set-up failure."""
    plans = [CallerPlan(0, "keys", "load-s-0", keys=((2.5, "1"),)),
             CallerPlan(1, "keys", "load-s-1")]
    media = CallerMedia(plans[0])
    media.connection_made(SentTo())
    media.answered(("127.0.0.1", 10000), 0.0)
    media.datagram_received(loud_packet(1), ("127.0.0.1", 10000))
    outs = outcomes_from(plans, parse_sipp_log(LOG), {"load-s-0": media})
    assert outs[0].invite_at == 1800000000.25 and outs[0].hung_up_by == "remote"
    assert outs[0].first_prompt_at == media.heard_at and outs[0].packets == 1
    assert outs[0].first_packet_at == media.heard_at
    assert outs[1].hung_up_by == "refused" and outs[1].set_up_failed


def test_owed_dead_air_leaves_out_the_callers_sentence_and_the_conversation() -> None:
    """Dead air counts from the first prompt to the agent's answer, not while the caller
    speaks (nobody talks over them) nor during the conversation."""
    from benchmarks.load.audio import Packet
    from benchmarks.load.fleet import CallOutcome

    def loud(at: float) -> Packet:
        return Packet(at, int(at * 50), int(at * 8000), 1, False, PCMU, 8000)

    out = CallOutcome(0, "speak", "load-s-0", "fault", first_prompt_at=0.0, ended_at=60.0)
    # prompts 0-5 s, the caller speaks 5-8 s (quiet line), a prompt at 9 s, agent at 12 s
    out.audio = [loud(t / 50) for t in range(0, 250)] + [loud(9 + t / 50) for t in range(50)]
    out.speech_end_at, out.speech_s = 8.0, 3.0
    out.connected_at = 12.0
    ((start, stop),) = out.owed_dead_air()
    assert start == pytest.approx(10.0) and stop == 12.0
    out.connected_at = None
    ((start, stop),) = out.owed_dead_air()
    assert start == pytest.approx(10.0) and stop == 60.0
