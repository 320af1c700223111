"""Events arrive in batches (the stream converts a batch per GIL hold, the
dispatcher calls a batch per GIL hold): order, fields and failure reports
must come through whole."""

from __future__ import annotations

import threading
import time
from typing import Callable, List

import comfywire
from comfywire.testing import MockServer

LIFECYCLE = ["execution_started", "node_started", "node_finished", "output", "finished"]


def settle(count: Callable[[], int]) -> None:
    """Waits until `count()` stops growing (the firehose has drained)."""
    last = -1
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = count()
        if now == last:
            return
        last = now
        time.sleep(0.3)
    raise AssertionError("still growing after 20 s")


def key(e: object) -> tuple:
    return (type(e).__name__, getattr(e, "prompt_id", None), getattr(e, "node", None))


def test_stream_batches_keep_order_and_every_field(mock: MockServer) -> None:
    with comfywire.Client(mock.url, progress_interval_ms=0, preview_interval_ms=0) as client:
        client.wait_connected(10)
        stream = client.events()
        by_callback: List[object] = []
        client.on(LIFECYCLE, by_callback.append)
        hose = mock.firehose(client.client_id, 3000, "long_run")
        pulled: List[object] = []
        # Read slower than the socket fills the queue, so batches form.
        while True:
            e = stream.next(timeout=1.0)
            if e is None:
                break
            pulled.append(e)
        assert hose.wait() == 3000
        settle(lambda: len(by_callback))

    lifecycle = [key(e) for e in pulled if type(e).kind in LIFECYCLE]
    assert len(lifecycle) > 20
    assert lifecycle == [key(e) for e in by_callback], "stream and callbacks agree on order"

    finished = [e for e in pulled if isinstance(e, comfywire.Finished)]
    assert finished and all(f.status == "succeeded" for f in finished)
    assert all(isinstance(f.outcome, comfywire.Outcome) for f in finished)
    started = [e for e in pulled if isinstance(e, comfywire.ExecutionStarted)]
    assert [s.prompt_id for s in started][: len(finished)] == [f.prompt_id for f in finished]

    progress = [e for e in pulled if isinstance(e, comfywire.Progress)]
    previews = [e for e in pulled if isinstance(e, comfywire.Preview)]
    # Coalesced under pressure (latest wins), but never all of them.
    assert len(progress) >= len(finished) and previews
    last_value = {}
    for p in progress:
        assert isinstance(p.prompt_id, str) and len(p.prompt_id) == 36
        assert isinstance(p.node, str) and p.node
        assert p.display_node is None or isinstance(p.display_node, str)
        assert 0 < p.value <= p.max and 0.0 <= p.overall <= 1.0
        # Per node of a prompt, steps only go forward.
        assert p.value >= last_value.get((p.prompt_id, p.node), 0)
        last_value[(p.prompt_id, p.node)] = p.value
        # A field holds one string: reading it twice gives the same object
        # (a getter that made a string per read would fail here).
        assert p.prompt_id is p.prompt_id and p.node is p.node
    for v in previews:
        assert v.mime == "image/jpeg" and v.image[:2] == b"\xff\xd8"
        assert v.prompt_id is None or isinstance(v.prompt_id, str)
    # Every event of a prompt falls between its start and its end.
    open_prompts = set()
    for e in pulled:
        if isinstance(e, comfywire.ExecutionStarted):
            open_prompts.add(e.prompt_id)
        elif isinstance(e, comfywire.Finished):
            open_prompts.discard(e.prompt_id)
        elif isinstance(e, (comfywire.Progress, comfywire.NodeStarted, comfywire.NodeFinished)):
            assert e.prompt_id in open_prompts, e
    for e in pulled:
        assert repr(e).startswith(type(e).__name__ + "(")


def test_a_raising_callback_costs_its_batch_nothing(mock: MockServer) -> None:
    with comfywire.Client(mock.url, progress_interval_ms=0) as client:
        client.wait_connected(10)
        calls: List[object] = []
        threads = set()

        def flaky(e: object) -> None:
            calls.append(e)
            threads.add(threading.get_ident())
            if len(calls) % 2:
                raise RuntimeError(f"refused call {len(calls)}")

        seen: List[object] = []
        errors: List[comfywire.CallbackError] = []
        client.on(LIFECYCLE, flaky)
        client.on(LIFECYCLE, seen.append)
        client.on(comfywire.CallbackError, errors.append)
        stream = client.events()
        hose = mock.firehose(client.client_id, 3000, "long_run")
        assert hose.wait() == 3000
        settle(lambda: len(seen))
        settle(lambda: len(errors))

        assert len(calls) > 20
        assert [key(e) for e in calls] == [key(e) for e in seen], "no event lost to a failure"
        assert len(errors) == (len(calls) + 1) // 2
        for i, err in enumerate(errors):
            failed = calls[2 * i]
            assert err.failed_kind == type(failed).kind
            assert err.prompt_id == failed.prompt_id
            assert f"refused call {2 * i + 1}" in err.error
        assert client.stats()["callback_failures"] == len(errors)
        assert len(threads) == 1
        reported = []
        while True:
            e = stream.next(timeout=0.5)
            if e is None:
                break
            if isinstance(e, comfywire.CallbackError):
                reported.append(e.error)
        assert reported == [e.error for e in errors], "the pull stream gets every report, in order"
