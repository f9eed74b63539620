"""``ivr orders``: parsing, the table for people and ``--json`` (the API's answers as they
are), JSON-lines export, exit codes; the HTTP requests are answered by the real API over the
fakes of ``api.testing`` (an opener in place of urllib's, no sockets)."""

from __future__ import annotations

import io
import json
import urllib.error
from typing import Any

import pytest

from api.testing import ApiUnderTest, answer
from hotline.cli import build_parser
from hotline.orderscli import SUBCOMMANDS, format_rows, main


class Opener:
    """``urlopen`` answered by the API under test; records each request."""

    def __init__(self, under: ApiUnderTest) -> None:
        self.under = under
        self.requests: list[tuple[str, str, bytes]] = []

    def __call__(self, request: Any, timeout: float = 0) -> Any:
        path = request.full_url.removeprefix("http://127.0.0.1:8090")
        body = request.data or b""
        headers = {k.lower(): v for k, v in request.header_items()}
        token = headers.get("authorization", "").removeprefix("Bearer ") or None
        self.requests.append((request.get_method(), path, body))
        response = answer(self.under.api, request.get_method(), path, token=token, body=body,
                          headers={"Content-Type": headers.get("content-type", "")})
        data = io.BytesIO(json.dumps(response.body).encode())
        if response.status >= 400:
            raise urllib.error.HTTPError(request.full_url, response.status, "error", {}, data)
        return data


def run(under: ApiUnderTest, *argv: str, token: str = "tok-ops") -> tuple[int, str, str, Opener]:
    opener = Opener(under)
    out, err = io.StringIO(), io.StringIO()
    args = build_parser().parse_args(["orders", *argv])
    code = main(args, opener=opener, environ={"HOTLINE_TOKEN": token}, out=out, err=err)
    return code, out.getvalue(), err.getvalue(), opener


def test_every_subcommand_is_one_table_entry():
    """The parser's ``ivr orders`` subcommands are exactly the table's entries."""
    parser = build_parser()
    for command in SUBCOMMANDS:
        args = parser.parse_args(["orders", command.name, *{
            "list": [], "export": [], "reindex": [], "show": ["1"], "assign": ["1", "a"],
            "status": ["1", "start"], "hold": ["1", "--waiting-on", "customer", "--reason", "r"],
            "note": ["1", "t"], "merge": ["1", "2"], "purge": ["--dry-run"],
            "legal-hold": ["set", "1", "--reason", "r"]}[command.name]])
        assert args.orders_run is command.run


def test_list_table_and_json(under_test: ApiUnderTest):
    """The table has a header and one line per order, newest first; ``--json`` prints the
    API's answer unchanged; the filters become the API's query parameters."""
    code, out, _, opener = run(under_test, "list", "--status", "pending", "--urgency", "normal")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "CREATED", "STATUS"]
    assert [line.split()[0] for line in lines[1:]] == ["4", "3", "2", "1"]
    assert opener.requests[0][1] == "/api/workorders?status=pending&urgency=normal&limit=50"
    code, out, _, _ = run(under_test, "list", "--json", "--agent", "agent101")
    direct = answer(under_test.api, "GET", "/api/workorders?agent=agent101", token="tok-ops")
    assert json.loads(out) == direct.body


def test_list_all_follows_the_cursor(under_test: ApiUnderTest):
    """``--all`` follows next_cursor until the last page."""
    code, out, _, opener = run(under_test, "list", "--all", "--limit", "1", "--json")
    assert code == 0
    assert [o["id"] for o in json.loads(out)["orders"]] == ["4", "3", "2", "1"]
    assert len(opener.requests) == 4


def test_show_and_changes(under_test: ApiUnderTest):
    """show prints the fields and the history; assign, status, hold and note print the new
    status for people and the order with ``--json``."""
    assert run(under_test, "assign", "4", "agent101")[1] == "work order 4: assigned (agent101)\n"
    assert run(under_test, "status", "4", "start")[1].startswith("work order 4: in_progress")
    code, out, _, _ = run(under_test, "hold", "4", "--waiting-on", "customer", "--reason", "r",
                          "--json")
    assert code == 0
    assert json.loads(out)["status"] == "on_hold"
    assert run(under_test, "note", "4", "called back")[0] == 0
    code, out, _, _ = run(under_test, "show", "4")
    assert code == 0
    assert "status:      on_hold" in out and "note" in out.splitlines()[-1]


def test_refusals_exit_codes(under_test: ApiUnderTest):
    """A refused transition exits 1 with the API's reason; an unknown order 2; a bad filter
    2 before anything is sent; a token not allowed 4."""
    code, _, err, _ = run(under_test, "status", "4", "resolve")
    assert code == 1 and "work order 4 is pending: 'resolve' is refused" in err
    assert run(under_test, "show", "999")[0] == 2
    code, _, err, opener = run(under_test, "list", "--status", "open")
    assert code == 2 and "status" in err and opener.requests == []
    assert run(under_test, "export", token="tok-agent101")[0] == 4


def test_merge_and_export(under_test: ApiUnderTest, tmp_path):
    """merge names both orders; export writes one JSON line per order (whole orders) and
    the count, audited as workorder.export."""
    code, out, _, _ = run(under_test, "merge", "1", "2", token="tok-supervisor-north")
    assert (code, out) == (0, "work order 2 merged into 1 (pending)\n")
    target = tmp_path / "orders.jsonl"
    code, _, err, _ = run(under_test, "export", "--status", "pending", "--out", str(target))
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert code == 0 and [o["id"] for o in lines] == ["4", "3", "1"]
    assert "history" in lines[0] and err == "3 work orders exported\n"
    assert under_test.audit.entries[-1]["action"] == "workorder.export"


def test_legal_hold_set_and_release(under_test: ApiUnderTest):
    """legal-hold set/release goes through the API with its reason (audited there); a
    supervisor is refused with the API's reason and exit code 2 (a bad request for them)."""
    code, out, _, opener = run(under_test, "legal-hold", "set", "1", "--reason",
                               "court order 12/2026")
    assert (code, out) == (0, "work order 1 on legal hold\n")
    method, path, body = opener.requests[-1]
    assert (method, path, json.loads(body)) == (
        "POST", "/api/workorders/1/legal-hold", {"held": True, "reason": "court order 12/2026"})
    code, out, _, _ = run(under_test, "legal-hold", "release", "1", "--reason", "case closed")
    assert (code, out) == (0, "work order 1 released from its legal hold\n")
    assert [e["action"] for e in under_test.audit.entries] == [
        "workorder.legal_hold", "workorder.legal_release"]
    code, _, err, _ = run(under_test, "legal-hold", "set", "1", "--reason", "x y z",
                          token="tok-supervisor-north")
    assert code != 0 and "ops only" in err


def test_format_rows_marks_overdue_and_merged():
    """A row shows the missed deadlines, or where the order was merged."""
    row = {"id": "7", "created_at": "2026-11-02T09:00:00.000000Z", "status": "pending",
           "category": "fault", "urgency": "urgent", "agent": None,
           "caller": {"number": "+15550100", "name": "K"}, "overdue": ["assign_by"],
           "merged_into": None}
    assert format_rows([row]).splitlines()[1].endswith("overdue: assign_by")
    assert format_rows([{**row, "merged_into": "3"}]).splitlines()[1].endswith("merged into 3")


@pytest.mark.parametrize("argv", [["hold", "1", "--reason", "r"], ["status", "1", "explode"]])
def test_parsing_refuses_missing_words(argv):
    """hold needs --waiting-on; status takes only the lifecycle events."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["orders", *argv])
