"""Ctrl-C during a blocking wait raises KeyboardInterrupt promptly."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

import comfywire
from comfywire.testing import MockServer


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX only")
@pytest.mark.parametrize("how", ["run", "wait", "events"])
def test_ctrl_c_interrupts_a_blocking_call(client: comfywire.Client, mock: MockServer, how: str) -> None:
    mock.set_speed(0.5)  # a run that takes far longer than the test
    main = threading.main_thread().ident
    assert main == threading.get_ident()
    sent = []

    def press_ctrl_c() -> None:
        time.sleep(0.3)
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        if how == "run":
            client.run(mock.workflow("long_run"))
        elif how == "wait":
            client.submit(mock.workflow("long_run")).wait()
        else:
            for _ in client.events():
                pass
    assert sent and time.monotonic() - sent[0] < 1.0, "KeyboardInterrupt came promptly"
    # The client is still usable afterwards.
    mock.set_speed(50.0)
    assert client.queue() is not None
