"""One client over many ComfyUI servers: ``Pool`` (blocking) and
``AsyncPool`` (asyncio). Each submission goes to the healthy server with
the least work (its queue plus ours there, over its weight) that has every
node class the workflow uses; a prompt still queued on a server that is
lost moves to another; whatever happens, a submission has exactly one
outcome, which names the server(s) it went to and why it moved. The pool
itself is ``comfywire-pool`` in Rust; this module only maps types."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _native
from ._client import Workflow
from ._events import Event
from ._settings import PathLike, settings_json
from ._types import FileRef, Outcome, _outcome_from_dict

__all__ = [
    "AsyncPool",
    "Move",
    "Pool",
    "PoolEvent",
    "PoolFinished",
    "PoolOutcome",
    "PromptMoved",
    "ServerEvent",
    "ServerSpec",
    "ServerStats",
]

#: A server of a pool: its URL, or a dict with ``url`` and optionally
#: ``label``, ``weight`` and any setting of its own (``token``,
#: ``basic_auth``, ``headers``, ``request_timeout_s``, ...: the settings
#: file's keys).
ServerSpec = Union[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Move:
    """A submission moving from one server to another."""

    from_server: str
    to_server: str
    reason: str


@dataclass(frozen=True)
class PoolOutcome:
    """The one outcome of a pool submission."""

    #: Its id: its prompt id on every server it went to.
    prompt_id: str
    #: ``succeeded``, ``failed``, ``interrupted`` or ``lost``.
    status: str
    #: The server it ended on.
    server: str
    #: Every server it went to, in order.
    servers: Tuple[str, ...]
    #: Every move, in order.
    moves: Tuple[Move, ...]
    #: Why it was lost, when it was.
    lost_reason: Optional[str] = None
    #: The server's record of it (outputs, node timings, error), when it
    #: has one (not when the pool gave it up with its server).
    outcome: Optional[Outcome] = field(default=None, repr=False)

    @property
    def succeeded(self) -> bool:
        """True when it succeeded."""
        return self.status == "succeeded"

    @property
    def outputs(self) -> Dict[str, Any]:
        """UI outputs by node id (empty without a record)."""
        return {} if self.outcome is None else dict(self.outcome.outputs)

    @property
    def files(self) -> List[FileRef]:
        """Every file among the outputs, each once (fetch them from
        ``server``: ``pool`` does not wrap ``/view``)."""
        return [] if self.outcome is None else self.outcome.files


@dataclass(frozen=True)
class ServerStats:
    """One server's figures."""

    label: str
    #: Taking work now (socket up, or polling over HTTP).
    healthy: bool
    #: Its queue as its last ``status`` frame said.
    queue_remaining: int
    #: Pool submissions there now.
    in_flight: int
    #: Pool submissions that ended there.
    done: int
    #: Pool submissions that moved away from it.
    failed_over: int


@dataclass(frozen=True)
class ServerEvent:
    """An event of one server's client: ``event`` is one of the client's
    typed event classes (``comfywire.Event``: ``Progress``,
    ``ConnectionChanged``, ...). The end of a pool submission comes as
    ``PoolFinished`` instead, once."""

    #: The label of the server that sent it.
    server: str
    #: The client's event.
    event: Event

    @property
    def kind(self) -> str:
        """The event's kind name (``progress``, ``connection``, ...)."""
        return str(self.event.kind)

    @property
    def prompt_id(self) -> Optional[str]:
        """The prompt it is about, when there is one."""
        prompt_id = getattr(self.event, "prompt_id", None)
        return None if prompt_id is None else str(prompt_id)


@dataclass(frozen=True)
class PromptMoved:
    """A submission moved to another server."""

    kind: ClassVar[str] = "moved"
    #: The submission.
    prompt_id: str
    #: Where from, where to and why.
    move: Move

    @property
    def server(self) -> str:
        """The server it moved to."""
        return self.move.to_server


@dataclass(frozen=True)
class PoolFinished:
    """A submission's one outcome."""

    kind: ClassVar[str] = "finished"
    #: The outcome.
    outcome: PoolOutcome

    @property
    def prompt_id(self) -> str:
        """The submission."""
        return self.outcome.prompt_id

    @property
    def server(self) -> str:
        """The server it ended on."""
        return self.outcome.server


#: What ``Pool.next_event`` hands out.
PoolEvent = Union[ServerEvent, PromptMoved, PoolFinished]


def _pool_event(pulled: Optional[Tuple[str, str, Any]]) -> Optional[PoolEvent]:
    if pulled is None:
        return None
    kind, server, payload = pulled
    if kind == "server":
        return ServerEvent(server, payload)
    if kind == "moved":
        d = dict(payload)
        return PromptMoved(d["prompt_id"], Move(d["from"], d["to"], d["reason"]))
    return PoolFinished(_pool_outcome(dict(payload)["outcome"]))


def _pool_outcome(d: Dict[str, Any]) -> PoolOutcome:
    record = d.get("outcome")
    return PoolOutcome(
        prompt_id=d["prompt_id"],
        status=d["status"],
        server=d["server"],
        servers=tuple(d.get("servers") or ()),
        moves=tuple(Move(m["from"], m["to"], m["reason"]) for m in d.get("moves") or ()),
        lost_reason=d.get("lost_reason"),
        outcome=None if record is None else _outcome_from_dict(record),
    )


def _stats(items: List[Dict[str, Any]]) -> List[ServerStats]:
    return [
        ServerStats(
            s["label"], bool(s["healthy"]), s["queue_remaining"], s["in_flight"], s["done"], s["failed_over"]
        )
        for s in items
    ]


def _server_entry(server: ServerSpec) -> Dict[str, Any]:
    if isinstance(server, str):
        return {"url": server}
    entry = dict(server)
    if not entry.get("url"):
        raise ValueError(f"a server needs a url: {server!r}")
    return entry


def _pool_settings(
    servers: Sequence[ServerSpec],
    grace: Optional[float],
    resubmit_running: Optional[bool],
    basic_auth: Optional[Tuple[str, str]],
    headers: Optional[Mapping[str, str]],
    options: Dict[str, Any],
) -> str:
    """The keywords given, as settings JSON with ``servers``: the explicit
    layer, over the ``COMFYWIRE_*`` environment and the settings file (no
    servers here: the settings file's ``servers`` are used)."""
    if isinstance(servers, str):
        raise TypeError("servers is a list of URLs or dicts, not one URL")
    settings: Dict[str, Any] = json.loads(settings_json(basic_auth, headers, options))
    entries = [_server_entry(s) for s in servers]
    if entries:
        settings["servers"] = entries
    if grace is not None:
        settings["pool_grace_s"] = grace
    if resubmit_running is not None:
        settings["pool_resubmit_running"] = resubmit_running
    return json.dumps(settings)


class _PoolBase:
    def __init__(
        self,
        servers: Sequence[ServerSpec] = (),
        *,
        grace: Optional[float] = None,
        resubmit_running: Optional[bool] = None,
        token: Optional[str] = None,
        basic_auth: Optional[Tuple[str, str]] = None,
        headers: Optional[Mapping[str, str]] = None,
        connect_timeout: Optional[float] = None,
        request_timeout: Optional[float] = None,
        config_file: Optional[PathLike] = None,
    ) -> None:
        options = dict(token=token, connect_timeout=connect_timeout, request_timeout=request_timeout)
        self._native = _native.Pool(
            _pool_settings(servers, grace, resubmit_running, basic_auth, headers, options),
            None if config_file is None else os.fspath(config_file),
        )

    @property
    def labels(self) -> List[str]:
        """The servers' labels, in configuration order."""
        return list(self._native.labels())

    def stats(self) -> List[ServerStats]:
        """Figures per server, in configuration order."""
        return _stats(self._native.stats())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(servers={self.labels!r})"


class Pool(_PoolBase):
    """A blocking pool of ComfyUI servers (``with Pool([url1, url2]) as
    pool``). ``servers`` are URLs or dicts (``{"url", "label", "weight",
    "token", ...}``); without any, the settings file's ``servers`` are
    used. ``grace`` is how long a server may be unreachable before its
    queued prompts move (default 10 s); ``resubmit_running`` moves prompts
    that were running there too (default: they end ``lost``). ``token``,
    ``basic_auth`` and ``headers`` go to every server that sets none of its
    own. Every call that waits releases the GIL and can be stopped with
    Ctrl-C."""

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        native = getattr(self, "_native", None)
        if native is not None:
            try:
                native.close()
            except Exception:
                pass

    def wait_healthy(self, count: Optional[int] = None, timeout: float = 10.0) -> int:
        """Waits until ``count`` servers (default: all) take work, at most
        ``timeout`` seconds; answers how many do."""
        want = len(self.labels) if count is None else count
        return int(self._native.wait_healthy(want, timeout))

    def submit(self, workflow: Workflow) -> str:
        """Submits to the server with the least work that can run it;
        answers the submission's id. Raises ``ValidationError`` when no
        server has every node class it uses (``detail["missing"]``)."""
        return str(self._native.submit(workflow))

    def wait(self, prompt_id: str, timeout: Optional[float] = None) -> PoolOutcome:
        """The submission's one outcome, whatever it is (look at
        ``status``); ``WaitTimeout`` after ``timeout`` seconds (it goes
        on)."""
        return _pool_outcome(self._native.outcome(prompt_id, timeout))

    def run(self, workflow: Workflow, timeout: Optional[float] = None) -> PoolOutcome:
        """Submits and waits for the one outcome."""
        return _pool_outcome(self._native.run(workflow, timeout))

    def map(self, workflows: Sequence[Workflow], timeout: Optional[float] = None) -> List[PoolOutcome]:
        """Submits every workflow at once, then waits for each outcome (in
        the order given), ``timeout`` seconds at most for each."""
        ids = [self.submit(w) for w in workflows]
        return [self.wait(i, timeout) for i in ids]

    def interrupt(self, prompt_id: str) -> bool:
        """Interrupts a submission on the server that runs it; True if it
        did."""
        return bool(self._native.interrupt(prompt_id))

    def next_event(self, timeout: float = 0.0) -> Optional[PoolEvent]:
        """The next event, waiting up to ``timeout`` seconds (``None`` when
        none came); queued from the first call on: a ``ServerEvent`` (a
        server's typed client event), a ``PromptMoved`` or a
        ``PoolFinished`` (once per submission). Each has ``kind`` and
        ``server``."""
        return _pool_event(self._native.next_event(timeout))

    def close(self) -> None:
        """Closes every client; waits in progress raise ``ClientClosed``.
        Idempotent."""
        self._native.close()


class AsyncPool(_PoolBase):
    """The asyncio pool (``async with AsyncPool([url1, url2]) as pool``):
    the arguments and calls of ``Pool``, as awaitables that run on
    comfywire's own runtime and never block the loop."""

    async def __aenter__(self) -> "AsyncPool":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def wait_healthy(self, count: Optional[int] = None, timeout: float = 10.0) -> int:
        """Waits until ``count`` servers (default: all) take work."""
        want = len(self.labels) if count is None else count
        return int(await self._native.wait_healthy(want, timeout, aio=True))

    async def submit(self, workflow: Workflow) -> str:
        """Submits; answers the submission's id."""
        return str(await self._native.submit(workflow, aio=True))

    async def wait(self, prompt_id: str, timeout: Optional[float] = None) -> PoolOutcome:
        """The submission's one outcome, whatever it is."""
        return _pool_outcome(await self._native.outcome(prompt_id, timeout, aio=True))

    async def run(self, workflow: Workflow, timeout: Optional[float] = None) -> PoolOutcome:
        """Submits and waits for the one outcome."""
        return _pool_outcome(await self._native.run(workflow, timeout, aio=True))

    async def interrupt(self, prompt_id: str) -> bool:
        """Interrupts a submission where it runs."""
        return bool(await self._native.interrupt(prompt_id, aio=True))

    async def next_event(self, timeout: float = 0.0) -> Optional[PoolEvent]:
        """The next event (see ``Pool.next_event``), or ``None`` after
        ``timeout`` seconds."""
        return _pool_event(await self._native.next_event(timeout, aio=True))

    async def close(self) -> None:
        """Closes every client. Idempotent."""
        await self._native.close(aio=True)
