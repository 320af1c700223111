"""Ingest throughput against the mock's firehose (speed 0): comfywire with
a Python callback and with a Python iterator, beside two pure-Python
baselines (websocket-client + json.loads as in ComfyUI's own example, and
aiohttp + json.loads), all in one run against the same mock.

    pip install websocket-client aiohttp
    python python/bench/firehose.py [--frames 1000000] [--slow-frames 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import threading
import time
import uuid
from typing import Callable, List, Tuple

import comfywire
from comfywire.testing import MockServer

LIFECYCLE = [
    "prompt_queued",
    "execution_started",
    "nodes_cached",
    "node_started",
    "output",
    "node_finished",
    "finished",
    "progress",
]

# The recorded session the firehose cycles through (set from --scenario).
SCENARIO = ["long_run"]


def ws_url(http: str, client_id: str) -> str:
    return http.replace("http://", "ws://") + f"/ws?clientId={client_id}"


def settle(recv_ready: Callable[[], bool]) -> None:
    # Let the connect-time frames (status, feature flags) pass first.
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        if recv_ready():
            deadline = time.monotonic() + 0.3
        time.sleep(0.01)


def bench_websocket_client(mock: MockServer, frames: int) -> Tuple[float, int]:
    import websocket

    client_id = uuid.uuid4().hex
    ws = websocket.WebSocket()
    ws.connect(ws_url(mock.url, client_id))
    ws.settimeout(0.3)
    try:
        while True:
            ws.recv()
    except websocket.WebSocketTimeoutException:
        pass
    ws.settimeout(30)
    got = 0
    start = time.perf_counter()
    hose = mock.firehose(client_id, frames, SCENARIO[0])
    while got < frames:
        out = ws.recv()
        if isinstance(out, str):
            json.loads(out)
        got += 1
    elapsed = time.perf_counter() - start
    hose.wait()
    ws.close()
    return got / elapsed, got


def bench_aiohttp(mock: MockServer, frames: int) -> Tuple[float, int]:
    import aiohttp

    async def main() -> Tuple[float, int]:
        client_id = uuid.uuid4().hex
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url(mock.url, client_id), max_msg_size=0) as ws:
                while True:
                    try:
                        await asyncio.wait_for(ws.receive(), 0.3)
                    except asyncio.TimeoutError:
                        break
                got = 0
                start = time.perf_counter()
                hose = mock.firehose(client_id, frames, SCENARIO[0])
                while got < frames:
                    msg = await ws.receive()
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        json.loads(msg.data)
                    elif msg.type != aiohttp.WSMsgType.BINARY:
                        raise RuntimeError(f"socket ended: {msg.type}")
                    got += 1
                elapsed = time.perf_counter() - start
                await asyncio.get_running_loop().run_in_executor(None, hose.wait)
                return got / elapsed, got

    return asyncio.run(main())


def wait_frames(client: comfywire.Client, target: int) -> float:
    while client.stats()["frames"] < target:
        time.sleep(0.002)  # coarse: the poll itself takes the GIL
    return time.perf_counter()


def bench_callback(mock: MockServer, frames: int) -> Tuple[float, int]:
    """(a) frames/s ingested while a Python callback gets every lifecycle
    event and throttled progress."""
    with comfywire.Client(mock.url) as client:
        client.wait_connected(10)
        time.sleep(0.2)
        seen = [0]
        last = [0.0]

        def on_event(event: object) -> None:
            seen[0] += 1
            last[0] = time.perf_counter()

        client.on(LIFECYCLE, on_event)
        base = client.stats()["frames"]
        start = time.perf_counter()
        hose = mock.firehose(client.client_id, frames, SCENARIO[0])
        done = wait_frames(client, base + frames)
        hose.wait()
        # The callbacks must have caught up too.
        while True:
            n = seen[0]
            time.sleep(0.1)
            if seen[0] == n:
                break
        end = max(done, last[0])
        return frames / (end - start), seen[0]


def bench_iterator(mock: MockServer, frames: int) -> Tuple[float, int]:
    """(b) events/s delivered unthrottled to a Python iterator."""
    with comfywire.Client(mock.url, progress_interval_ms=0, preview_interval_ms=0) as client:
        client.wait_connected(10)
        time.sleep(0.2)
        stream = client.events()
        while stream.next(timeout=0.05) is not None:
            pass
        base = client.stats()["frames"]
        got = 0
        start = time.perf_counter()
        last = start
        hose = mock.firehose(client.client_id, frames, SCENARIO[0])
        while True:
            e = stream.next(timeout=0.2)
            if e is None:
                if client.stats()["frames"] >= base + frames:
                    break
                continue
            got += 1
            last = time.perf_counter()
        hose.wait()
        stream.close()
        return got / (last - start), got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument(
        "--slow-frames",
        type=int,
        default=100_000,
        help="frames for websocket-client, which reads about 10k frames/s (its rate is steady well before)",
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--scenario",
        default="long_run",
        help="recorded session to cycle through (long_run: the progress / preview mix of a real sampler run)",
    )
    args = parser.parse_args()
    SCENARIO[0] = args.scenario
    benches: List[Tuple[str, str, Callable[[MockServer, int], Tuple[float, int]]]] = [
        ("websocket-client + json.loads", "frames/s", bench_websocket_client),
        ("aiohttp + json.loads", "frames/s", bench_aiohttp),
        ("(a) comfywire, callback (lifecycle + throttled progress)", "frames/s", bench_callback),
        ("(b) comfywire, iterator, unthrottled", "events/s", bench_iterator),
    ]
    results = {}
    with MockServer(speed=0) as mock:
        for name, unit, fn in benches:
            rates, counts = [], []
            frames = args.slow_frames if fn is bench_websocket_client else args.frames
            for _ in range(args.runs):
                rate, count = fn(mock, frames)
                rates.append(rate)
                counts.append(count)
            results[name] = statistics.median(rates)
            print(
                f"{name:58s} {statistics.median(rates):>12,.0f} {unit}"
                f"   (runs: {', '.join(f'{r:,.0f}' for r in rates)}; delivered {counts[-1]:,})",
                flush=True,
            )
    base = results["aiohttp + json.loads"]
    a = results["(a) comfywire, callback (lifecycle + throttled progress)"]
    b = results["(b) comfywire, iterator, unthrottled"]
    print(f"(a) / aiohttp = {a / base:.1f}x (target >= 10x)")
    print(f"(b) / aiohttp = {b / base:.1f}x (target >= 2x)")


if __name__ == "__main__":
    main()
