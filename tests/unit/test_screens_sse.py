"""The screens' Server-Sent Events framing and resume point (screens.sse), pure."""

from __future__ import annotations

import pytest

from screens import sse


def test_frame_has_id_event_and_one_data_line_per_line() -> None:
    """A fragment spanning lines becomes one ``data:`` line each (the browser joins them with
    newlines), after the id and the event name, ended by a blank line."""
    framed = sse.frame("queues", "<div>\n  <b>3</b>\r\n</div>", "1700000000000-2")
    assert framed == (b"id: 1700000000000-2\nevent: queues\n"
                      b"data: <div>\ndata:   <b>3</b>\ndata: </div>\n\n")


def test_frame_without_id_and_with_empty_data() -> None:
    """No id line when none is given; empty data is still one data line (an empty fragment
    clears its target)."""
    assert sse.frame("pop", "") == b"event: pop\ndata: \n\n"


@pytest.mark.parametrize("name", ["", "two\nlines", "a:b"])
def test_frame_refuses_event_names_that_would_break_the_framing(name: str) -> None:
    """An event name with a line break or colon could inject fields: refused."""
    with pytest.raises(ValueError):
        sse.frame(name, "x")


def test_frame_refuses_an_id_that_is_not_a_stream_id() -> None:
    """Ids are stream entry ids, so they mean the same on every instance."""
    with pytest.raises(ValueError):
        sse.frame("x", "y", "7\nevent: evil")


def test_last_event_id_prefers_the_header_and_validates() -> None:
    """The header wins over the query parameter; anything not shaped like a stream id is
    ignored (a first connection), never passed to Redis."""
    assert sse.last_event_id({"last-event-id": "5-1"}, {"last_event_id": ["9-9"]}) == "5-1"
    assert sse.last_event_id({}, {"last_event_id": ["9-9"]}) == "9-9"
    assert sse.last_event_id({}, {}) is None
    assert sse.last_event_id({"last-event-id": "+"}, {}) is None
    assert sse.last_event_id({}, {"last_event_id": ["(1-0"]}) is None


def test_comment_and_retry_frames() -> None:
    """Keep-alives are comments (ignored by browsers); ``retry`` sets the reconnect delay."""
    assert sse.comment("a\nb") == b": a b\n\n"
    assert sse.retry(1500) == b"retry: 1500\n\n"
    assert sse.KEEPALIVE.startswith(b":")


def test_stream_ids_sort_numerically() -> None:
    """``10-0`` comes after ``9-5``: ids compare as numbers, not text."""
    assert sse.stream_id_key("10-0") > sse.stream_id_key("9-5")
