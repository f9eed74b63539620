"""``ivr orders list|show|assign|status|hold|note|merge|export|reindex``: work orders from the
command line.

Through the HTTP API (``/api/workorders``), with the bearer token of ``HOTLINE_TOKEN`` or of
the file named by ``HOTLINE_TOKEN_FILE``, like ``ivr agent``. Chosen over reading Redis
directly: orders hold personal data sealed with the service's keys, and the API is where the
token's scope (an agent's own orders, a supervisor's team, ops all) is enforced and every
read and change is audited under the token's user; a direct reader would need the master key
on the operator's machine and would decide itself whom to show what. ``--json`` prints the
API's answers as they are (the same field names); without it, a table for people.

``reindex`` is the exception: maintenance of the index sets (``workorders.indexes``), after
moving keys of the layout before buckets into the buckets (``workorders.migrate``), no
personal data shown, so it talks to Redis with the service's config and keys
(``WorkOrderStore.reindex``), as ``ivr keys`` does.

Adding a subcommand is one entry of :data:`SUBCOMMANDS`: its name, help, a function that
declares its arguments and a function that runs it with the :class:`Context` (the API client,
the output streams, the environment). Exit codes: 0 done, 1 refused by the order's state
(HTTP 409), 2 a bad request (bad filter or value, unknown order), 3 the service or Redis
unreachable, 4 no valid token or not allowed (401, 403).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from hotline.agentcli import (
    DEFAULT_API,
    EXIT_BAD_REQUEST,
    EXIT_DENIED,
    EXIT_UNREACHABLE,
    AgentAPI,
    AgentCommandError,
    Opener,
    add_api_options,
)
from hotline.apitoken import TokenFileError, api_token
from workorders.query import FILTER_NAMES, FilterError, parse_filter

OrdersCommandError = AgentCommandError
STATUS_EVENTS = ("start", "resolve", "close", "reopen", "resume")


class OrdersAPI(AgentAPI):
    """The work-order endpoints of one running service."""

    def page(self, filters: Mapping[str, str], *, export: bool = False) -> dict[str, Any]:
        path = "/api/workorders/export" if export else "/api/workorders"
        query = urllib.parse.urlencode({k: v for k, v in filters.items() if v})
        answer: dict[str, Any] = self._request(
            "GET", path + (f"?{query}" if query else ""), what="list work orders"
        )
        return answer

    def pages(self, filters: Mapping[str, str], *, export: bool = False
              ) -> Iterator[dict[str, Any]]:
        """Every page from ``filters``' cursor on, following ``next_cursor``."""
        params = dict(filters)
        while True:
            answer = self.page(params, export=export)
            yield answer
            if not answer.get("next_cursor"):
                return
            params["cursor"] = answer["next_cursor"]

    def order(self, order_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._request("GET", _order_path(order_id),
                                               what=f"show {order_id}")
        return answer

    def act(self, order_id: str, action: str, body: Mapping[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self._request(
            "POST", f"{_order_path(order_id)}/{action}", what=f"{action} {order_id}", body=body
        )
        return answer


def _order_path(order_id: str) -> str:
    return f"/api/workorders/{urllib.parse.quote(order_id, safe='')}"


@dataclass
class Context:
    """What a subcommand runs with: the API client (built on first use), the streams."""

    connect: Callable[[], OrdersAPI]
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr
    environ: Mapping[str, str] = field(default_factory=dict)
    _api: OrdersAPI | None = None

    @property
    def api(self) -> OrdersAPI:
        if self._api is None:
            self._api = self.connect()
        return self._api


# -- output for people ----------------------------------------------------------------------

_COLUMNS = (("ID", 8), ("CREATED", 18), ("STATUS", 12), ("CATEGORY", 11), ("URGENCY", 10),
            ("AGENT", 12), ("CALLER", 16))


def format_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    """One line per order: id, creation (UTC, to the minute), status, category, urgency,
    agent, caller number, and the missed deadlines (or where it was merged)."""
    lines = ["".join(f"{title:<{width}}" for title, width in _COLUMNS) + "NOTE"]
    for r in rows:
        note = ("overdue: " + ", ".join(r["overdue"])) if r.get("overdue") else ""
        if r.get("merged_into"):
            note = f"merged into {r['merged_into']}"
        cells = (r["id"], r["created_at"][:16].replace("T", " "), r["status"], r["category"],
                 r["urgency"], r.get("agent") or "-", r["caller"]["number"])
        lines.append("".join(f"{_cut(str(c), w):<{w}}" for c, (_, w) in
                             zip(cells, _COLUMNS, strict=True)) + note)
    return "\n".join(line.rstrip() for line in lines)


def format_order(order: Mapping[str, Any]) -> str:
    """One order: its fields, then its history, oldest first."""
    caller = order["caller"]
    fields = [
        ("order", order["id"]), ("call", order["call_id"]),
        ("caller", f"{caller['number']} {caller['name']}".strip()),
        ("status", order["status"] + (f" ({order['outcome']})" if order.get("outcome") else "")),
        ("category", order["category"]), ("urgency", order["urgency"]),
        ("queue", order.get("queue") or "-"), ("agent", order.get("agent") or "-"),
        ("created", order["created_at"]), ("assign by", order["deadlines"]["assign_by"]),
        ("respond by", order["deadlines"]["respond_by"]),
    ]
    if order.get("merged_into"):
        fields.append(("merged into", order["merged_into"]))
    if order.get("transcript"):
        fields.append(("transcript", order["transcript"]))
    lines = [f"{name + ':':<13}{value}" for name, value in fields]
    lines.append("history:")
    for entry in order.get("history", []):
        details = ", ".join(f"{k}={v}" for k, v in entry.get("details", {}).items())
        lines.append(f"  {entry['time'][:19].replace('T', ' ')}  {entry['event']:<9}"
                     f"{entry['actor']:<14}{details}".rstrip())
    return "\n".join(lines)


def _cut(text: str, width: int) -> str:
    return text if len(text) < width else text[: width - 2] + "…"


def _print_order(args: argparse.Namespace, ctx: Context, order: Mapping[str, Any]) -> None:
    if args.json:
        print(json.dumps(order), file=ctx.out)
    else:
        agent = f" ({order['agent']})" if order.get("agent") else ""
        print(f"work order {order['id']}: {order['status']}{agent}", file=ctx.out)


# -- the subcommands ------------------------------------------------------------------------


def _filters(args: argparse.Namespace) -> dict[str, str]:
    """The filter options as the API's query parameters, checked before anything is sent."""
    values = {name: getattr(args, name) or "" for name in FILTER_NAMES}
    values["overdue"] = "true" if args.overdue else ""
    try:
        parse_filter(values)
    except FilterError as exc:
        raise OrdersCommandError(str(exc), EXIT_BAD_REQUEST) from None
    return {k: v for k, v in values.items() if v}


def _add_filters(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("filters (lists comma-separated)")
    g.add_argument("--status", help="pending, assigned, in_progress, on_hold, resolved, closed")
    g.add_argument("--category", help="categories of the config")
    g.add_argument("--urgency", help="urgent, important, normal")
    g.add_argument("--agent", help="agent ids")
    g.add_argument("--caller", help="the caller's number, any spelling")
    g.add_argument("--created-from", dest="created_from", metavar="DATE",
                   help="2026-11-28 or an ISO time, inclusive")
    g.add_argument("--created-to", dest="created_to", metavar="DATE",
                   help="2026-11-28 (that whole day) or an ISO time, exclusive")
    g.add_argument("--overdue", action="store_true", help="a deadline passed while open")


def _list_arguments(p: argparse.ArgumentParser) -> None:
    _add_filters(p)
    p.add_argument("--limit", type=int, default=50, help="orders per page (at most 200)")
    p.add_argument("--cursor", help="go on from a previous page's next_cursor")
    p.add_argument("--all", action="store_true", help="follow the pages to the end")


def _list(args: argparse.Namespace, ctx: Context) -> int:
    params = {**_filters(args), "limit": str(args.limit)}
    if args.cursor:
        params["cursor"] = args.cursor
    if args.all:
        rows = [r for page in ctx.api.pages(params) for r in page["orders"]]
        answer: dict[str, Any] = {"orders": rows, "next_cursor": None}
    else:
        answer = ctx.api.page(params)
    if args.json:
        print(json.dumps(answer), file=ctx.out)
        return 0
    print(format_rows(answer["orders"]), file=ctx.out)
    if answer.get("next_cursor"):
        print(f"more: --cursor {answer['next_cursor']}", file=ctx.err)
    return 0


def _show_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("order_id", metavar="ID")


def _show(args: argparse.Namespace, ctx: Context) -> int:
    order = ctx.api.order(args.order_id)
    print(json.dumps(order) if args.json else format_order(order), file=ctx.out)
    return 0


def _assign_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("order_id", metavar="ID")
    p.add_argument("agent", metavar="AGENT")
    p.add_argument("--queue", help="the queue the order is handled in")


def _assign(args: argparse.Namespace, ctx: Context) -> int:
    body = {"agent": args.agent, **({"queue": args.queue} if args.queue else {})}
    _print_order(args, ctx, ctx.api.act(args.order_id, "assign", body))
    return 0


def _status_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("order_id", metavar="ID")
    p.add_argument("event", choices=STATUS_EVENTS)
    p.add_argument("--outcome", help="resolve, close: what was done")
    p.add_argument("--reason", help="reopen, resume: why")


def _status(args: argparse.Namespace, ctx: Context) -> int:
    body = {"event": args.event}
    body.update({k: v for k, v in (("outcome", args.outcome), ("reason", args.reason)) if v})
    _print_order(args, ctx, ctx.api.act(args.order_id, "status", body))
    return 0


def _hold_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("order_id", metavar="ID")
    p.add_argument("--waiting-on", dest="waiting_on", required=True,
                   choices=("customer", "third_party"))
    p.add_argument("--reason", required=True, help="what the order waits for")


def _hold(args: argparse.Namespace, ctx: Context) -> int:
    body = {"waiting_on": args.waiting_on, "reason": args.reason}
    _print_order(args, ctx, ctx.api.act(args.order_id, "hold", body))
    return 0


def _note_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("order_id", metavar="ID")
    p.add_argument("text", metavar="TEXT")


def _note(args: argparse.Namespace, ctx: Context) -> int:
    _print_order(args, ctx, ctx.api.act(args.order_id, "note", {"text": args.text}))
    return 0


def _merge_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("survivor", metavar="SURVIVOR", help="the order that stays")
    p.add_argument("merged", metavar="MERGED", help="the duplicate folded into it")


def _merge(args: argparse.Namespace, ctx: Context) -> int:
    answer = ctx.api.act(args.survivor, "merge", {"merged": args.merged})
    if args.json:
        print(json.dumps(answer), file=ctx.out)
    else:
        print(f"work order {answer['merged']['id']} merged into {answer['survivor']['id']} "
              f"({answer['survivor']['status']})", file=ctx.out)
    return 0


def _export_arguments(p: argparse.ArgumentParser) -> None:
    _add_filters(p)
    p.add_argument("--out", help="file to write (default: standard output)")


def _export(args: argparse.Namespace, ctx: Context) -> int:
    params = {**_filters(args), "limit": "500"}
    count = 0
    target = open(args.out, "w", encoding="utf-8") if args.out else ctx.out  # noqa: SIM115
    try:
        for page in ctx.api.pages(params, export=True):
            for order in page["orders"]:
                target.write(json.dumps(order, ensure_ascii=True) + "\n")
                count += 1
    finally:
        if args.out:
            target.close()
    print(f"{count} work orders exported", file=ctx.err)
    return 0


def _reindex_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch", type=int, default=500, help="orders per atomic step")


def _direct_store(args: argparse.Namespace, what: str) -> tuple[Any, Any]:
    """The service's work-order store straight on Redis, with its config and keys (for the
    commands that show no personal data: see the module docstring), and the config."""
    from hotline.keys import load_service_keys
    from hotline.service import service_redis
    from ivr.categories import categories_of
    from ivr.config import ConfigError, load_config
    from privacy import PrivacyError
    from workorders.store import WorkOrderStore

    try:
        cfg = load_config(args.config)
        keys = load_service_keys(cfg)
    except (ConfigError, PrivacyError, ConnectionError, OSError) as exc:
        raise OrdersCommandError(f"{what}: {exc}", EXIT_UNREACHABLE) from None
    svc = cfg.service
    store = WorkOrderStore.from_config(
        service_redis(svc), cfg.workorders, spool_dir=svc.spool_dir, cipher=keys.cipher,
        prefix=svc.redis.key_prefix, categories=categories_of(cfg),
    )
    return store, cfg


def _reindex(args: argparse.Namespace, ctx: Context) -> int:
    """Straight to Redis with the service's config and keys (see the module docstring)."""
    import asyncio

    from workorders.migrate import move_into_buckets

    store, _ = _direct_store(args, "reindex")
    loop = asyncio.get_event_loop()
    # Keys of the layout before buckets move first (idempotent: nothing to do the next time).
    moved = loop.run_until_complete(move_into_buckets(store.redis, store.buckets))
    count = loop.run_until_complete(store.reindex(batch=args.batch))
    if args.json:
        print(json.dumps({"reindexed": count, **({"moved": moved} if moved else {})}),
              file=ctx.out)
    else:
        if moved:
            print("moved into buckets: " + ", ".join(f"{n} {kind}" for kind, n in moved.items()),
                  file=ctx.out)
        print(f"{count} work orders reindexed", file=ctx.out)
    return 0


def _purge_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true",
                   help="list what is due for deletion, delete nothing")


def _purge(args: argparse.Namespace, ctx: Context) -> int:
    """The retention purge now (``workorders.retention``; ``ivr serve`` runs it daily):
    straight to Redis like ``reindex``, as it shows no personal data (ids and dates); each
    deletion leaves its record on ``wo:deletions``, and the run is in the audit log."""
    import asyncio
    import getpass
    import time

    from audit.log import AuditLog
    from hotline.service import service_redis
    from workorders.retention import purge_command

    store, cfg = _direct_store(args, "purge")
    now = time.time()

    async def run() -> dict[str, Any]:
        report = await purge_command(store, now, dry_run=args.dry_run)
        if not args.dry_run:
            audit = AuditLog.from_config(service_redis(cfg.service), cfg.service)
            await audit.record(
                user=getpass.getuser(), role="ops", action="workorder.purge", obj="workorders",
                address="cli", now=now,
                details={k: str(v) for k, v in report.items() if not isinstance(v, list)},
            )
        return report

    report = asyncio.get_event_loop().run_until_complete(run())
    if args.json:
        print(json.dumps(report), file=ctx.out)
    else:
        print(json.dumps(report, indent=2), file=ctx.out)
    return 0


def _legal_hold_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("set", "release"))
    p.add_argument("order_id", metavar="ID")
    p.add_argument("--reason", required=True, help="why (kept in the history and audit log)")


def _legal_hold(args: argparse.Namespace, ctx: Context) -> int:
    answer = ctx.api.act(args.order_id, "legal-hold",
                         {"held": args.action == "set", "reason": args.reason})
    if args.json:
        print(json.dumps(answer), file=ctx.out)
    else:
        state = "on legal hold" if answer["legal_hold"] else "released from its legal hold"
        print(f"work order {answer['id']} {state}", file=ctx.out)
    return 0


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Context], int]


#: Every ``ivr orders`` subcommand: one entry each.
SUBCOMMANDS: list[Subcommand] = [
    Subcommand("list", "orders by filters, newest first", _list_arguments, _list),
    Subcommand("show", "one order with its history", _show_arguments, _show),
    Subcommand("assign", "assign an order to an agent", _assign_arguments, _assign),
    Subcommand("status", "start, resolve, close, reopen or resume an order", _status_arguments,
               _status),
    Subcommand("hold", "put an order on hold (waiting on the customer or a third party)",
               _hold_arguments, _hold),
    Subcommand("note", "add a note to an order's history", _note_arguments, _note),
    Subcommand("merge", "fold a duplicate into the order that stays (supervisors, ops)",
               _merge_arguments, _merge),
    Subcommand("export", "orders by filters as JSON lines, with histories (supervisors, ops)",
               _export_arguments, _export),
    Subcommand("reindex", "write the index sets of orders stored before they existed (Redis)",
               _reindex_arguments, _reindex),
    Subcommand("purge", "delete orders past their retention, with deletion records (Redis)",
               _purge_arguments, _purge),
    Subcommand("legal-hold", "set or release a legal hold: a held order is never purged (ops)",
               _legal_hold_arguments, _legal_hold),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Authentication: the bearer token comes from $HOTLINE_TOKEN, or from the file named "
        "by $HOTLINE_TOKEN_FILE. Exit codes: 0 done, 1 refused by the order's state, 2 a bad "
        "request, 3 the service unreachable, 4 no valid token or not allowed."
    )
    sub = parser.add_subparsers(dest="orders_command", required=True)
    for command in SUBCOMMANDS:
        p = sub.add_parser(command.name, help=command.help)
        command.arguments(p)
        add_api_options(p)
        p.set_defaults(orders_run=command.run)


def main(
    args: argparse.Namespace,
    *,
    opener: Opener = urllib.request.urlopen,
    environ: Mapping[str, str] | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    env = os.environ if environ is None else environ

    def connect() -> OrdersAPI:
        try:
            token = api_token(env)
        except TokenFileError as exc:
            raise OrdersCommandError(str(exc), EXIT_DENIED) from None
        return OrdersAPI(args.api or env.get("HOTLINE_API") or DEFAULT_API, opener=opener,
                         token=token)

    ctx = Context(connect, out, err, env)
    try:
        return int(args.orders_run(args, ctx))
    except OrdersCommandError as exc:
        print(f"ivr orders: {exc}", file=err)
        return exc.exit_code
