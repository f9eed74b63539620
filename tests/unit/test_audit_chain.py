"""The audit entry, its canonical encoding and the chain arithmetic (pure), the mirror file,
the list filters and the command line's parsing."""

from __future__ import annotations

import argparse
import hashlib
import json
from datetime import UTC, datetime

import pytest

from audit import cli as auditcli
from audit.chain import (
    GENESIS,
    ChainWalk,
    canonical,
    compare_copy,
    content_of,
    entry_hash,
    link,
    new_entry,
    parse_time,
)
from audit.mirror import Mirror, read_lines
from audit.reading import Filters
from hotline.cli import build_parser

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC).timestamp()


def entry(n: int = 0, **changes: str) -> dict[str, str]:
    fields = new_entry(
        entry_id=f"{n:032x}", user="kim", role="supervisor", action="workorder.read",
        obj=f"workorder:{n}", address="10.0.0.7", now=T0 + n, reason="callback",
        details={"queue": "faults"},
    )
    return {**fields, **changes}


def chain(n: int) -> list[tuple[str, dict[str, str]]]:
    """``n`` linked entries with stream ids ``1-0``, ``2-0``..."""
    rows, prev = [], GENESIS
    for i in range(n):
        fields = link(entry(i), prev)
        rows.append((f"{i + 1}-0", fields))
        prev = fields["hash"]
    return rows


def walk(rows: list[tuple[str, dict[str, str]]], head: str | None) -> list[str]:
    checker = ChainWalk()
    for stream_id, fields in rows:
        checker.feed(stream_id, fields)
    return [str(finding) for finding in checker.finish(head)]


def test_new_entry_fields():
    """An entry's content: the ISO-8601 UTC time of the injected now, the reason ("" when
    none) and details as sorted compact JSON."""
    fields = new_entry(
        entry_id="a" * 32, user="lee", role="agent", action="agent.state", obj="agent:a1",
        address="::1", now=T0, details={"to": "paused", "from": "idle"},
    )
    assert fields == {
        "id": "a" * 32, "time": "2026-11-28T09:00:00.000000Z", "user": "lee", "role": "agent",
        "action": "agent.state", "object": "agent:a1", "address": "::1", "reason": "",
        "details": '{"from":"idle","to":"paused"}',
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"action": "workorder.delete"}, "workorder.delete"),
        ({"user": ""}, "user"),
        ({"obj": ""}, "object"),
        ({"entry_id": "not-hex"}, "audit id"),
    ],
)
def test_new_entry_refuses_what_cannot_be_audited(changes, message):
    """An unknown action, a missing user or object, or a malformed audit id is refused
    before anything is written."""
    arguments = {
        "entry_id": "b" * 32, "user": "lee", "role": "agent", "action": "workorder.read",
        "obj": "workorder:1", "address": "", "now": T0, **changes,
    }
    with pytest.raises(ValueError, match=message):
        new_entry(**arguments)


def test_canonical_encoding_is_sorted_compact_ascii_without_hash():
    """The hashed bytes are the fields but ``hash`` as one JSON object, keys sorted, no
    whitespace, non-ASCII escaped: reproducible by any tool from the stored strings."""
    fields = {"user": "김철수", "action": "workorder.read", "hash": "ignored", "prev": GENESIS}
    assert canonical(fields) == (
        '{"action":"workorder.read","prev":"' + GENESIS + '","user":"\\uae40\\ucca0\\uc218"}'
    ).encode()
    assert entry_hash(fields) == hashlib.sha256(canonical(fields)).hexdigest()


def test_hash_covers_every_field_and_prev():
    """Changing any field, prev included, or adding one changes the hash; the stored hash
    itself does not count."""
    base = link(entry(), GENESIS)
    for name in [*base, "extra"]:
        if name == "hash":
            continue
        assert entry_hash({**base, name: base.get(name, "") + "x"}) != base["hash"], name
    assert entry_hash({**base, "hash": "0"}) == base["hash"]


def test_link_chains_on_prev_and_marks_replays():
    """A linked entry carries the previous hash and its own; a replayed one also says so,
    and the marker is hashed with it. Linking drops fields that are not content."""
    first = link(entry(1), GENESIS)
    second = link({**entry(2), "pending": "redis unreachable"}, first["hash"], replayed=True)
    assert first["prev"] == GENESIS and second["prev"] == first["hash"]
    assert second["replayed"] == "1" and "pending" not in second
    assert second["hash"] == entry_hash(second)
    assert content_of(second) == entry(2)


def test_intact_chain_has_no_findings():
    """A chain built link by link, with the head at its last hash, verifies clean."""
    rows = chain(5)
    assert walk(rows, rows[-1][1]["hash"]) == []
    assert walk([], None) == []


def test_deleted_entry_is_found_at_the_next_link():
    """Deleting entry 3 breaks the link at entry 4: the finding names entry 4, the prev it
    has and the one expected (the hash of entry 2)."""
    rows = chain(5)
    deleted = rows.pop(2)
    (finding,) = walk(rows, rows[-1][1]["hash"])
    assert finding.startswith("4-0: entry 4-0")
    assert f"prev is {deleted[1]['hash']}, expected {rows[1][1]['hash']}" in finding
    assert "the hash of the entry before it, 2-0" in finding


def test_deleted_newest_entry_is_found_by_the_head():
    """Deleting the newest entry leaves every link intact: the head, which still names the
    deleted entry's hash, is what tells."""
    rows = chain(3)
    head = rows[-1][1]["hash"]
    (finding,) = walk(rows[:-1], head)
    assert finding.startswith("audit:head: is " + head)
    assert "expected " + rows[1][1]["hash"] in finding
    assert walk(rows, None) == ["audit:head: missing, but the stream has entries"]


def test_edited_field_is_found_at_that_entry_once():
    """An edited field without a new hash is one finding at the edited entry (the walk goes
    on from the stored hash, so the next link is not reported again)."""
    rows = chain(4)
    rows[1] = (rows[1][0], {**rows[1][1], "user": "mallory"})
    (finding,) = walk(rows, rows[-1][1]["hash"])
    assert finding.startswith("2-0: entry 2-0 (audit id " + "0" * 31 + "1): hash is")
    assert "a field was edited, added or removed" in finding


def test_edit_with_a_recomputed_hash_breaks_the_next_link():
    """Whoever edits an entry and recomputes its hash still breaks the next entry's prev."""
    rows = chain(4)
    forged = link({**rows[1][1], "reason": "none of your business"}, rows[1][1]["prev"])
    rows[1] = (rows[1][0], forged)
    (finding,) = walk(rows, rows[-1][1]["hash"])
    assert finding.startswith("3-0: entry 3-0") and f"expected {forged['hash']}" in finding


def test_reordered_and_inserted_entries_are_found():
    """Two entries swapped, or an entry inserted with a made-up link, break the chain at the
    first entry out of place."""
    rows = chain(4)
    swapped = [rows[0], rows[2], rows[1], rows[3]]
    findings = walk(swapped, rows[-1][1]["hash"])
    assert findings[0].startswith("3-0: entry 3-0") and "prev is" in findings[0]
    inserted = [*rows[:2], ("2-1", link(entry(9), rows[0][1]["hash"])), *rows[2:]]
    findings = walk(inserted, rows[-1][1]["hash"])
    assert findings[0].startswith("2-1: entry 2-1") and "prev is" in findings[0]


def test_repeated_audit_id_is_a_finding():
    """The same audit id twice in the stream (a replay chained twice) is reported."""
    rows = chain(2)
    again = link(rows[0][1], rows[1][1]["hash"])
    findings = walk([*rows, ("3-0", again)], again["hash"])
    assert findings == [f"3-0: entry 3-0 (audit id {'0' * 32}): the audit id is also entry 1-0"]


def test_compare_copy():
    """A chained copy must equal the stream's entry field by field; a spooled copy only in
    its content; a copy of an entry the stream lacks is reported as missing."""
    stored = link(entry(1), GENESIS)
    assert compare_copy("f:1", stored, stored, chained=True) is None
    assert compare_copy("f:1", entry(1), stored, chained=False) is None
    changed = compare_copy("f:1", {**stored, "reason": "x"}, stored, chained=True)
    assert str(changed) == f"f:1: entry {'0' * 31}1 differs from the stream in reason"
    missing = compare_copy("f:2", stored, None, chained=True)
    assert str(missing) == f"f:2: entry {'0' * 31}1 is in the file but not in the stream"


def test_mirror_appends_json_lines_and_repairs_a_torn_tail(tmp_path):
    """The mirror is JSON lines; a line cut by a crash is read as not-an-entry and the next
    line starts fresh, not glued to it."""
    mirror = Mirror(tmp_path)
    mirror.append({"id": "1", "user": "김"})
    with mirror.current.open("ab") as file:
        file.write(b'{"id": "cut')
    Mirror(tmp_path).append({"id": "2"})
    assert list(read_lines(mirror.current)) == [(1, {"id": "1", "user": "김"}), (2, None),
                                              (3, {"id": "2"})]
    assert json.loads(mirror.current.read_text().splitlines()[0]) == {"id": "1", "user": "김"}


def test_filters():
    """List filters: user, action, exact object or prefix with ``*``, since included, until
    excluded."""
    fields = entry(0)
    assert Filters().matches(fields)
    assert Filters(user="kim", action="workorder.read", obj="workorder:0").matches(fields)
    assert Filters(obj="workorder:*").matches(fields)
    assert not Filters(obj="workorder:").matches(fields)
    assert not Filters(user="lee").matches(fields)
    assert not Filters(action="audit.read").matches(fields)
    assert Filters(since=T0, until=T0 + 1).matches(fields)
    assert not Filters(since=T0 + 1).matches(fields)
    assert not Filters(until=T0).matches(fields)


def test_parse_time():
    """Dates and times with or without a zone; none means UTC."""
    assert parse_time("2026-11-28T09:00Z") == T0
    assert parse_time("2026-11-28T10:00+01:00") == T0
    assert parse_time("2026-11-28T09:00") == T0
    assert parse_time("2026-11-28") == T0 - 9 * 3600
    with pytest.raises(ValueError):
        parse_time("yesterday")


def test_ivr_audit_command_line():
    """``ivr audit list`` and ``verify`` parse into the audit CLI's main; bad times and
    limits are refused before anything is read."""
    args = build_parser().parse_args(
        ["audit", "list", "--user", "kim", "--since", "2026-11-28", "--limit", "5", "--as", "au"]
    )
    assert args.func is auditcli.main and args.as_user == "au"
    filters = auditcli.filters_of(args)
    assert (filters.user, filters.since, filters.limit) == ("kim", T0 - 9 * 3600, 5)
    verify = build_parser().parse_args(["audit", "verify", "--mirror", "/a", "--mirror", "/b"])
    assert verify.mirror == ["/a", "/b"] and not verify.json
    for bad in (["--since", "soon"], ["--limit", "0"]):
        parsed = build_parser().parse_args(["audit", "list", *bad])
        with pytest.raises(auditcli.AuditCommandError) as refused:
            auditcli.filters_of(parsed)
        assert refused.value.exit_code == auditcli.EXIT_BAD_REQUEST
    with pytest.raises(SystemExit):
        build_parser().parse_args(["audit", "list", "--action", "workorder.delete"])
    assert isinstance(args, argparse.Namespace)
