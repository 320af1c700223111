"""Closed means closed: after ``close()`` every call raises ``ClientClosed``
and a stream made or running at close ends. Errors fit Python: a bad value
raises ``InvalidArgument`` (a ``ComfyWireError`` and a ``ValueError``), a
wrong type ``TypeError``; ``__version__``; a client never closed warns."""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
from typing import Any, List

import pytest

import comfywire
from comfywire.testing import MockServer


def test_every_call_after_close_raises_client_closed(mock: MockServer) -> None:
    client = comfywire.Client(mock.url)
    client.wait_connected(10)
    made_before = client.events()
    job = client.submit(mock.sample_workflow())
    client.close()
    calls = [
        client.queue,
        client.system_stats,
        client.events,
        client.history,
        lambda: client.submit(mock.sample_workflow()),
        lambda: client.run(mock.sample_workflow()),
        lambda: client.server_history(job.prompt_id),
        lambda: client.on("progress", print),
        job.events,
        job.cancel,
        lambda: job.wait(1),
    ]
    for call in calls:
        with pytest.raises(comfywire.ClientClosed):
            call()
    # A stream made before the close ends rather than blocking.
    assert list(made_before) is not None


def test_a_stream_waiting_at_close_ends(mock: MockServer) -> None:
    client = comfywire.Client(mock.url)
    client.wait_connected(10)
    stream = client.events()
    waiting = threading.Event()
    ended: List[bool] = []

    def read() -> None:
        waiting.set()
        for _ in stream:
            pass
        ended.append(True)

    reader = threading.Thread(target=read)
    reader.start()
    assert waiting.wait(10)
    client.close()
    reader.join(20)
    assert ended == [True]


def test_bad_values_raise_invalid_argument_and_wrong_types_type_error(mock: MockServer) -> None:
    assert issubclass(comfywire.InvalidArgument, comfywire.ComfyWireError)
    assert issubclass(comfywire.InvalidArgument, ValueError)
    with pytest.raises(comfywire.InvalidArgument):
        comfywire.Client("not a url")
    with comfywire.Client(mock.url) as client:
        with pytest.raises(comfywire.InvalidArgument):
            client.on("no_such_kind", print)
        with pytest.raises(comfywire.InvalidArgument):
            client.submit("{not json")
        with pytest.raises(comfywire.InvalidArgument):
            client.submit("[1, 2]")  # JSON, but not an object of nodes
        with pytest.raises(TypeError):
            client.submit(42)  # type: ignore[arg-type]


def test_version_and_typed_outcome(client: comfywire.Client, mock: MockServer) -> None:
    assert isinstance(comfywire.__version__, str) and comfywire.__version__.count(".") == 2
    job = client.submit(mock.sample_workflow())
    finished = [e for e in job.events() if isinstance(e, comfywire.Finished)]
    assert isinstance(finished[0].outcome, comfywire.Outcome)


def test_a_client_never_closed_warns(mock: MockServer) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = comfywire.Client(mock.url)
        del client
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) for w in caught), caught
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        with comfywire.Client(mock.url):
            pass
        gc.collect()


@pytest.mark.skipif(not __import__('os').path.exists('/proc/self/task'), reason='Linux only')
def test_the_dispatcher_thread_is_named(client: comfywire.Client, mock: MockServer) -> None:
    names: List[str] = []
    done = threading.Event()

    def on_finish(_: Any) -> None:
        # The OS thread's name (Python names threads it did not start Dummy-N).
        with open(f"/proc/self/task/{threading.get_native_id()}/comm") as comm:
            names.append(comm.read().strip())
        done.set()

    client.on("finished", on_finish)
    client.run(mock.sample_workflow(), timeout=30)
    assert done.wait(10)
    assert names[0].startswith("comfywire"), names


def test_progress_interval_is_in_seconds() -> None:
    def progress_events(**interval: float) -> int:
        # A fresh mock each time: the same recording, replayed the same way.
        with MockServer(speed=0) as mock, comfywire.Client(mock.url, **interval) as client:  # type: ignore[arg-type]
            stream = client.events()  # live from before the submission
            client.submit(mock.workflow("long_run"))
            count = 0
            for event in stream:
                count += isinstance(event, comfywire.Progress)
                if isinstance(event, comfywire.Finished):
                    return count
            raise AssertionError("the stream ended before the prompt")

    every = progress_events(progress_interval=0.0)
    coalesced = progress_events(progress_interval=60.0)
    assert every == progress_events(progress_interval_ms=0)
    assert 0 < coalesced < every, (coalesced, every)
