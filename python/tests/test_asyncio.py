"""AsyncClient: awaitables on the running loop that never block it."""

from __future__ import annotations

import asyncio

import pytest

import comfywire
from comfywire.testing import MockServer


def test_the_loop_keeps_ticking_during_run(mock: MockServer) -> None:
    mock.set_speed(5.0)

    async def main() -> "tuple[comfywire.RunResult, list[float]]":
        ticks: list[float] = []
        stop = asyncio.Event()

        async def ticker() -> None:
            loop = asyncio.get_running_loop()
            while not stop.is_set():
                ticks.append(loop.time())
                await asyncio.sleep(0.01)

        async def busy() -> int:
            n = 0
            while not stop.is_set():
                n += sum(range(1000))
                await asyncio.sleep(0)
            return n

        async with comfywire.AsyncClient(mock.url) as client:
            await client.wait_connected(10)
            t = asyncio.ensure_future(ticker())
            b = asyncio.ensure_future(busy())
            result = await client.run(mock.workflow("long_run"), timeout=60)
            stop.set()
            await t
            await b
        return result, ticks

    result, ticks = asyncio.run(main())
    assert result.status == "succeeded"
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert len(ticks) > 20
    assert max(gaps) < 0.25, f"the loop stalled for {max(gaps):.3f}s"


def test_async_events_and_jobs(mock: MockServer) -> None:
    async def main() -> None:
        async with comfywire.AsyncClient(mock.url) as client:
            await client.wait_connected(10)
            events = client.events()
            job = await client.submit(mock.sample_workflow())
            assert isinstance(job, comfywire.AsyncJob)
            seen = []
            async for e in events:
                seen.append(e)
                if isinstance(e, comfywire.Finished):
                    break
            result = await job.wait(timeout=30)
            assert result.status == "succeeded"
            assert any(isinstance(e, comfywire.Output) for e in seen)
            assert job.state == "succeeded"
            data = await client.read(result.files[0])
            assert data.startswith(b"\x89PNG")
            q = await client.queue()
            assert isinstance(q, comfywire.QueueSnapshot)
            assert (await client.history())[-1].prompt_id == result.prompt_id
            assert (await client.server_history(result.prompt_id)) is not None

    asyncio.run(main())


def test_async_errors_and_gather(mock: MockServer) -> None:
    async def main() -> None:
        async with comfywire.AsyncClient(mock.url) as client:
            results = await asyncio.gather(*[client.run(mock.sample_workflow(), timeout=60) for _ in range(4)])
            assert len({r.prompt_id for r in results}) == 4
            mock.inject("validation_error_next_prompt")
            with pytest.raises(comfywire.ValidationError):
                await client.run(mock.sample_workflow())

    asyncio.run(main())
