"""Typed events from the pull iterator."""

from __future__ import annotations

import dataclasses

import pytest

import comfywire
from comfywire.testing import MockServer


def collect_until_finished(stream: comfywire.EventStream, prompt_id: str) -> list:
    seen = []
    for event in stream:
        seen.append(event)
        if isinstance(event, comfywire.Finished) and event.prompt_id == prompt_id:
            return seen
    raise AssertionError("stream ended")


def test_events_are_typed_frozen_and_readable(client: comfywire.Client, mock: MockServer) -> None:
    stream = client.events()
    result = client.run(mock.sample_workflow(), timeout=30)
    seen = collect_until_finished(stream, result.prompt_id)
    kinds = [type(e).__name__ for e in seen]
    for k in ("ExecutionStarted", "Progress", "Output", "Finished"):
        assert k in kinds, kinds
    progress = next(e for e in seen if isinstance(e, comfywire.Progress))
    assert progress.kind == "progress" == comfywire.Progress.kind
    assert 0 < progress.value <= progress.max and 0.0 <= progress.overall <= 1.0
    assert repr(progress).startswith("Progress(prompt_id=")
    with pytest.raises(AttributeError):
        progress.value = 3  # type: ignore[misc]
    output = next(e for e in seen if isinstance(e, comfywire.Output))
    assert output.output == result.outputs[output.node]
    finished = seen[-1]
    assert finished.status == "succeeded"
    assert isinstance(finished.outcome, comfywire.Outcome)
    assert dataclasses.replace(finished.outcome).outputs == result.outputs
    assert sum(isinstance(e, comfywire.Finished) for e in seen) == 1


def test_previews_carry_image_bytes(client: comfywire.Client, mock: MockServer) -> None:
    stream = client.events()
    result = client.run(mock.workflow("preview_metadata"), timeout=30)
    seen = collect_until_finished(stream, result.prompt_id)
    previews = [e for e in seen if isinstance(e, comfywire.Preview)]
    assert previews
    assert previews[0].mime.startswith("image/") and len(previews[0].image) > 0
    assert "bytes>" in repr(previews[0])


def test_next_with_timeout_and_end_of_stream(mock: MockServer) -> None:
    import time

    c = comfywire.Client(mock.url)
    c.wait_connected(10)
    stream = c.events()
    while stream.next(timeout=0.2) is not None:
        pass  # whatever was already on its way
    started = time.monotonic()
    assert stream.next(timeout=0.3) is None
    assert time.monotonic() - started >= 0.25
    c.close()
    rest = list(stream)  # ends once the client is closed
    assert all(not isinstance(e, comfywire.Progress) for e in rest)
