"""A floor for comparison: the benchmark menu on the thinnest possible Twisted FastAGI server.

`python -m benchmarks.agi.serve_twisted_floor --port P [--reactor asyncio|epoll]`. A bare
`LineOnlyReceiver` that reads the header block, writes each command and takes the digits out of
`200 result=` by string slicing: no escaping, no timeouts, no size caps, no 520 blocks. It is
not a usable AGI layer; it shows what the reactor and line framing alone cost, so the gap
between it and `ivr.agi` is the price of the layer's safety and API.
"""

from __future__ import annotations

import argparse

from benchmarks.agi.serve_ours import install_reactor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--reactor", choices=("asyncio", "epoll"), default="asyncio")
    args = parser.parse_args()
    install_reactor(args.reactor)

    from twisted.internet import reactor
    from twisted.internet.protocol import Factory
    from twisted.protocols.basic import LineOnlyReceiver

    from benchmarks.agi.flow import walk

    class FloorAGI(LineOnlyReceiver):
        """States: header (reading agi_* lines) -> walking (one command in flight) -> done."""

        delimiter = b"\n"

        def connectionMade(self) -> None:
            self._in_header = True
            self._flow = walk()
            self._step = None

        def lineReceived(self, line: bytes) -> None:
            if self._in_header:
                if not line:
                    self._in_header = False
                    self._step = next(self._flow)
                    self.sendLine(self._step.agi_line().encode())
                return
            if not line.startswith(b"200 result=") or line.startswith(b"200 result=-1"):
                self.transport.loseConnection()  # HANGUP, 511, -1: the call is over
                return
            digits = None
            if self._step.action == "get_data":
                digits = line[11:].split(b" ", 1)[0].decode()
            try:
                self._step = self._flow.send(digits)
            except StopIteration:
                self.transport.loseConnection()
                return
            self.sendLine(self._step.agi_line().encode())

    factory = Factory.forProtocol(FloorAGI)
    reactor.listenTCP(args.port, factory, backlog=4096, interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main()
