"""Callbacks that call back: closing the client, dropping its last
reference, unsubscribing, submitting and running from inside a callback
never deadlock, also while a firehose keeps the dispatcher busy."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from typing import Any, Callable, Dict, List

import pytest

import comfywire
from comfywire.testing import MockServer

#: What a call back into the client that must return at once may take
#: (generous, for a loaded CI machine).
AT_ONCE = 2.0
#: Frames the firehose sends: far more than the client reads before a
#: callback closes it, so a socket closed mid-firehose cuts it short.
FLOOD = 100_000


def unthrottled(mock: MockServer) -> comfywire.Client:
    """A connected client that makes every step and preview an event."""
    client = comfywire.Client(mock.url, progress_interval_ms=0, preview_interval_ms=0)
    client.wait_connected(10)
    return client


def until(condition: Callable[[], bool], limit: float = 10.0) -> bool:
    """Waits (boundedly) for ``condition``."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def frames_past(native: Any, base: int, frames: int) -> bool:
    """Until the client read ``frames`` more frames than ``base``: the
    socket kept delivering while the callback held the dispatcher, so the
    hand-off to it is full."""
    return until(lambda: int(native.stats()["frames"]) >= base + frames)


def in_thread(work: Callable[[], object], limit: float = 10.0) -> bool:
    """Runs ``work`` on a daemon thread; True if it returned in time (a
    deadlock fails the test instead of hanging it)."""
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(limit)
    return not thread.is_alive()


def test_close_from_a_callback_returns_at_once_and_completes_after_it(mock: MockServer) -> None:
    client = unthrottled(mock)
    base = int(client.stats()["frames"])
    took: Dict[str, Any] = {}
    calls: List[int] = []
    done = threading.Event()

    def on_event(event: object) -> None:
        calls.append(1)
        if len(calls) > 1:
            return
        took["loaded"] = frames_past(client._native, base, 2000)
        started = time.monotonic()
        client.close()
        took["elapsed"] = time.monotonic() - started
        done.set()

    client.on(None, on_event)
    hose = mock.firehose(client.client_id, FLOOD, "long_run")
    assert done.wait(30), "the callback never finished: close from a callback deadlocked"
    assert took["loaded"], "the firehose never got ahead of the callback"
    assert took["elapsed"] < AT_ONCE, f"close from a callback took {took['elapsed']:.2f} s"
    # A close from another thread waits for the whole close, and returns.
    assert in_thread(client.close), "a second close after a close from a callback hangs"
    assert len(calls) == 1, "no call after the close"
    assert client.status.state == "closed"
    with pytest.raises(comfywire.ClientClosed):
        client.submit(mock.sample_workflow())
    assert hose.wait() < FLOOD, "the socket closed mid-firehose"


def test_the_last_reference_dropped_in_a_callback_under_a_firehose(mock: MockServer) -> None:
    holder = {"client": unthrottled(mock)}
    client_ref = weakref.ref(holder["client"])
    native = holder["client"]._native
    client_id = holder["client"].client_id
    base = int(native.stats()["frames"])
    took: Dict[str, Any] = {}
    done = threading.Event()

    def on_event(event: object) -> None:
        client = holder.pop("client", None)
        if client is None:
            return
        took["loaded"] = frames_past(client._native, base, 2000)
        started = time.monotonic()
        # The last reference: Client.__del__ closes it here, on its own
        # dispatcher thread.
        del client
        took["elapsed"] = time.monotonic() - started
        done.set()

    holder["client"].on(None, on_event)
    hose = mock.firehose(client_id, FLOOD, "long_run")
    assert done.wait(30), "the callback never finished: __del__ on the dispatcher deadlocked"
    assert took["loaded"], "the firehose never got ahead of the callback"
    assert took["elapsed"] < AT_ONCE, f"dropping the client took {took['elapsed']:.2f} s"
    gc.collect()
    assert client_ref() is None
    assert until(lambda: native.status()["state"] == "closed")
    assert in_thread(lambda: native.close()), "the close __del__ began never completes"
    assert native.stats()["callbacks"] == 0
    assert hose.wait() < FLOOD, "the socket closed mid-firehose"


def test_a_callback_unsubscribes_itself(mock: MockServer) -> None:
    with unthrottled(mock) as client:
        calls: List[float] = []
        subscription: List[comfywire.Subscription] = []
        finished = threading.Event()

        def once(event: object) -> None:
            calls.append(0.0)
            started = time.monotonic()
            subscription[0].cancel()
            calls[-1] = time.monotonic() - started

        # Progress only: nothing comes before the run, so the subscription
        # is in the list before the first call.
        subscription.append(client.on("progress", once))
        client.on(comfywire.Finished, lambda e: finished.set())
        client.run(mock.sample_workflow(), timeout=30)
        assert finished.wait(10)
        assert len(calls) == 1, f"called {len(calls)} times"
        assert calls[0] < AT_ONCE, f"unsubscribing itself took {calls[0]:.2f} s"
        assert client.stats()["callbacks"] == 1


def test_no_call_starts_after_cancel_from_another_thread_returns(mock: MockServer) -> None:
    with unthrottled(mock) as client:
        inside = threading.Event()
        entered = threading.Event()
        calls: List[int] = []

        def busy(event: object) -> None:
            inside.set()
            calls.append(1)
            if len(calls) == 1:
                entered.set()
                # Not synchronisation: a call that lasts (without the GIL),
                # so that a cancel which did not wait would return inside it.
                time.sleep(0.3)
            inside.clear()

        subscription = client.on(None, busy)
        hose = mock.firehose(client.client_id, 5000, "long_run")
        assert entered.wait(10)
        assert in_thread(subscription.cancel), "cancel while the callback runs hangs"
        assert not inside.is_set(), "cancel returned while the call was still running"
        seen = len(calls)
        assert hose.wait() == 5000
        assert until(lambda: int(client.stats()["frames"]) > 4000)
        assert len(calls) == seen, "a call started after cancel returned"


def test_submit_and_run_from_a_callback(mock: MockServer) -> None:
    with unthrottled(mock) as client:
        results: Dict[str, Any] = {}
        done = threading.Event()

        def chain(event: comfywire.Finished) -> None:
            if results:
                return
            try:
                results["job"] = client.submit(mock.sample_workflow())
                results["run"] = client.run(mock.sample_workflow(), timeout=30)
            except BaseException as e:  # reported below, not swallowed
                results["error"] = e
            done.set()

        client.on(comfywire.Finished, chain)
        first = client.run(mock.sample_workflow(), timeout=30)
        assert first.status == "succeeded"
        assert done.wait(60)
        assert "error" not in results, results.get("error")
        assert results["run"].status == "succeeded"
        assert results["job"].wait(30).status == "succeeded"
