"""Interrupts, a socket cut mid-run, a server restart, deadlines."""

from __future__ import annotations

import threading

import pytest

import comfywire
from comfywire.testing import MockServer


def first_progress(client: comfywire.Client) -> "tuple[threading.Event, comfywire.Subscription]":
    seen = threading.Event()
    return seen, client.on("progress", lambda e: seen.set())


def test_interrupt_ends_the_prompt_as_interrupted(client: comfywire.Client, mock: MockServer) -> None:
    mock.set_speed(2.0)
    seen, sub = first_progress(client)
    job = client.submit(mock.workflow("long_run"))
    assert seen.wait(30)
    sub.cancel()
    assert job.interrupt() is True
    with pytest.raises(comfywire.PromptInterrupted) as info:
        job.wait(timeout=30)
    assert info.value.code == 12
    assert job.state == "interrupted"


def test_a_drop_mid_run_still_ends_in_success_with_all_outputs(client: comfywire.Client, mock: MockServer) -> None:
    mock.set_speed(5.0)
    stream = client.events()
    mock.inject("drop_sockets_after_frames", frames=30)
    result = client.run(mock.workflow("long_run"), timeout=60)
    assert result.status == "succeeded"
    assert result.had_gap
    assert client.server_history(result.prompt_id)["outputs"] == result.outputs
    seen = []
    for e in stream:
        seen.append(e)
        if isinstance(e, comfywire.Finished):
            break
    outputs = [e for e in seen if isinstance(e, comfywire.Output)]
    assert sorted(o.node for o in outputs) == sorted(result.outputs)
    assert any(isinstance(e, comfywire.ConnectionChanged) and e.state == "reconnecting" for e in seen)
    assert client.stats()["reconnects"] >= 1


def test_a_server_restart_is_prompt_lost(client: comfywire.Client, mock: MockServer) -> None:
    mock.set_speed(2.0)
    seen, sub = first_progress(client)
    job = client.submit(mock.workflow("long_run"))
    assert seen.wait(30)
    sub.cancel()
    mock.restart()
    with pytest.raises(comfywire.PromptLost) as info:
        job.wait(timeout=60)
    assert "restart" in info.value.reason
    assert info.value.code == 13


def test_run_raises_prompt_lost_on_restart(client: comfywire.Client, mock: MockServer) -> None:
    mock.set_speed(2.0)
    seen, _ = first_progress(client)
    threading.Thread(target=lambda: seen.wait(30) and mock.restart(), daemon=True).start()
    with pytest.raises(comfywire.PromptLost):
        client.run(mock.workflow("long_run"), timeout=60)


def test_stall_deadline(client: comfywire.Client, mock: MockServer) -> None:
    mock.set_speed(2.0)
    seen, _ = first_progress(client)
    threading.Thread(target=lambda: seen.wait(30) and mock.inject("stall", millis=5000), daemon=True).start()
    with pytest.raises(comfywire.DeadlineExceeded) as info:
        client.run(mock.workflow("long_run"), stall_timeout=0.5, timeout=60)
    assert info.value.deadline == "stall"
    assert isinstance(info.value, TimeoutError)


def test_connection_failed_when_nothing_listens() -> None:
    with comfywire.Client("http://127.0.0.1:9", request_timeout=2, connect_timeout=1) as c:
        with pytest.raises(comfywire.ConnectionFailed):
            c.queue()
