"""``python -m testbed up|down|status|cli``: the local stack for a demo (testbed/stack.py).

``python -m testbed cli "core show channels"`` runs one Asterisk CLI command on it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys

from testbed import stack
from testbed.asterisk import AsteriskNotInstalled, PortBusy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("up", help="start redis, Asterisk, agent101..104 and the operator")
    start.add_argument("--behaviour", default="answer",
                       choices=["answer", "no-answer", "busy", "reject"],
                       help="what the agent softphones do with a call")
    start.add_argument("--answer-after", type=float, default=1.0, help="seconds of ringing")
    start.add_argument("--hold-for", type=float, default=20.0,
                       help="seconds an answering agent stays on the call")
    start.add_argument("--no-redis", action="store_true", help="use your own Redis")
    start.add_argument("--chroot", default=None,
                       help='Asterisk chroot ("" for the host Asterisk; default: detect)')
    sub.add_parser("down", help="stop what `up` started")
    sub.add_parser("status", help="show what runs, and where")
    sub.add_parser("env", help="print the environment that points `ivr` at this stack")
    cli = sub.add_parser("cli", help="run one Asterisk CLI command on the stack's Asterisk")
    cli.add_argument("words", nargs="+", help='e.g. "pjsip show endpoints"')
    args = parser.parse_args(argv)

    if args.command == "up":
        try:
            state = stack.up(behaviour=args.behaviour, answer_after=args.answer_after,
                             hold_for=args.hold_for, redis=not args.no_redis,
                             chroot=args.chroot)
        except (AsteriskNotInstalled, PortBusy, RuntimeError) as exc:
            print(f"testbed up: {exc}", file=sys.stderr)
            return 1
        print(json.dumps(state, indent=2))
        print(f"state: {stack.STATE_PATH}", file=sys.stderr)
        return 0
    if args.command == "down":
        stopped = stack.down()
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        return 0
    state = stack.read_state()
    if not state:
        print("no testbed stack recorded", file=sys.stderr)
        return 1
    if args.command == "env":
        for name, value in stack.service_environment(state).items():
            print(f"export {name}={shlex.quote(value)}")
        return 0
    if args.command == "cli":
        asterisk = state["asterisk"]
        assert isinstance(asterisk, dict)
        return subprocess.run([*asterisk["cli"], " ".join(args.words)], check=False).returncode
    alive = stack.status(state)
    for name, up in alive.items():
        print(f"{name:10} {'up' if up else 'DOWN'}")
    asterisk = state["asterisk"]
    assert isinstance(asterisk, dict)
    print(f"asterisk log: {asterisk['log']}\nARI: {asterisk['ari_url']} "
          f"user {asterisk['ari_user']} (password in {stack.STATE_PATH})")
    return 0 if all(alive.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
