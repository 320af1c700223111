"""The asyncio client: the same vocabulary as ``Client``, with awaitables
that run on comfywire's own runtime and complete on the running loop, so
the loop is never blocked while they wait."""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path
from typing import Any, Deque, Dict, Iterable, List, Optional, Union

from . import _native
from ._client import Job, RunResult, Workflow, _Base, _closed_at_del, _file, _ids, _result, _upload_args, _workflow
from ._settings import PathLike
from ._types import FileRef, Outcome, QueueSnapshot, _outcome_from_dict

__all__ = ["AsyncClient", "AsyncJob", "AsyncEvents"]


class AsyncEvents:
    """``async for event in client.events()``: every event from the moment
    it was made; ends when the client closes."""

    def __init__(self, stream: "_native.EventStream") -> None:
        self._stream = stream
        self._ready: Deque[Any] = deque()

    def __aiter__(self) -> "AsyncEvents":
        return self

    async def __anext__(self) -> Any:
        if not self._ready:
            # Batches: one loop wake-up for everything already queued.
            self._ready.extend(await self._stream.next_batch_async())
        return self._ready.popleft()

    def close(self) -> None:
        """Stops the stream."""
        self._stream.close()


class AsyncJob(Job):
    """A submitted prompt (``state``, ``progress`` and ``outputs`` read the
    client's memory and do not wait on the network)."""

    async def wait(self, timeout: Optional[float] = None) -> RunResult:  # type: ignore[override]
        """Waits for success; raises the prompt's error, or ``WaitTimeout``."""
        return _result(self._jobs, await self._jobs.wait(self.prompt_id, timeout, aio=True))

    def events(self) -> AsyncEvents:  # type: ignore[override]
        """``async for event in job.events()``: this prompt's events from
        its submission on (what already happened replayed from the
        client's record, then live), ending after its ``Finished``."""
        return AsyncEvents(self._jobs.job_events(self.prompt_id))

    async def cancel(self) -> str:  # type: ignore[override]
        """Removes the prompt from the server (see ``Job.cancel``)."""
        return str(await self._jobs.cancel(self.prompt_id, aio=True))

    async def interrupt(self) -> bool:  # type: ignore[override]
        """Stops the prompt, as ``cancel()`` (see ``Job.interrupt``)."""
        return (await self.cancel()) != "not_active"

    def __repr__(self) -> str:
        return f"AsyncJob(prompt_id={self.prompt_id!r})"


class AsyncClient(_Base):
    """An asyncio ComfyUI client (``async with AsyncClient(url) as c``).
    Callbacks registered with ``on`` run on the client's dispatcher thread,
    not on the loop; use ``loop.call_soon_threadsafe`` to hop over."""

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __del__(self) -> None:
        _closed_at_del(self)

    async def close(self) -> None:
        """Closes the socket and releases every callback; completes once a
        callback running on the dispatcher thread has returned."""
        self._closed = True
        await self._native.close(aio=True)
        self._callbacks.clear()

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """Waits until the socket is connected."""
        await self._jobs.wait_connected(timeout, aio=True)

    def events(self) -> AsyncEvents:
        """An async iterator over every event of the client from the moment
        it is made (nothing before is replayed: ``job.events()`` follows
        one prompt without missing any)."""
        return AsyncEvents(self._native.events())

    async def submit(self, workflow: Workflow) -> AsyncJob:
        """Queues a workflow."""
        prompt_id, number, _partial = await self._jobs.submit(_workflow(workflow), aio=True)
        return AsyncJob(self._jobs, prompt_id, number)

    async def run(
        self,
        workflow: Workflow,
        *,
        timeout: Optional[float] = None,
        stall_timeout: Optional[float] = None,
        queue_timeout: Optional[float] = None,
        detach: bool = False,
    ) -> RunResult:
        """Submits and waits for success (see ``Client.run``): a task
        awaiting it that is cancelled, a run out of time, or one ended by the
        client's close (``ClientClosed``), removes its prompt from the
        server unless ``detach=True``. The result's
        ``download``/``read`` block; ``await client.download(result, dir)``
        and ``await client.read(file)`` do not."""
        outcome = await self._jobs.run(_workflow(workflow), timeout, stall_timeout, queue_timeout, detach, aio=True)
        return _result(self._jobs, outcome)

    async def wait(self, prompt_id: str, timeout: Optional[float] = None) -> RunResult:
        """Waits for a submitted prompt."""
        return await AsyncJob(self._jobs, prompt_id, None).wait(timeout)

    def job(self, prompt_id: str) -> AsyncJob:
        """The ``AsyncJob`` of a prompt submitted earlier."""
        return AsyncJob(self._jobs, prompt_id, None)

    @property
    def resumed(self) -> List[AsyncJob]:
        """The jobs re-attached from the journal at start: the prompts a
        previous process with the same ``journal=`` had in flight."""
        return [AsyncJob(self._jobs, prompt_id, None) for prompt_id in self._native.resumed()]

    async def interrupt(self, prompt_id: str) -> bool:
        """Interrupts the prompt only if it is the one running."""
        return bool(await self._jobs.interrupt(prompt_id, aio=True))

    async def queue(self) -> QueueSnapshot:
        """The server's queue."""
        running, pending = await self._jobs.queue(aio=True)
        return QueueSnapshot(tuple(running), tuple(pending))

    async def delete(self, prompt_ids: Union[str, Iterable[str]]) -> None:
        """Deletes pending prompts."""
        await self._jobs.delete(_ids(prompt_ids), aio=True)

    async def clear_queue(self) -> None:
        """Deletes every pending prompt."""
        await self._jobs.clear_queue(aio=True)

    async def history(self) -> List[Outcome]:
        """Finished executions kept in memory, oldest first."""
        return [_outcome_from_dict(d) for d in await self._jobs.history(aio=True)]

    async def server_history(self, prompt_id: str) -> Optional[Dict[str, Any]]:
        """The server's ``/history`` entry of a prompt."""
        entry = await self._jobs.server_history(prompt_id, aio=True)
        return None if entry is None else dict(entry)

    async def system_stats(self) -> Dict[str, Any]:
        """``GET /system_stats``."""
        return dict(await self._jobs.system_stats(aio=True))

    async def read(self, file: FileRef) -> bytes:
        """Downloads one file from ``/view``."""
        return bytes(await self._jobs.view(*_file(file), aio=True))

    async def download(self, result: Outcome, dir: PathLike) -> List[Path]:
        """Downloads every output file of a finished prompt into ``dir``."""
        paths = await self._jobs.download_outputs(result.prompt_id, os.fspath(dir), aio=True)
        return [Path(p) for p in paths]

    async def upload_image(
        self,
        image: Union[bytes, PathLike],
        filename: Optional[str] = None,
        *,
        subfolder: Optional[str] = None,
        type: Optional[str] = None,
        overwrite: bool = False,
    ) -> FileRef:
        """Uploads an image (bytes with a ``filename``, or a path)."""
        name, data = _upload_args(image, filename)
        f, s, t = await self._jobs.upload(name, data, subfolder, type, overwrite, aio=True)
        return FileRef(f, s, t)


