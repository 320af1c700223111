"""Test your app against real recorded ComfyUI sessions: the Rust mock
server, in-process.

    with MockServer(speed=0) as mock, Client(mock.url) as client:
        result = client.run(mock.sample_workflow())
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from . import _native

__all__ = ["MockServer", "Firehose"]

Firehose = _native.Firehose


class MockServer:
    """A mock ComfyUI on a free port of 127.0.0.1 replaying the embedded
    recordings (or ``*.jsonl`` traces from ``traces_dir``). ``speed`` is the
    playback speed: 1.0 as recorded, 0 without any delay."""

    def __init__(
        self,
        speed: float = 1.0,
        *,
        default_scenario: str = "success_single",
        traces_dir: Optional[str] = None,
    ) -> None:
        self._native = _native.MockServer(speed, default_scenario, traces_dir)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return str(self._native.url)

    def scenarios(self) -> List[str]:
        """Names of the loaded recordings."""
        return list(self._native.scenarios())

    def sample_workflow(self) -> Dict[str, Any]:
        """The workflow of the ``success_single`` recording."""
        return self.workflow("success_single")

    def workflow(self, name: str) -> Dict[str, Any]:
        """The workflow that replays recording ``name``."""
        wf = self._native.workflow(name)
        if wf is None:
            raise KeyError(name)
        return dict(wf)

    def inject(self, fault: str, **params: Any) -> None:
        """Injects a fault: ``drop_sockets_after_frames`` (``frames``),
        ``drop_sockets_now``, ``refuse_connects`` (``count``), ``stall``
        (``millis``), ``deaf``, ``restart``, ``garbage``,
        ``truncated_binary``, ``unknown_type``, ``unknown_binary``,
        ``invalid_utf8``, ``reserved_bits``, ``oversize`` (``bytes``), ``fail_next_prompt``,
        ``validation_error_next_prompt``."""
        self._native.inject(fault, params or None)

    def restart(self) -> None:
        """Drops every socket and forgets queue and history (a server
        restart)."""
        self._native.restart()

    def set_speed(self, speed: float) -> None:
        """Changes the playback speed."""
        self._native.set_speed(speed)

    def stats(self) -> Dict[str, int]:
        """What the mock has done: connections, prompts, frames sent, ..."""
        return dict(self._native.stats())

    def ledger(self) -> Dict[str, Any]:
        """The server's own record of every ``POST /prompt``: ``entries``,
        each with ``prompt_id``, ``client_id``, ``enqueued``, ``runs`` and
        ``end`` (``succeeded``, ``failed``, ``interrupted``, ``deleted``,
        ``restarted``, or ``None`` while pending or running). The oracle of
        tests: it shares nothing with the client."""
        return dict(self._native.ledger())

    def end_of(self, prompt_id: str) -> Optional[str]:
        """How ``prompt_id`` left the server by its ledger (``None`` while
        it is pending or running, or unknown)."""
        for entry in self.ledger().get("entries") or []:
            if prompt_id in (entry.get("prompt_id"), entry.get("requested_prompt_id")) and entry.get("end"):
                return str(entry["end"])
        return None

    def queue_holds(self, prompt_id: str) -> bool:
        """True while ``prompt_id`` is pending or running on the server (its
        own queue, read without HTTP)."""
        return bool(self._native.queue_holds(prompt_id))

    def firehose(self, client_id: str, frames: int, scenario: str = "success_single") -> "_native.Firehose":
        """Starts sending ``frames`` frames of ``scenario`` to the socket of
        ``client_id`` as fast as it takes them; ``.wait()`` answers the
        number sent."""
        return self._native.firehose(client_id, frames, scenario)

    def shutdown(self) -> None:
        """Stops the server. Idempotent."""
        self._native.shutdown()

    def __enter__(self) -> "MockServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"MockServer(url={self.url!r})"
