"""The benchmark menu on pyst2's `asterisk.agi.AGI`, one forked process per call.

`python -m benchmarks.agi.serve_pyst2 --port P`. pyst2's AGI class talks to Asterisk through
stdin/stdout text files and installs a SIGHUP handler (main thread only), and
`asterisk.fastagi` does not import on Python 3, so the natural FastAGI server forks per call
and hands the child the socket wrapped in text files. pyst2 logs every line it reads and
writes to stderr: that goes to /dev/null here, as it would in service.

The accept loop is written out rather than taken from `socketserver.ForkingTCPServer`, whose
child reaping calls waitpid once per live child on every request (2,000 syscalls per accepted
call at 2,000 calls): that would charge pyst2 for a stdlib weakness. Here the parent reaps
exited children only (`waitpid(-1, WNOHANG)` until none is left), so their CPU time lands in
its cutime/cstime where the benchmark reads it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket

from asterisk.agi import AGI, AGIError, AGIException

from benchmarks.agi.flow import walk


def answer_call(conn: socket.socket) -> None:
    """One call, in the forked child: pyst2's AGI over the socket, the shared menu walk."""
    stdin = conn.makefile("r", encoding="utf-8", newline="\n")
    stdout = conn.makefile("w", encoding="utf-8", newline="\n")
    # Hang-up, dead channel, or the peer gone: pyst2 reads EOF as an empty line and fails on
    # int(""), so ValueError also means the call is over.
    with (
        open(os.devnull, "w") as stderr,
        contextlib.suppress(AGIException, AGIError, OSError, ValueError),
    ):
        walk_menu(AGI(stdin=stdin, stdout=stdout, stderr=stderr))


def walk_menu(agi: AGI) -> None:
    flow = walk()
    step = next(flow)
    while True:
        digits = None
        if step.action == "answer":
            agi.answer()
        elif step.action == "stream_file":
            agi.stream_file(*step.args)
        elif step.action == "get_data":
            digits = agi.get_data(*step.args)
        else:
            agi.set_variable(*step.args)
        try:
            step = flow.send(digits)
        except StopIteration:
            return


def reap() -> None:
    """Collect every child that has exited, without waiting for the others."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def serve(port: int) -> None:
    listener = socket.create_server(("127.0.0.1", port), backlog=4096, reuse_port=False)
    listener.settimeout(0.2)  # wake up to reap even when no call arrives
    while True:
        try:
            conn, _address = listener.accept()
        except TimeoutError:
            reap()
            continue
        if os.fork() == 0:
            listener.close()
            status = 0
            try:
                answer_call(conn)
            except BaseException:
                status = 1
            finally:
                os._exit(status)
        conn.close()
        reap()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    serve(parser.parse_args().port)


if __name__ == "__main__":
    main()
