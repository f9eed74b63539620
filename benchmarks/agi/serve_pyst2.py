"""The benchmark menu on pyst2's `asterisk.agi.AGI`, one forked process per call.

`python -m benchmarks.agi.serve_pyst2 --port P`. pyst2's AGI class talks to Asterisk through
stdin/stdout text files and installs a SIGHUP handler (main thread only), and
`asterisk.fastagi` does not import on Python 3, so the natural FastAGI server is a forking
`socketserver` whose child wraps the socket in text files and hands them to `AGI`. pyst2 logs
every line it reads and writes to stderr: that goes to /dev/null here, as it would in service.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socketserver

from asterisk.agi import AGI, AGIError, AGIException

from benchmarks.agi.flow import walk


class BenchMenu(socketserver.StreamRequestHandler):
    """One call in a forked child: pyst2's AGI over the socket, the shared menu walk."""

    def handle(self) -> None:
        stdin = self.request.makefile("r", encoding="utf-8", newline="\n")
        stdout = self.request.makefile("w", encoding="utf-8", newline="\n")
        # Hang-up, dead channel, or the peer gone: pyst2 reads EOF as an empty line and fails
        # on int(""), so ValueError also means the call is over.
        with open(os.devnull, "w") as stderr, contextlib.suppress(
                AGIException, AGIError, OSError, ValueError):
            self._walk(AGI(stdin=stdin, stdout=stdout, stderr=stderr))

    @staticmethod
    def _walk(agi: AGI) -> None:
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


class ForkingAGIServer(socketserver.ForkingTCPServer):
    """A fork per call, no cap below the benchmark's concurrency, a deep accept queue."""

    allow_reuse_address = True
    request_queue_size = 4096
    max_children = 100_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    with ForkingAGIServer(("127.0.0.1", parser.parse_args().port), BenchMenu) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
