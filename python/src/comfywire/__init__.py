"""comfywire: a ComfyUI client that never loses a prompt.

``Client`` blocks (releasing the GIL; Ctrl-C works), ``AsyncClient`` is for
asyncio; both speak the same vocabulary: ``run``, ``submit`` -> ``Job``,
``events()``, ``on(kind, callback)``, queue and history calls. The work is
done by a Rust core (``comfywire._native``).
"""

from __future__ import annotations


from . import _native
from ._native import (
    BadFrame,
    Blocked,
    CallbackError,
    ConnectionChanged,
    EventStream,
    ExecutionStarted,
    FeatureFlags,
    Finished,
    HttpFailed,
    Message,
    NodeFinished,
    NodesCached,
    NodeStarted,
    Output,
    Preview,
    Progress,
    ProgressText,
    PromptQueued,
    Status,
    disable_debug_logging,
    enable_debug_logging,
)
from ._events import Event
from ._aio import AsyncClient, AsyncEvents, AsyncJob
from ._client import Client, Job, RunResult, Subscription, Workflow
from ._errors import (
    ClientClosed,
    EventsOverflow,
    ResponseTooLarge,
    ComfyWireError,
    InvalidArgument,
    ConnectionFailed,
    DeadlineExceeded,
    ExecutionError,
    HttpError,
    PromptInterrupted,
    PromptLost,
    ValidationError,
    WaitTimeout,
)
from ._types import ConnectionStatus, FileRef, NodeError, NodeTiming, Outcome, QueueSnapshot
from ._pool import (
    AsyncPool,
    Move,
    Pool,
    PoolEvent,
    PoolFinished,
    PoolOutcome,
    PromptMoved,
    ServerEvent,
    ServerSpec,
    ServerStats,
)

#: The package version (the Rust crates' version).
__version__: str = _native.__version__


__all__ = [
    "AsyncClient",
    "AsyncEvents",
    "AsyncJob",
    "BadFrame",
    "Blocked",
    "CallbackError",
    "Client",
    "ClientClosed",
    "EventsOverflow",
    "ResponseTooLarge",
    "ComfyWireError",
    "InvalidArgument",
    "__version__",
    "ConnectionChanged",
    "ConnectionFailed",
    "ConnectionStatus",
    "DeadlineExceeded",
    "Event",
    "EventStream",
    "ExecutionError",
    "ExecutionStarted",
    "FeatureFlags",
    "FileRef",
    "Finished",
    "HttpError",
    "HttpFailed",
    "Job",
    "Message",
    "NodeError",
    "NodeFinished",
    "NodeStarted",
    "NodeTiming",
    "NodesCached",
    "Outcome",
    "Output",
    "Preview",
    "Progress",
    "ProgressText",
    "PromptInterrupted",
    "PromptLost",
    "PromptQueued",
    "QueueSnapshot",
    "RunResult",
    "Status",
    "Subscription",
    "ValidationError",
    "WaitTimeout",
    "Workflow",
    "disable_debug_logging",
    "enable_debug_logging",
    # One client over many servers (_pool.py).
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
