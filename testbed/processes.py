"""Stopping the programs the testbed started, the same way for each of them."""

from __future__ import annotations

import subprocess
from collections.abc import Callable


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
