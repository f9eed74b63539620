"""The decoder worker's loop (ivr.speech.decoders.serve), over in-memory pipes."""

from __future__ import annotations

import io

from ivr.speech.decoders import _read, _write, serve
from ivr.speech.engines import Transcript

FAKE = "ivr.speech.testing:FakeEngine"


def run(*requests: object) -> list[object]:
    """Feed ``requests`` to the loop, return every reply it wrote."""
    inbox = io.BytesIO()
    for request in requests:
        _write(inbox, request)
    inbox.seek(0)
    outbox = io.BytesIO()
    serve(inbox, outbox)
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
        ("open", 1, 8000, None), ("open", 2, 8000, ["signal"]),
        ("accept", 1, b"\0" * 320), ("final", 1), ("final", 2), ("close", 1), ("close", 2),
    )
    assert replies == [
        ("ok", ("fake", "fake")), ("ok", None), ("ok", None), ("ok", None),
        ("ok", Transcript("my bill is wrong", 0.9, "fake", "fake")),
        ("ok", Transcript("no signal", 0.9, "fake", "fake")), ("ok", None), ("ok", None),
    ]


def test_an_error_answers_that_request_and_the_worker_goes_on() -> None:
    """A recognizer id it does not know, an unknown request: each answered with the error,
    and the next request is served."""
    replies = run(("load", FAKE, ([""],)), ("final", 9), ("dance", 1), ("open", 1, 8000, None))
    assert replies[1][0] == "error" and "KeyError" in replies[1][1]
    assert replies[2] == ("error", "ValueError: unknown request 'dance'")
    assert replies[3] == ("ok", None)


def test_an_engine_that_does_not_load_is_reported_and_the_worker_ends() -> None:
    """The load's error is the reply (the service raises it as EngineLoadError at start);
    nothing after it is served."""
    replies = run(("load", "ivr.speech.engines:model_directory", ("package:no_such_model",)),
                  ("open", 1, 8000, None))
    assert len(replies) == 1 and replies[0][0] == "load-error"
    assert "no_such_model" in replies[0][1]


def test_a_closed_pipe_ends_the_worker() -> None:
    """No request at all (the service went away before loading): the loop returns."""
    assert run() == []
