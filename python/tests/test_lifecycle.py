"""Lifecycle hints, checked against the server's own counters: a pause
closes the socket and stops retrying, a resume opens a new one, and
network changes and retry-now bring a socket back at once."""

from __future__ import annotations

import time

import comfywire
from comfywire.testing import MockServer


def _until(what: str, done, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_pause_resume_network_changed_and_retry_now(
    mock: MockServer, client: comfywire.Client
) -> None:
    accepted = mock.stats()["connections_accepted"]
    client.pause()
    _until("paused", lambda: client.status.state == "paused")
    _until("the server to see the socket go", lambda: mock.stats()["open_sockets"] == 0)
    time.sleep(0.3)
    assert mock.stats()["connections_accepted"] == accepted, "no retry while paused"
    client.resume()
    client.wait_connected(10)
    _until("a second socket", lambda: mock.stats()["connections_accepted"] == accepted + 1)
    client.network_changed()
    client.retry_now()
    client.wait_connected(10)
    result = client.run(mock.sample_workflow())
    assert client.job(result.prompt_id).state == "succeeded"
    assert mock.stats()["open_sockets"] >= 1
