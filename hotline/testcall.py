"""``ivr call``: place a simulated caller into the running hotline and print its work order.

The caller is a Local channel originated through ARI (``asterisk/extensions.conf``, context
``caller-sim``): it waits, plays a WAV file or synthesized speech, presses digits, then stays
on the line like a patient caller until the hotline ends the call. Meanwhile this command
follows the call (progress on stderr) and, when the call is over, prints the work order as
JSON on stdout. Exit status: 0 with a work order, 1 without one, 2 on a setup problem.

The work order is read through the HTTP API (``GET /api/calls/<call_id>/workorder``, at
``$HOTLINE_API`` or service.yaml's ``http`` address), so the read is authorized and audited
like any other: the bearer token comes from ``HOTLINE_TOKEN`` or the file named by
``HOTLINE_TOKEN_FILE``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hotline.apitoken import TOKEN_HELP, TokenFileError, api_token, authorization

Opener = Callable[..., Any]
"""``urllib.request.urlopen``-like; tests pass a fake."""


class WorkOrderReadError(Exception):
    """The API refused or failed the work-order read (the message says why)."""


def api_base(http: Any, environ: Mapping[str, str]) -> str:
    """``$HOTLINE_API``, else service.yaml's ``http`` address (loopback when it listens on
    every interface), ``https`` with ``http.tls``."""
    if environ.get("HOTLINE_API"):
        return environ["HOTLINE_API"].rstrip("/")
    host = "127.0.0.1" if http.host in ("", "0.0.0.0", "::") else http.host
    host = f"[{host}]" if ":" in host else host
    return f"{'https' if http.tls else 'http'}://{host}:{http.port}"


def read_work_order(base: str, call_id: str, token: str | None, *,
                    opener: Opener = urllib.request.urlopen) -> dict[str, Any] | None:
    """The call's work order from the API; ``None`` while there is none (404)."""
    url = f"{base}/api/calls/{urllib.parse.quote(call_id, safe='')}/workorder"
    request = urllib.request.Request(url, headers=authorization(token))
    try:
        with opener(request, timeout=5.0) as response:
            order: dict[str, Any] = json.load(response)
            return order
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        try:
            message = str(json.load(exc).get("error", ""))
        except (ValueError, OSError, AttributeError):
            message = str(exc.reason)
        hint = f" ({TOKEN_HELP})" if exc.code == 401 else ""
        raise WorkOrderReadError(
            f"reading the work order at {base}: HTTP {exc.code}: {message}{hint}"
        ) from None


# When the test caller acts unless told: keys during the welcome; words after the question
# (the shipped welcome, 4.5 s, and "In a few words, tell us why you are calling", 3.9 s), as
# words spoken over it are confirmed ("Press 1 if right", intents.yaml confirm_barge_in).
KEYS_AT_S = 4.0
WORDS_AT_S = 12.5


def caller_wait(wait: float | None, speaks: bool) -> float:
    """``--wait``, or the default for a caller who speaks or only presses keys."""
    if wait is not None:
        return wait
    return WORDS_AT_S if speaks else KEYS_AT_S


def build_script(
    *, wait: float, audio: str | None, dtmf: str, raw: str | None
) -> str:
    """CALLER_SCRIPT for the options: wait, play audio, press each digit 1.5 s apart."""
    from ivr.ari import caller_script, check_caller_script

    if raw:
        return check_caller_script(raw)
    steps = [f"w{wait:g}"]
    if audio:
        steps.append(f"p{audio}")
    for i, digit in enumerate(dtmf):
        if i or audio:
            steps.append("w1.5")
        steps.append(f"d{digit}")
    return caller_script(*steps)


def _stage_audio(cfg: Any, args: argparse.Namespace) -> str | None:
    """Put the caller's audio where Asterisk can play it; the path Asterisk uses."""
    if not args.say and not args.wav:
        return None
    host_dir = cfg.service.asterisk.host_sounds_dir / "testcalls"
    host_dir.mkdir(parents=True, exist_ok=True)
    if args.say:
        from ivr.prompts import synthesize_to_wav

        name = "say-" + hashlib.sha256(args.say.encode()).hexdigest()[:16]
        target = host_dir / f"{name}.wav"
        if not target.exists():
            synthesize_to_wav(args.say, target, rate=8000)
    else:
        source = Path(args.wav)
        name = "wav-" + hashlib.sha256(source.read_bytes()).hexdigest()[:16]
        target = host_dir / f"{name}.wav"
        shutil.copyfile(source, target)
    return f"{cfg.service.asterisk.sounds_dir.rstrip('/')}/testcalls/{name}"


def main(args: argparse.Namespace) -> int:
    from hotline.service import install_reactor

    reactor = install_reactor()
    from twisted.internet import defer, task

    from ivr.config import ConfigError, load_config

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    from privacy import KeyRing, PrivacyError

    try:  # the work order is read back: its personal fields need the keys
        KeyRing.load(key_file=cfg.service.keys.master_key_file)
    except PrivacyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    password = cfg.service.ari_password()
    if not password:
        print("error: no ARI password (HOTLINE_ARI_PASSWORD or ari.password_file)", file=sys.stderr)
        return 2
    try:
        script = build_script(
            wait=caller_wait(args.wait, bool(args.say or args.wav)),
            audio=_stage_audio(cfg, args), dtmf=args.dtmf, raw=args.script
        )
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    try:
        token = api_token(os.environ)
    except TokenFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    base = api_base(cfg.service.http, os.environ)
    result: dict[str, Any] = {"code": 1}

    async def run() -> None:
        from twisted.internet.threads import deferToThread

        from ivr.ari import ARIClient, place_test_call

        async def order_of(call_id: str) -> dict[str, Any] | None:
            order: dict[str, Any] | None = await deferToThread(
                read_work_order, base, call_id, token
            )
            return order

        ari = ARIClient(
            cfg.service.ari.url.rstrip("/") + "/ari", cfg.service.ari.user, password,
            app=cfg.service.ari.app, reactor=reactor,
        )
        call_id = f"test-{uuid.uuid4().hex[:12]}"
        print(f"calling the hotline as {args.caller_number!r}: {script}", file=sys.stderr)
        await place_test_call(
            ari, script=script, caller_number=args.caller_number,
            caller_name=args.caller_name, call_id=call_id,
        )
        deadline = reactor.seconds() + args.timeout
        last = None
        while reactor.seconds() < deadline:
            await task.deferLater(reactor, 0.5, lambda: None)
            order = await order_of(call_id)
            seen = (order["status"], order["agent"]) if order else None
            if order is not None and seen != last:
                print(f"  work order {order['id']}: {order['status']}"
                      f"{' with ' + order['agent'] if order['agent'] else ''}", file=sys.stderr)
                last = seen
            if await ari.get_channel(call_id) is None:
                break
        else:
            print("timed out; hanging up the test call", file=sys.stderr)
            await ari.hangup(call_id)
        order = await order_of(call_id)
        if order is not None:
            print(json.dumps(order, indent=2))
            result["code"] = 0
        else:
            print(f"no work order for call {call_id}", file=sys.stderr)

    def done(outcome: Any) -> None:
        if isinstance(outcome, Exception) or hasattr(outcome, "getErrorMessage"):
            print(f"error: {outcome.getErrorMessage()}", file=sys.stderr)
            result["code"] = 2
        reactor.stop()

    reactor.callWhenRunning(lambda: defer.ensureDeferred(run()).addBoth(done))
    reactor.run()
    code: int = result["code"]
    return code
