"""The benchmark menu on the project's own FastAGI layer, `ivr.agi`.

`python -m benchmarks.agi.serve_ours --port P [--reactor asyncio|epoll] [--write-through]`.
The asyncio reactor is what `ivr serve` runs (docs/contracts.md); the epoll reactor is measured
beside it to show what the asyncio bridge costs.

`--write-through` is an experiment, not a proposal as written: each connection's
`transport.write` sends at once when Twisted's buffer is empty, instead of queueing the bytes,
registering the socket for writability and sending on the next loop turn (two epoll_ctl calls
and one more event per AGI command). It reaches into private transport attributes; it exists to
measure what that buffering costs.
"""

from __future__ import annotations

import argparse


def install_reactor(name: str) -> None:
    """Install the named Twisted reactor before anything imports `twisted.internet.reactor`."""
    if name == "asyncio":
        from twisted.internet import asyncioreactor

        asyncioreactor.install()
    else:
        from twisted.internet import epollreactor

        epollreactor.install()


def _write_through(factory) -> None:
    """Make every connection the factory builds send at once when nothing is queued."""
    build = factory.buildProtocol

    def buildProtocol(addr):
        protocol = build(addr)
        made = protocol.connectionMade

        def connectionMade() -> None:
            transport = protocol.transport
            queue, sock = transport.write, transport.socket

            def write(data: bytes) -> None:
                if not (
                    transport.dataBuffer or transport._tempDataBuffer or transport.disconnecting
                ):
                    try:
                        sent = sock.send(data)
                    except BlockingIOError:
                        sent = 0
                    if sent == len(data):
                        return
                    data = data[sent:]
                queue(data)

            transport.write = write
            made()

        protocol.connectionMade = connectionMade
        return protocol

    factory.buildProtocol = buildProtocol


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--reactor", choices=("asyncio", "epoll"), default="asyncio")
    parser.add_argument("--write-through", action="store_true")
    args = parser.parse_args()
    install_reactor(args.reactor)

    from twisted.internet import reactor

    from benchmarks.agi.flow import SCRIPT, walk
    from ivr.agi import FastAGIFactory

    async def bench_menu(session) -> None:
        flow = walk()
        step = next(flow)
        while True:
            digits = None
            if step.action == "answer":
                await session.answer()
            elif step.action == "stream_file":
                await session.stream_file(*step.args)
            elif step.action == "get_data":
                digits = await session.get_data(*step.args)
            else:
                await session.set_variable(*step.args)
            try:
                step = flow.send(digits)
            except StopIteration:
                return

    factory = FastAGIFactory(flows={SCRIPT: bench_menu})
    if args.write_through:
        _write_through(factory)
    reactor.listenTCP(args.port, factory, backlog=4096, interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main()
