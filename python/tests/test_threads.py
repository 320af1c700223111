"""One client used from several threads at once."""

from __future__ import annotations

import threading

import comfywire
from comfywire.testing import MockServer


def test_calls_from_several_threads(client: comfywire.Client, mock: MockServer) -> None:
    results: list = []
    errors: list = []

    def work() -> None:
        try:
            results.append(client.run(mock.sample_workflow(), timeout=60))
            client.queue()
            client.history()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len({r.prompt_id for r in results}) == 6
    assert all(r.status == "succeeded" for r in results)


def test_other_threads_run_while_one_waits(client: comfywire.Client, mock: MockServer) -> None:
    mock.set_speed(5.0)
    counter = [0]
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            counter[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        client.run(mock.workflow("long_run"), timeout=60)
    finally:
        stop.set()
        t.join()
    assert counter[0] > 10_000, "the GIL is released while run() waits"
