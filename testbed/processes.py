"""Stopping the programs the testbed started, the same way for each of them."""

from __future__ import annotations

import ctypes
import signal
import subprocess
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """A ``preexec_fn``: the child gets SIGTERM when the thread that started it exits, so a
    test run killed by a timeout or ^C leaves no server behind (Linux prctl). Not for what
    must outlive its starter (``python -m testbed up``)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def stop_process(
    process: subprocess.Popen[bytes] | None,
    grace: float,
    ask: Callable[[], object] | None = None,
) -> None:
    """Ask ``process`` to stop (``ask()``, else SIGTERM), give it ``grace`` seconds to exit
    cleanly, then SIGKILL it. Nothing to do when it has already exited."""
    if process is None or process.poll() is not None:
        return
    if ask is None:
        process.terminate()
    else:
        ask()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
