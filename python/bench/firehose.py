"""Ingest throughput against the mock's synthetic firehose: comfywire with
a Python callback and with a Python iterator, beside two pure-Python
baselines (websocket-client + json.loads as in ComfyUI's own example, and
aiohttp + json.loads), all in one run against the same mock.

The mock frames every prompt of the stream once and writes it to the TCP
stream with ``write_all`` (``POST /mock/firehose`` with a ``mix``), so its
cost per frame is near zero and the reader sets the rate. The default mix
is the reader's own prompts (comfywire submits them to the stalled mock
first, so they are queued there but never played); ``--mix foreign`` makes
every prompt another client's. 10 nodes x 20 steps, a ``progress_state``
snapshot per node (``--per-step`` for one per step, as ComfyUI 0.3.64
sends), a 30 KB preview after every 50th ``progress``, one image per
``executed``.

    pip install websocket-client aiohttp
    python python/bench/firehose.py [--frames 1000000] [--slow-frames 100000] [--runs 3] [--mix own|foreign]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import threading
import time
import urllib.request
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple

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

# The stream's shape (set from the arguments): see `Mix` in the mock.
MIX: Dict[str, Any] = {}


class Pour(threading.Thread):
    """``POST /mock/firehose`` with the mix, in a thread: the answer comes
    once every frame is written. ``wait()`` answers the frames sent."""

    def __init__(self, mock: MockServer, client_id: str, frames: int, own_ids: Optional[List[str]] = None) -> None:
        super().__init__(daemon=True)
        mix = dict(MIX)
        if own_ids is not None:
            mix["own_ids"] = own_ids
        else:
            mix["own"], mix["foreign"] = 0, 1
        self.body = json.dumps({"client_id": client_id, "frames": frames, "mix": mix}).encode()
        self.url = mock.url + "/mock/firehose"
        self.sent = 0
        self.start()

    def run(self) -> None:
        request = urllib.request.Request(self.url, data=self.body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=600) as reply:
            self.sent = json.loads(reply.read())["frames_sent"]

    def wait(self) -> int:
        self.join()
        return self.sent


def frames_per_prompt() -> int:
    per_step = 2 if MIX.get("snapshots") == "per_step" else 1
    return 5 + MIX["nodes"] * (3 + MIX["steps"] * per_step)


def own_prompts(mock: MockServer, client: comfywire.Client, frames: int) -> Optional[List[str]]:
    """With the own mix: stalls the mock and submits enough prompts for the
    stream (queued there, never played); their ids go into the mix."""
    if not OWN[0]:
        return None
    mock.inject("stall", millis=3_600_000)
    workflow = mock.sample_workflow()
    return [client.submit(workflow).prompt_id for _ in range(frames // frames_per_prompt() + 2)]


OWN = [True]


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
    hose = Pour(mock, client_id, frames)
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
                hose = Pour(mock, client_id, frames)
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
        own = own_prompts(mock, client, frames)
        time.sleep(0.2)
        seen = [0]
        last = [0.0]

        def on_event(event: object) -> None:
            seen[0] += 1
            last[0] = time.perf_counter()

        client.on(LIFECYCLE, on_event)
        base = client.stats()["frames"]
        start = time.perf_counter()
        hose = Pour(mock, client.client_id, frames, own)
        done = wait_frames(client, base + frames)
        hose.wait()
        # The callbacks must have caught up too.
        while True:
            n = seen[0]
            time.sleep(0.1)
            if seen[0] == n:
                break
        end = max(done, last[0])
    mock.restart()
    return frames / (end - start), seen[0]


def bench_iterator(mock: MockServer, frames: int) -> Tuple[float, int]:
    """(b) events/s delivered unthrottled to a Python iterator."""
    with comfywire.Client(mock.url, progress_interval_ms=0, preview_interval_ms=0) as client:
        client.wait_connected(10)
        own = own_prompts(mock, client, frames)
        time.sleep(0.2)
        stream = client.events()
        while stream.next(timeout=0.05) is not None:
            pass
        base = client.stats()["frames"]
        got = 0
        start = time.perf_counter()
        last = start
        hose = Pour(mock, client.client_id, frames, own)
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
    mock.restart()
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
    parser.add_argument("--mix", choices=["own", "foreign"], default="own", help="whose prompts the stream carries")
    parser.add_argument("--per-step", action="store_true", help="a progress_state snapshot before every step")
    args = parser.parse_args()
    OWN[0] = args.mix == "own"
    MIX.update(
        nodes=10,
        steps=20,
        snapshots="per_step" if args.per_step else "per_node",
        preview_bytes=30_000,
        preview_every=50,
        output_images=1,
    )
    benches: List[Tuple[str, str, Callable[[MockServer, int], Tuple[float, int]]]] = [
        ("websocket-client + json.loads", "frames/s", bench_websocket_client),
        ("aiohttp + json.loads", "frames/s", bench_aiohttp),
        ("(a) comfywire, callback (lifecycle + throttled progress)", "frames/s", bench_callback),
        ("(b) comfywire, iterator, unthrottled", "events/s", bench_iterator),
    ]
    results = {}
    print(f"mix: {args.mix} prompts, {MIX}; median of {args.runs} runs, one bench after another")
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
