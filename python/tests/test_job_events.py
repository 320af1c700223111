"""``job.events()``: a prompt's own stream, from submission on, that cannot
miss: made late it replays what the client's record says happened, and it
ends after the prompt's ``Finished``. ``client.events()`` stays "from now
on". Skipped outputs of a partially valid workflow reach the result."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any, List

import pytest

import comfywire
from comfywire.testing import MockServer


def kinds(events: List[Any]) -> List[str]:
    return [type(e).__name__ for e in events]


def test_a_stream_made_after_the_end_replays_it_and_ends(client: comfywire.Client, mock: MockServer) -> None:
    mock.set_speed(0)
    job = client.submit(mock.sample_workflow())
    job.wait(20)
    events = list(job.events())  # ends on its own
    names = kinds(events)
    assert names[0] == "PromptQueued" and names[-1] == "Finished", names
    assert names.count("Finished") == 1
    assert "Output" in names
    assert all(getattr(e, "prompt_id", job.prompt_id) == job.prompt_id for e in events)
    last = events[-1]
    assert isinstance(last, comfywire.Finished) and last.outcome.status == "succeeded"


def test_a_stream_made_mid_run_misses_nothing_and_ends(client: comfywire.Client, mock: MockServer) -> None:
    job = client.submit(mock.workflow("long_run"))
    events = list(job.events())
    names = kinds(events)
    assert names[0] == "PromptQueued" and names[-1] == "Finished", names
    assert names.count("PromptQueued") == 1 and names.count("ExecutionStarted") == 1
    # Every output the server recorded came exactly once.
    outputs = [e.node for e in events if isinstance(e, comfywire.Output)]
    assert sorted(outputs) == sorted(set(outputs))
    assert set(outputs) == set(job.wait(20).outputs)


@pytest.mark.parametrize("run", range(5))
def test_asyncio_job_events_at_speed_zero_always_end(mock: MockServer, run: int) -> None:
    mock.set_speed(0)

    async def main() -> List[str]:
        async with comfywire.AsyncClient(mock.url) as client:
            job = await client.submit(mock.sample_workflow())
            return [type(e).__name__ async for e in job.events()]

    names = asyncio.run(asyncio.wait_for(main(), 30))
    assert names[-1] == "Finished"


def test_skipped_outputs_are_on_the_result_and_warned(client: comfywire.Client, mock: MockServer) -> None:
    with pytest.warns(UserWarning, match="skipped"):
        result = client.run(mock.workflow("partial_validation"), timeout=30)
    assert result.skipped_outputs, result
    assert all(isinstance(k, str) for k in result.skipped_outputs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert client.run(mock.sample_workflow(), timeout=30).skipped_outputs == {}
