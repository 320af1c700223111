"""A normal first ``run()`` waits (bounded by the connect timeout) for the
socket's first connect before its POST, so it is followed live: no gap and
no reconciliation (the host's rule)."""

from __future__ import annotations

import comfywire
from comfywire.testing import MockServer
from test_cancel import until_end


def test_a_first_run_right_after_construction_has_no_gap(mock: MockServer) -> None:
    mock.set_speed(0)
    with comfywire.Client(mock.url) as client:  # not waited for
        result = client.run(mock.sample_workflow(), timeout=30)
    assert result.had_gap is False
    assert until_end(mock, result.prompt_id) == "succeeded"


def test_a_server_that_never_answers_the_socket_still_gets_the_prompt(mock: MockServer) -> None:
    # No socket within the connect timeout: the first POST goes on (as
    # before), and the prompt is followed by reconciliation.
    mock.inject("refuse_connects", count=1000)
    with comfywire.Client(mock.url, connect_timeout=0.5, polling_after_failures=1) as client:
        result = client.run(mock.sample_workflow(), timeout=30)
    assert until_end(mock, result.prompt_id) == "succeeded"
