"""A run owns its prompt: Ctrl-C in ``run()``, a cancelled task awaiting
``AsyncClient.run()`` and a ``DeadlineExceeded`` remove it from the server
(deleted while queued, interrupted while running) unless ``detach=True``;
``Job.cancel()`` and ``Job.interrupt()`` follow the same rule (the host's
``Jobs::cancel``). Checked against the mock's own ledger and queue."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from typing import Any, List, Optional

import pytest

import comfywire
from comfywire.testing import MockServer


def until_end(mock: MockServer, prompt_id: str, limit: float = 20.0) -> Optional[str]:
    """The prompt's end by the mock's ledger, polled (bounded) until it has
    one: the removal of a cancelled run happens in the background."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        end = mock.end_of(prompt_id)
        if end is not None:
            return end
        time.sleep(0.01)
    return None


def started(client: comfywire.Client) -> "tuple[threading.Event, List[str]]":
    """An event set (with the prompt id) when a prompt starts running."""
    event, ids = threading.Event(), []

    def on_start(e: Any) -> None:
        ids.append(e.prompt_id)
        event.set()

    client.on("execution_started", on_start)
    return event, ids


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX only")
def test_ctrl_c_in_run_interrupts_its_running_prompt(client: comfywire.Client, mock: MockServer) -> None:
    mock.set_speed(0.5)
    ids: List[str] = []

    def on_start(e: Any) -> None:
        ids.append(e.prompt_id)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C once the prompt runs

    client.on("execution_started", on_start)
    with pytest.raises(KeyboardInterrupt):
        client.run(mock.workflow("long_run"))
    assert ids
    assert until_end(mock, ids[0]) == "interrupted"
    assert not mock.queue_holds(ids[0])


def test_a_run_out_of_time_removes_its_prompt_unless_detached(client: comfywire.Client, mock: MockServer) -> None:
    mock.set_speed(0.5)
    with pytest.raises(comfywire.DeadlineExceeded):
        client.run(mock.workflow("long_run"), timeout=0.3)
    entries = mock.ledger()["entries"]
    assert len(entries) == 1
    owned = entries[0]["prompt_id"]
    # The delete or interrupt was sent before the error reached the caller;
    # the server ends an interrupted prompt at its next step.
    assert until_end(mock, owned) in ("interrupted", "deleted")

    with pytest.raises(comfywire.DeadlineExceeded):
        client.run(mock.workflow("long_run"), timeout=0.3, detach=True)
    detached = mock.ledger()["entries"][-1]["prompt_id"]
    assert mock.queue_holds(detached), "a detached run leaves its prompt on the server"
    assert mock.end_of(detached) is None
    assert client.job(detached).cancel() in ("interrupted", "deleted")


def test_cancel_deletes_a_queued_job_and_interrupts_a_running_one(client: comfywire.Client, mock: MockServer) -> None:
    mock.set_speed(0.5)
    is_running, _ = started(client)
    running = client.submit(mock.workflow("long_run"))
    queued = client.submit(mock.workflow("long_run"))
    assert is_running.wait(20)
    # interrupt() on a queued job does not silently do nothing: it leaves the queue.
    assert queued.interrupt() is True
    assert mock.end_of(queued.prompt_id) == "deleted"
    assert mock.ledger()["entries"][1]["runs"] == 0
    assert running.cancel() == "interrupted"
    assert until_end(mock, running.prompt_id) == "interrupted"
    assert running.cancel() == "not_active"
    with pytest.raises(comfywire.PromptInterrupted):
        running.wait(20)


def test_cancelling_the_task_awaiting_run_interrupts_its_prompt(mock: MockServer) -> None:
    mock.set_speed(0.5)

    async def main() -> str:
        async with comfywire.AsyncClient(mock.url) as client:
            await client.wait_connected(10)
            loop = asyncio.get_running_loop()
            begun: "asyncio.Future[str]" = loop.create_future()
            def on_start(e: Any) -> None:
                def settle() -> None:
                    if not begun.done():
                        begun.set_result(e.prompt_id)

                loop.call_soon_threadsafe(settle)

            client.on("execution_started", on_start)
            task = asyncio.ensure_future(client.run(mock.workflow("long_run")))
            prompt_id = await asyncio.wait_for(begun, 20)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return prompt_id

    prompt_id = asyncio.run(main())
    assert until_end(mock, prompt_id) == "interrupted"


def test_async_job_cancel_follows_the_same_rule(mock: MockServer) -> None:
    mock.set_speed(0.5)

    async def main() -> None:
        async with comfywire.AsyncClient(mock.url) as client:
            job = await client.submit(mock.workflow("long_run"))
            queued = await client.submit(mock.workflow("long_run"))
            assert await queued.cancel() == "deleted"
            async for event in job.events():
                if isinstance(event, comfywire.ExecutionStarted):
                    assert await job.interrupt() is True
            assert until_end(mock, job.prompt_id) == "interrupted"

    asyncio.run(main())
