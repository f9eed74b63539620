"""A private loopback for one test run, so several runs of the stack can share a machine.

The stack binds fixed ports on 127.0.0.1 (SIP 5060, ARI 8088, FastAGI 4573/4574, the
softphones' 5070-5079): those are what ``asterisk/`` names, and the tests exercise that very
config. Two runs of it at once collide, unless each has a network namespace of its own: then
each has its own 127.0.0.1, and every process it starts (Asterisk, redis-server, ``ivr serve``,
SIPp) inherits it. That is how ``scripts/test.sh`` runs the end-to-end tests in two workers.

Needs root (CAP_SYS_ADMIN), as the Asterisk chroot does. Only the calling thread moves, and
the threads and processes it starts afterwards: so enter before starting any of them.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import sys

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


class PrivateNetworkRefused(RuntimeError):
    """The kernel would not give this process a network namespace of its own."""


def network_id() -> str:
    """Which network namespace this process is in (its inode), e.g. for a per-network lock."""
    try:
        return str(os.stat("/proc/thread-self/ns/net").st_ino)
    except OSError:  # no /proc: one network as far as we can tell
        return "host"


def enter_private_network() -> str:
    """Move this thread into a new network namespace with its loopback up; returns its id."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise PrivateNetworkRefused(
            f"unshare(CLONE_NEWNET) failed: {os.strerror(errno)} (needs root)")
    _loopback_up()
    return network_id()


def _loopback_up() -> None:
    # A new namespace's lo is down; `ip link set lo up` without needing iproute2.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def main(argv: list[str]) -> int:
    """``python -m testbed.netns COMMAND...``: run a command (a benchmark, a test file) in a
    network of its own, beside an e2e run or a demo stack on the host's ports."""
    if not argv:
        print("usage: python -m testbed.netns COMMAND [ARG...]", file=sys.stderr)
        return 2
    try:
        enter_private_network()
    except PrivateNetworkRefused as exc:
        print(f"testbed.netns: {exc}", file=sys.stderr)
        return 2
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
