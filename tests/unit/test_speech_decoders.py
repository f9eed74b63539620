"""The decoder worker's loop (ivr.speech.decoders.serve), over in-memory pipes."""

from __future__ import annotations

import io

from ivr.speech.decoders import _read, _write, decode_stream, encode, serve
from ivr.speech.engines import Transcript

FAKE = "ivr.speech.testing:FakeEngine"


def run(*requests: object, now: float = 0.0) -> list[object]:
    """Feed ``requests`` to the loop (its clock reading ``now``), return every reply."""
    inbox = io.BytesIO()
    for request in requests:
        _write(inbox, request)
    inbox.seek(0)
    outbox = io.BytesIO()
    serve(inbox, outbox, clock=lambda: now)
    outbox.seek(0)
    replies = []
    while (reply := _read(outbox)) is not None:
        replies.append(reply)
    return replies


def test_a_worker_loads_its_engine_and_serves_recognizers_by_id() -> None:
    """Loaded: its name and model; then two recognizers, fed and finished by their ids, each
    with its own transcript; closing answers too."""
    replies = run(
        ("load", FAKE, (["my bill is wrong", "no signal"],)),
        ("open", 1, None, 8000, None), ("open", 2, None, 8000, ["signal"]),
        ("accept", 1, None, b"\0" * 320), ("final", 1, None), ("final", 2, None),
        ("close", 1, None), ("close", 2, None),
    )
    assert replies == [
        ("ok", ("fake", "fake")), ("ok", None), ("ok", None), ("ok", None),
        ("ok", Transcript("my bill is wrong", 0.9, "fake", "fake")),
        ("ok", Transcript("no signal", 0.9, "fake", "fake")), ("ok", None), ("ok", None),
    ]


def test_an_error_answers_that_request_and_the_worker_goes_on() -> None:
    """A recognizer id it does not know, an unknown request: each answered with the error,
    and the next request is served."""
    replies = run(("load", FAKE, ([""],)), ("final", 9, None), ("dance", 1, None),
                  ("open", 1, None, 8000, None))
    assert replies[1][0] == "error" and "KeyError" in replies[1][1]
    assert replies[2] == ("error", "ValueError: unknown request 'dance'")
    assert replies[3] == ("ok", None)


def test_an_engine_that_does_not_load_is_reported_and_the_worker_ends() -> None:
    """The load's error is the reply (the service raises it as EngineLoadError at start);
    nothing after it is served."""
    replies = run(("load", "ivr.speech.engines:model_directory", ("package:no_such_model",)),
                  ("open", 1, None, 8000, None))
    assert len(replies) == 1 and replies[0][0] == "load-error"
    assert "no_such_model" in replies[0][1]


def test_a_closed_pipe_ends_the_worker() -> None:
    """No request at all (the service went away before loading): the loop returns."""
    assert run() == []


def test_a_request_reached_after_its_start_by_time_is_answered_busy_not_done() -> None:
    """The worker was behind: audio it reaches after the caller's start-by time is not
    decoded (the caller has gone to the menu); a close is done whatever the time, and a
    request still in time is served."""
    replies = run(
        ("load", FAKE, (["no signal"],)),
        ("open", 1, 5.0, 8000, None),  # its start-by time has passed
        ("open", 2, 20.0, 8000, None),
        ("accept", 2, 9.0, b"\0" * 320),
        ("final", 2, 10.5),
        ("close", 1, None), ("close", 2, 1.0),
        now=10.0,
    )
    assert replies[1][0] == "busy" and "open reached 5000 ms after" in replies[1][1]
    assert replies[2] == ("ok", None)
    assert replies[3][0] == "busy"
    assert replies[4] == ("ok", Transcript("no signal", 0.9, "fake", "fake"))
    assert replies[5:] == [("ok", None), ("ok", None)]


def test_a_stream_of_bytes_splits_into_whole_messages_and_keeps_a_partial_one() -> None:
    """The reactor reads the worker's replies in whatever pieces the socket gives."""
    wire = encode(("ok", None)) + encode(("ok", "partial text")) + encode(("busy", "late"))
    buffer = bytearray(wire[:-3])
    assert decode_stream(buffer) == [("ok", None), ("ok", "partial text")]
    assert len(buffer) == len(encode(("busy", "late"))) - 3
    buffer += wire[-3:]
    assert decode_stream(buffer) == [("busy", "late")]
    assert buffer == bytearray()
