"""The load benchmark's process accounting (benchmarks.load.cpu)."""

from __future__ import annotations

import os
import subprocess
import sys

from benchmarks.load.cpu import with_children


def test_a_process_is_counted_with_its_children() -> None:
    """``ivr serve``'s decoder processes are its children: their CPU and memory are counted
    with the service's."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert with_children(os.getpid())[0] == os.getpid()
        assert child.pid in with_children(os.getpid())
    finally:
        child.kill()
        child.wait()


def test_a_process_that_is_gone_is_only_itself() -> None:
    """No /proc entry (the process ended): just the pid, read as nothing later."""
    assert with_children(2**22 + 12345) == [2**22 + 12345]
