"""The pure parts of the events consumer-group reader: where the next read starts, and the
decoding of redis-py's stream replies."""

from __future__ import annotations

from events.consumer import Entry, ReadPosition, decode_entries, stream_rows


def test_a_reader_starts_with_its_own_pending_entries() -> None:
    """A fresh reader reads its PEL from id 0 (what it had read before a restart but not
    acknowledged), moves along it batch by batch, and reads new entries (>) once the PEL
    read comes back empty."""
    position = ReadPosition()
    assert position.next_id() == "0"
    position.read([Entry("5-0", {"kind": "X"}), Entry("7-0", {"kind": "X"})])
    assert position.next_id() == "7-0"
    position.read([])
    assert position.next_id() == ">"
    position.read([Entry("9-0", {"kind": "X"})])  # new entries do not move a PEL cursor
    assert position.next_id() == ">"


def test_a_failed_handler_sends_the_reader_back_to_its_pending_entries() -> None:
    """After a handler failed, the next read is of the PEL from the start, so the entry
    that failed comes again before anything newer."""
    position = ReadPosition(pending=False)
    position.failed()
    assert position.next_id() == "0"


def test_replies_are_decoded_to_text_entries() -> None:
    """XREADGROUP's reply (bytes, RESP2 list) becomes entries of text; an entry trimmed
    from the stream while pending (None or empty fields) has empty fields; another stream's
    rows are not taken."""
    reply = [
        [b"p:events", [(b"1-0", {b"kind": b"WOCREATE", b"order_id": b"1"}), (b"2-0", None)]],
        [b"other", [(b"3-0", {b"kind": b"X"})]],
    ]
    entries = decode_entries(stream_rows(reply, "p:events"))
    assert entries == [Entry("1-0", {"kind": "WOCREATE", "order_id": "1"}), Entry("2-0", {})]
    assert entries[0].kind == "WOCREATE" and entries[1].kind == ""
    assert stream_rows([], "p:events") == [] and stream_rows(None, "p:events") == []


def test_resp3_replies_are_read_too() -> None:
    """A client speaking RESP3 gets a mapping stream -> rows: the same entries come out."""
    reply = {b"p:events": [[(b"1-0", {b"kind": b"WOCREATE"})]]}
    assert decode_entries(stream_rows(reply, "p:events")) == [Entry("1-0", {"kind": "WOCREATE"})]
