"""The Python peer of the hub benchmark (core/benches/hub.rs): a `websockets` server that
keeps its clients in a dict of sets by topic (seed 004's design) and fans out with
`websockets.broadcast`, the library's fast path. Prints `PORT <n>`; on
{"type":"bench","count":M} from a client it sends M messages to the topic; {"type":"quit"}
ends it."""

import asyncio
import json
import sys

from websockets.asyncio.server import broadcast, serve

PAYLOAD = '{"type":"data","topic":"bench","data":"' + "x" * 60 + '"}'
topics: dict[str, set] = {}


async def handler(ws) -> None:
    subs = topics.setdefault("bench", set())
    subs.add(ws)
    try:
        await ws.send('{"type":"welcome"}')
        async for raw in ws:
            try:
                m = json.loads(raw)
            except ValueError:
                continue
            if m.get("type") == "bench":
                for _ in range(int(m.get("count", 1))):
                    broadcast(topics["bench"], PAYLOAD)
            elif m.get("type") == "quit":
                sys.exit(0)
    finally:
        subs.discard(ws)


async def main() -> None:
    async with serve(handler, "127.0.0.1", 0, backlog=1024, compression=None, ping_interval=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"PORT {port}", flush=True)
        await asyncio.Future()


asyncio.run(main())
