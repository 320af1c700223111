"""Crash stress of the cancel, timeout and exit paths: a loop of runs in a
child interpreter with ``faulthandler`` on, sync and asyncio, with callbacks
registered and a firehose running, each run cancelled (Ctrl-C-like drop,
task cancel), timed out or finished, and the interpreter exiting with work
still in flight. A crash (SIGSEGV, abort) fails the test with the
faulthandler trace. ``COMFYWIRE_STRESS_RUNS`` sets the count (a short loop
by default; the long test sets a few hundred)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

RUNS = int(os.environ.get("COMFYWIRE_STRESS_RUNS", "12"))

CHILD = textwrap.dedent(
    '''
    import asyncio, faulthandler, sys
    faulthandler.enable()
    import comfywire
    from comfywire.testing import MockServer

    runs = int(sys.argv[1])
    mock = MockServer(speed=50.0)
    done = 0
    seen = []

    async def async_round(i):
        client = comfywire.AsyncClient(mock.url, timeout=30)
        client.on(None, lambda e: seen.append(type(e).__name__))
        job = await client.submit(mock.workflow("long_run"))
        task = asyncio.ensure_future(client.run(mock.sample_workflow()))
        if i % 3 == 0:
            await asyncio.sleep(0)
            task.cancel()
        elif i % 3 == 1:
            try:
                await asyncio.wait_for(client.wait(job.prompt_id), 0.001)
            except (asyncio.TimeoutError, comfywire.ComfyWireError):
                pass
        try:
            await task
        except (asyncio.CancelledError, comfywire.ComfyWireError):
            pass
        async for _ in job.events():
            break
        if i % 4 != 3:  # every fourth is left to the garbage collector
            await client.close()

    for i in range(runs):
        with comfywire.Client(mock.url) as client:
            client.on("progress", lambda e: seen.append(e))
            client.wait_connected(10)
            hose = mock.firehose(client.client_id, 200)
            try:
                client.run(mock.workflow("long_run"), timeout=0.05 if i % 2 else 0.01)
            except comfywire.DeadlineExceeded:
                pass
            job = client.submit(mock.sample_workflow())
            if i % 2:
                job.cancel()
            hose.wait()
        asyncio.run(async_round(i))
        done += 1
    # Exit with a client open and a run in flight on another thread.
    last = comfywire.Client(mock.url)
    last.submit(mock.workflow("long_run"))
    print("runs", done, flush=True)
    '''
)


def test_cancel_timeout_and_exit_paths_do_not_crash(tmp_path: Path) -> None:
    script = tmp_path / "stress.py"
    script.write_text(CHILD, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-W", "ignore", str(script), str(RUNS)],
        capture_output=True,
        text=True,
        timeout=60 + 10 * RUNS,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stderr[-4000:]}"
    assert f"runs {RUNS}" in done.stdout
