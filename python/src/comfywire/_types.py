"""Plain result records: outcomes, node timings, files, queue and status."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

__all__ = [
    "NodeTiming",
    "NodeError",
    "Outcome",
    "FileRef",
    "QueueSnapshot",
    "ConnectionStatus",
]


@dataclass(frozen=True)
class NodeTiming:
    """A node's part in a run."""

    id: str
    display_node: Optional[str]
    #: ``cached``, ``running``, ``done``, ``failed`` or ``interrupted``.
    phase: str
    #: Run time in seconds, when both ends are known.
    duration: Optional[float]


@dataclass(frozen=True)
class NodeError:
    """The server's error payload of a failed prompt."""

    node_id: Optional[str]
    node_type: Optional[str]
    exception_type: str
    exception_message: str
    traceback: Tuple[str, ...]


@dataclass(frozen=True)
class FileRef:
    """A file on the server (``type`` is ``output``, ``input`` or ``temp``)."""

    filename: str
    subfolder: str = ""
    type: str = "output"


@dataclass(frozen=True)
class Outcome:
    """How a prompt ended (or where it is)."""

    prompt_id: str
    #: ``submitted``, ``queued``, ``running``, ``succeeded``, ``failed``,
    #: ``interrupted`` or ``lost``.
    status: str
    #: UI outputs by node id.
    outputs: Dict[str, Any] = field(repr=False)
    nodes: Tuple[NodeTiming, ...] = field(repr=False)
    cached: Tuple[str, ...] = field(repr=False)
    error: Optional[NodeError] = None
    lost_reason: Optional[str] = None
    #: Start to end, in seconds.
    duration: Optional[float] = None
    #: True when the socket was down during the run and history filled in.
    had_gap: bool = False

    @property
    def timings(self) -> Dict[str, float]:
        """Run time in seconds of every node that ran, by node id."""
        return {n.id: n.duration for n in self.nodes if n.duration is not None}

    @property
    def files(self) -> List[FileRef]:
        """Every file among the outputs, each once."""
        from ._native import output_files

        return [FileRef(f, s, t) for (f, s, t) in output_files(self.outputs)]


def _seconds(ms: Optional[float]) -> Optional[float]:
    return None if ms is None else ms / 1000.0


def _outcome_fields(d: Dict[str, Any]) -> Dict[str, Any]:
    err = d.get("error")
    return dict(
        prompt_id=d.get("prompt_id", ""),
        status=d.get("status", ""),
        outputs=d.get("outputs") or {},
        nodes=tuple(
            NodeTiming(n["id"], n.get("display_node"), n.get("phase", ""), _seconds(n.get("duration_ms")))
            for n in d.get("nodes") or []
        ),
        cached=tuple(d.get("cached") or []),
        error=None
        if not err
        else NodeError(
            err.get("node_id"),
            err.get("node_type"),
            err.get("exception_type", ""),
            err.get("exception_message", ""),
            tuple(err.get("traceback") or []),
        ),
        lost_reason=d.get("lost_reason"),
        duration=_seconds(d.get("duration_ms")),
        had_gap=bool(d.get("had_gap")),
    )


def _outcome_from_dict(d: Dict[str, Any]) -> Outcome:
    """The ``Outcome`` of the native module's outcome dict."""
    return Outcome(**_outcome_fields(d))


@dataclass(frozen=True)
class QueueSnapshot:
    """The server's queue, by prompt id."""

    running: Tuple[str, ...]
    pending: Tuple[str, ...]


@dataclass(frozen=True)
class ConnectionStatus:
    """The connection state now."""

    #: ``idle``, ``connecting``, ``connected``, ``reconnecting``,
    #: ``polling``, ``paused`` or ``closed``.
    state: str
    attempt: int
    next_retry_ms: Optional[int]
    last_error: Optional[str]
