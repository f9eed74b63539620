"""``ivr tokens create|list|revoke``: the API's bearer tokens, in Redis (``access/tokens.py``).

``create`` prints the token once (it is kept nowhere, only its keyed hash); ``list`` never
shows a secret; ``revoke`` holds at once on every instance. Creating and revoking are recorded
in the audit log before the command reports success: a creation that cannot be recorded is
revoked again. The caller passes the two things this command cannot choose itself:

- ``audit``: ``config -> (redis, prefix) -> the audit log`` (``record(...)`` as the audit
  package's);
- ``token_key``: ``config -> async (redis, prefix) -> the HMAC key of the tokens`` (the
  service's key).

Both are given the config this command loaded (once), so they read the same files.

Exit codes: 0 done, 1 the config does not validate, 2 a bad request (role, team, user,
expiry, unknown token id), 3 Redis, the key or the audit log unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TextIO

from redis import RedisError
from redis.asyncio import Redis

from access.roles import Role
from access.teams import token_subject_problem
from access.tokens import (
    DEFAULT_EXPIRES_S,
    TokenInfo,
    TokenStore,
    UnknownToken,
    check_subject,
    iso,
    parse_expires,
)

if TYPE_CHECKING:
    from hotline.redisclient import RedisTarget
    from ivr.config import HotlineConfig

EXIT_CONFIG = 1
EXIT_BAD_REQUEST = 2
EXIT_UNAVAILABLE = 3

class TokenAudit(Protocol):
    """The audit log as this command uses it (the audit package's ``AuditLog``)."""

    async def record(
        self, *, user: str, role: str, action: str, obj: str, address: str, now: float,
        reason: str | None = None, details: Mapping[str, str] | None = None,
    ) -> str: ...


AuditSource = Callable[[Redis, str], TokenAudit]
"""``(redis, key prefix) -> the audit log`` the command records into."""

KeySource = Callable[[Redis, str], Awaitable[bytes]]
"""``async (redis, key prefix) -> the tokens' HMAC key`` (the same key as the service's)."""


class TokenCommandError(Exception):
    """The command failed; ``exit_code`` says how (see the module docstring)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="tokens_action", required=True)
    create = sub.add_parser("create", help="a new token, printed once")
    create.add_argument("--user", required=True, help="who holds it (an agent id for agents)")
    create.add_argument("--role", required=True, help=", ".join(r.value for r in Role))
    create.add_argument("--team", help="the supervisor's team (a team of agents.yaml)")
    create.add_argument("--expires", default="30d", help="lifetime: 30d, 12h, 90m (max 365d)")
    listing = sub.add_parser("list", help="every token kept, without secrets")
    revoke = sub.add_parser("revoke", help="revoke a token by its id, at once")
    revoke.add_argument("token_id", metavar="ID")
    for p in (create, listing, revoke):
        p.add_argument("--redis", help="Redis URL (default: service.yaml redis.url)")
        p.add_argument("--json", action="store_true", help="print JSON")


def format_tokens(tokens: tuple[TokenInfo, ...], now: float) -> str:
    """One line per token: id, user, role, team, created, expires, status."""
    lines = [f"{'ID':<18}{'USER':<16}{'ROLE':<12}{'TEAM':<16}{'CREATED':<22}{'EXPIRES':<22}STATUS"]
    for t in tokens:
        lines.append(
            f"{t.token_id:<18}{t.user:<16}{t.role.value:<12}{t.team or '-':<16}"
            f"{iso(t.created):<22}{iso(t.expires):<22}{t.status(now)}"
        )
    return "\n".join(lines)


def _load_config(directory: str | None, environ: Mapping[str, str]) -> HotlineConfig:
    from ivr.config import load_config

    return load_config(directory, environ)


def main(
    args: argparse.Namespace,
    *,
    audit: Callable[[HotlineConfig], AuditSource],
    token_key: Callable[[HotlineConfig], KeySource],
    load: Callable[[str | None, Mapping[str, str]], HotlineConfig] = _load_config,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
    operator: str | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Run ``ivr tokens``; ``operator`` is who runs it, for the audit log (default: the OS
    login name)."""
    from hotline.redisclient import describe
    from ivr.config import ConfigError

    environ = os.environ if environ is None else environ
    try:
        expires_s = _check_arguments(args)
        cfg = load(getattr(args, "config", None), environ)
    except TokenCommandError as exc:
        print(f"ivr tokens: {exc}", file=err)
        return exc.exit_code
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=err)
        return EXIT_CONFIG
    if args.tokens_action == "create":
        refusal = token_subject_problem(cfg.routing, args.user, Role(args.role), args.team)
        if refusal:
            print(f"ivr tokens: {refusal}", file=err)
            return EXIT_BAD_REQUEST
    command = _TokenCommand(
        args, audit_source=audit(cfg), token_key=token_key(cfg), clock=clock,
        operator=operator or getpass.getuser(), out=out,
    )
    target = args.redis or cfg.service.redis
    try:
        asyncio.run(command.run(target, cfg.service.redis.key_prefix, expires_s))
    except TokenCommandError as exc:
        print(f"ivr tokens: {exc}", file=err)
        return exc.exit_code
    except (RedisError, OSError) as exc:
        print(f"ivr tokens: cannot use Redis at {describe(target)}: {exc}", file=err)
        return EXIT_UNAVAILABLE
    return 0


def _check_arguments(args: argparse.Namespace) -> float:
    """The expiry in seconds (create), after checking the command line's shape."""
    if args.tokens_action != "create":
        return DEFAULT_EXPIRES_S
    try:
        check_subject(args.user, args.role, args.team)
        return parse_expires(args.expires)
    except ValueError as exc:
        raise TokenCommandError(str(exc), EXIT_BAD_REQUEST) from None


@dataclass(frozen=True)
class _TokenCommand:
    """One ``ivr tokens`` action against Redis, recorded in the audit log."""

    args: argparse.Namespace
    audit_source: AuditSource
    token_key: KeySource
    clock: Callable[[], float]
    operator: str
    out: TextIO

    async def run(self, target: RedisTarget, prefix: str, expires_s: float) -> None:
        """``target``: ``--redis``'s URL, else the ``redis`` section of ``service.yaml``."""
        from hotline.redisclient import async_redis

        redis = async_redis(target, socket_timeout=5, socket_connect_timeout=5)
        try:
            store = TokenStore(redis, await self.token_key(redis, prefix), prefix=prefix)
            if self.args.tokens_action == "list":
                self._print_list(await store.list())
            elif self.args.tokens_action == "create":
                await self._create(store, self.audit_source(redis, prefix), expires_s)
            else:
                await self._revoke(store, self.audit_source(redis, prefix))
        finally:
            await redis.aclose()

    async def _record(self, audit: TokenAudit, action: str, info: TokenInfo) -> None:
        await audit.record(
            user=self.operator, role=Role.OPS.value, action=action, obj=f"token:{info.token_id}",
            address="cli", now=self.clock(),
            details={"user": info.user, "role": info.role.value, "team": info.team or "",
                     "expires": iso(info.expires)},
        )

    async def _create(self, store: TokenStore, audit: TokenAudit, expires_s: float) -> None:
        args = self.args
        now = self.clock()
        token, info = await store.create(
            args.user, args.role, args.team, expires_s=expires_s, now=now
        )
        try:
            await self._record(audit, "token.create", info)
        except Exception as exc:
            await store.revoke(info.token_id, now)
            raise TokenCommandError(
                f"the audit log did not record the new token ({exc}); it was revoked",
                EXIT_UNAVAILABLE,
            ) from exc
        if args.json:
            print(json.dumps({"token": token, **info.as_dict(now)}), file=self.out)
            return
        print("token (shown only this once; keep it secret):", file=self.out)
        print(token, file=self.out)
        team = f"  team: {info.team}" if info.team else ""
        print(f"id: {info.token_id}  user: {info.user}  role: {info.role.value}{team}  "
              f"expires: {iso(info.expires)}", file=self.out)

    async def _revoke(self, store: TokenStore, audit: TokenAudit) -> None:
        try:
            info = await store.revoke(self.args.token_id, self.clock())
        except UnknownToken as exc:
            raise TokenCommandError(str(exc), EXIT_BAD_REQUEST) from None
        await self._record(audit, "token.revoke", info)
        if self.args.json:
            print(json.dumps(info.as_dict(self.clock())), file=self.out)
        else:
            print(f"revoked token {info.token_id} (user {info.user}, role {info.role.value})",
                  file=self.out)

    def _print_list(self, tokens: tuple[TokenInfo, ...]) -> None:
        now = self.clock()
        if self.args.json:
            print(json.dumps([t.as_dict(now) for t in tokens], indent=2), file=self.out)
        else:
            print(format_tokens(tokens, now), file=self.out)
