"""``Event``: the union of the client's typed event classes (made in Rust,
``comfywire._native``), in a module of its own so the client and the pool
modules name the same type at runtime."""

from __future__ import annotations

from typing import Union

from ._native import (
    BadFrame,
    Blocked,
    CallbackError,
    ConnectionChanged,
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
)

#: Any event a client delivers.
Event = Union[
    ConnectionChanged,
    Status,
    FeatureFlags,
    PromptQueued,
    ExecutionStarted,
    NodesCached,
    NodeStarted,
    Progress,
    Preview,
    ProgressText,
    Output,
    NodeFinished,
    Blocked,
    Finished,
    Message,
    BadFrame,
    HttpFailed,
    CallbackError,
]

__all__ = ["Event"]
