"""The ``ivr`` command: serve the hotline, check config, build prompts, place test calls, ...

Each subcommand is a thin shell over a library function, so everything here can be used from
Python and tested without a shell.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.config import HotlineConfig


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _loaded(args: argparse.Namespace) -> HotlineConfig | None:
    """The config of ``--config``, or None after printing each problem (file, key, reason)."""
    from ivr.config import ConfigError, load_config

    try:
        return load_config(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) found", file=sys.stderr)
        return None


def _cmd_check_config(args: argparse.Namespace) -> int:
    cfg = _loaded(args)
    if cfg is None:
        return 1
    from hotline.startup import check_runtime

    problems = check_runtime(cfg)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"config OK: {cfg.directory}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from hotline.service import serve

    return serve(args.config)


def _cmd_prompts_build(args: argparse.Namespace) -> int:
    from hotline.startup import build_language_prompts

    cfg = _loaded(args)
    if cfg is None:
        return 1
    sounds = Path(args.output) if args.output else None
    # One JSON line per language.
    for code, report in build_language_prompts(cfg, force=args.force, sounds_dir=sounds):
        print(json.dumps({**report.as_dict(), "language": code}))
    return 0


def _cmd_call(args: argparse.Namespace) -> int:
    from hotline.testcall import main as testcall_main

    return testcall_main(args)


def _cmd_classify(args: argparse.Namespace) -> int:
    from ivr.speech.cli import classify_main

    return classify_main([*(["--config", args.config] if args.config else []), *args.files])


def _cmd_simulate(args: argparse.Namespace) -> int:
    from routing.simulator import main as simulate_main

    return simulate_main(args.rest)


def _cmd_report(args: argparse.Namespace) -> int:
    from hotline.report import main as report_main

    return report_main(args)


def _cmd_agent(args: argparse.Namespace) -> int:
    from hotline.agentcli import main as agent_main

    return agent_main(args)


def _cmd_orders(args: argparse.Namespace) -> int:
    from hotline.orderscli import main as orders_main

    return orders_main(args)


def _cmd_tokens(args: argparse.Namespace) -> int:
    from access.cli import AuditSource
    from access.cli import main as tokens_main
    from audit.log import AuditLog
    from hotline.keys import token_key_source

    def audit(cfg: HotlineConfig) -> AuditSource:
        return lambda redis, prefix: AuditLog.from_config(redis, cfg.service)

    # The service's audit log and the service's token key: a token made here opens there,
    # and its creation is recorded where the service records.
    return tokens_main(args, audit=audit, token_key=token_key_source)


def _cmd_keys(args: argparse.Namespace) -> int:
    from privacy.cli import main as keys_main

    return keys_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivr", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", help="config directory (default: $HOTLINE_CONFIG_DIR or ./config)"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the hotline service (FastAGI, AudioSocket, ARI, HTTP)")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("check-config", help="validate every file in config/")
    p.set_defaults(func=_cmd_check_config)

    p = sub.add_parser("prompts", help="prompt audio")
    psub = p.add_subparsers(dest="prompts_command", required=True)
    b = psub.add_parser("build", help="synthesize missing or changed prompts with piper")
    b.add_argument("--force", action="store_true", help="rebuild every prompt")
    b.add_argument("--output", help="directory to write to (default: from service.yaml)")
    b.set_defaults(func=_cmd_prompts_build)

    p = sub.add_parser(
        "call", help="place a test call into the stack, print the work order",
        epilog="The work order is read through the HTTP API ($HOTLINE_API, else service.yaml's "
               "http address) with the bearer token of $HOTLINE_TOKEN, or of the file named by "
               "$HOTLINE_TOKEN_FILE.",
    )
    p.add_argument("--say", help="text the caller speaks (synthesized with piper)")
    p.add_argument("--wav", help="WAV file the caller plays")
    p.add_argument("--dtmf", default="", help="digits the caller presses (after --say/--wav)")
    p.add_argument("--script", help="raw caller script: w<s>|d<digits>|p<path>|h (see docs)")
    p.add_argument("--caller-number", default="+15550100")
    p.add_argument("--caller-name", default="Test Caller")
    p.add_argument("--wait", type=float,
                   help="seconds before the caller acts (default: 4 to press keys, 12.5 to speak:"
                        " after the shipped welcome and question; a caller who speaks over the"
                        " question is asked to confirm, which --dtmf 1 answers)")
    p.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds")
    p.set_defaults(func=_cmd_call)

    p = sub.add_parser("classify", help="recognize and classify WAV files, one JSON line each")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=_cmd_classify)

    p = sub.add_parser("simulate", help="discrete-event simulation of a routing scenario")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_simulate)

    from access import cli as tokenscli
    from audit import cli as auditcli
    from events import cli as eventscli
    from hotline import agentcli, orderscli, report
    from privacy import cli as keyscli
    from recordings import cli as recordingscli
    from webhooks import cli as webhookscli

    # Subcommands whose options their own module declares (``add_arguments``).
    for name, help_text, module, run in (
        ("report", "service level, speed of answer, abandonment per interval", report,
         _cmd_report),
        ("agent", "log agents in or out, pause, resume, list (HTTP API)", agentcli, _cmd_agent),
        ("orders", "work orders: list, show, assign, status, hold, note, merge, export "
         "(HTTP API); reindex", orderscli, _cmd_orders),
        ("tokens", "API tokens: create (shown once), list, revoke", tokenscli, _cmd_tokens),
        ("audit", "verify the audit log's hash chain, list its entries", auditcli,
         auditcli.main),
        ("keys", "master key and data keys: init, check, rotate (README)", keyscli, _cmd_keys),
        ("recordings", "call recordings: list, get, hold, release, purge (audited)",
         recordingscli, recordingscli.main),
        ("webhooks", "a webhook's dead letters: list, redrive", webhookscli, webhookscli.main),
        ("events", "tail the events stream; its consumer groups", eventscli, eventscli.main),
    ):
        p = sub.add_parser(name, help=help_text)
        module.add_arguments(p)
        p.set_defaults(func=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
