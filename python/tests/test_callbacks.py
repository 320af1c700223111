"""Callbacks: many of them, one that raises, and releasing them."""

from __future__ import annotations

import gc
import logging
import threading
import weakref

import pytest

import comfywire
from comfywire.testing import MockServer


def test_many_callbacks_and_a_raising_one(client: comfywire.Client, mock: MockServer, caplog: pytest.LogCaptureFixture) -> None:
    # Per callback, the events of each prompt: events that came before the
    # last registration (connection, status) reach only the callbacks
    # registered by then, so the check is on the run's own events.
    counts: list = [{} for _ in range(50)]
    done = threading.Event()
    errors: list = []

    def counter(i: int):
        def cb(event: object) -> None:
            key = getattr(event, "prompt_id", None)
            counts[i][key] = counts[i].get(key, 0) + 1

        return cb

    subs = [client.on(None, counter(i)) for i in range(50)]

    def boom(event: comfywire.Progress) -> None:
        raise ValueError("boom from a callback")

    subs.append(client.on("progress", boom))
    subs.append(client.on(comfywire.CallbackError, errors.append))
    subs.append(client.on(comfywire.Finished, lambda e: done.set()))
    stream = client.events()
    with caplog.at_level(logging.ERROR, logger="comfywire"):
        result = client.run(mock.sample_workflow(), timeout=30)
        assert done.wait(10)
    assert result.status == "succeeded"
    seen = [c.get(result.prompt_id, 0) for c in counts]
    assert len(set(seen)) == 1 and seen[0] > 0, f"every callback saw every event of the run: {seen}"
    assert errors and isinstance(errors[0], comfywire.CallbackError)
    assert errors[0].failed_kind == "progress" and "boom from a callback" in errors[0].error
    assert any("raised" in r.getMessage() and r.exc_info for r in caplog.records)
    pulled = []
    while True:
        e = stream.next(timeout=2)
        if e is None:
            break
        pulled.append(e)
    assert any(isinstance(e, comfywire.CallbackError) for e in pulled)
    assert client.stats()["callback_failures"] >= 1
    for s in subs:
        assert s.cancel()
    assert client.stats()["callbacks"] == 0


def test_callbacks_run_in_order_on_one_thread(client: comfywire.Client, mock: MockServer) -> None:
    threads = set()
    kinds = []
    done = threading.Event()

    def cb(e: object) -> None:
        threads.add(threading.current_thread().ident)
        kinds.append(type(e).__name__)
        if isinstance(e, comfywire.Finished):
            done.set()

    with client.on(None, cb):
        client.run(mock.sample_workflow(), timeout=30)
        assert done.wait(10)
    assert len(threads) == 1 and threading.get_ident() not in threads
    assert kinds.index("ExecutionStarted") < kinds.index("Finished")


def test_unsubscribe_frees_the_callback(client: comfywire.Client) -> None:
    class Handler:
        def __call__(self, event: object) -> None:
            pass

    handler = Handler()
    ref = weakref.ref(handler)
    sub = client.on("progress", handler)
    del handler
    gc.collect()
    assert ref() is not None, "kept while subscribed"
    sub.cancel()
    gc.collect()
    assert ref() is None, "released on unsubscribe"


def test_a_callback_cycle_through_the_client_is_collected(mock: MockServer) -> None:
    class App:
        def __init__(self) -> None:
            self.client = comfywire.Client(mock.url)
            self.client.on("progress", self.on_progress)

        def on_progress(self, event: object) -> None:
            pass

    app = App()
    ref = weakref.ref(app)
    del app
    gc.collect()
    gc.collect()
    assert ref() is None, "the collector sees the callables the native client holds"


def test_close_releases_callbacks(mock: MockServer) -> None:
    def cb(e: object) -> None:
        pass

    ref = weakref.ref(cb)
    c = comfywire.Client(mock.url)
    c.on(None, cb)
    del cb
    c.close()
    gc.collect()
    assert ref() is None


def test_debug_logging_reaches_python_logging(mock: MockServer, caplog: pytest.LogCaptureFixture) -> None:
    comfywire.enable_debug_logging()
    try:
        with caplog.at_level(logging.DEBUG, logger="comfywire"):
            with comfywire.Client(mock.url, token="s3cret-token") as c:
                c.wait_connected(10)
                c.queue()
            import time

            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not any("connect" in r.getMessage() for r in caplog.records):
                time.sleep(0.05)
    finally:
        comfywire.disable_debug_logging()
    messages = [r.getMessage() for r in caplog.records if r.name == "comfywire"]
    assert any("connect" in m for m in messages), messages
    assert not any("s3cret-token" in m for m in messages)
