"""The benchmark menu on panoramisk's FastAGI server (`panoramisk.fast_agi.Application`).

`python -m benchmarks.agi.serve_panoramisk --port P`: plain asyncio, panoramisk's own request
handler and result parser, the shared `flow.walk()` decisions.
"""

from __future__ import annotations

import argparse
import asyncio

from panoramisk.fast_agi import Application, Request

from benchmarks.agi.flow import SCRIPT, walk


async def bench_menu(request: Request) -> None:
    """Walk the menu; stop at the first error result (hang-up, 511, -1), as a flow would."""
    flow = walk()
    step = next(flow)
    while True:
        result = await request.send_command(step.agi_line())
        if "error" in result:
            return
        digits = result["result"][0] if step.action == "get_data" else None
        try:
            step = flow.send(digits)
        except StopIteration:
            return


async def serve(port: int) -> None:
    app = Application(loop=asyncio.get_running_loop())
    app.add_route(SCRIPT, bench_menu)
    server = await asyncio.start_server(app.handler, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
