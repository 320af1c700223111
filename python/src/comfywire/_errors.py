"""Exceptions. The native module raises them through `_from_native`, so each
carries the stable numeric `code` of every comfywire binding."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ._types import Outcome, _outcome_from_dict

__all__ = [
    "ComfyWireError",
    "InvalidArgument",
    "ValidationError",
    "ExecutionError",
    "PromptInterrupted",
    "PromptLost",
    "DeadlineExceeded",
    "WaitTimeout",
    "ConnectionFailed",
    "HttpError",
    "ClientClosed",
]


class ComfyWireError(Exception):
    """Base of every comfywire error.

    ``code`` is the stable number shared with the C, Swift and Kotlin
    bindings and ``code_name`` its snake_case name; ``detail`` holds
    structured details where there are some, and ``outcome`` the prompt's
    record for failed, interrupted and lost prompts.
    """

    code: int
    code_name: str
    message: str
    detail: Optional[Dict[str, Any]]
    outcome: Optional[Outcome]

    def __init__(
        self,
        message: str,
        *,
        code: int = 0,
        code_name: str = "",
        detail: Optional[Dict[str, Any]] = None,
        outcome: Optional[Outcome] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.code_name = code_name
        self.detail = detail
        self.outcome = outcome


class InvalidArgument(ComfyWireError, ValueError):
    """A value given to comfywire is unusable: a bad URL or setting, an
    unknown event kind, a workflow that is not a JSON object, text that is
    not JSON, an empty file name. (A value of the wrong type raises
    ``TypeError``.) ``code_name`` is ``invalid_argument`` or ``config``."""


class ValidationError(ComfyWireError):
    """The server refused the prompt. ``node_errors`` lists each failing
    node as a dict (``node_id``, ``class_type``, ``type``, ``message``,
    ``details``, ``extra_info``)."""

    @property
    def node_errors(self) -> List[Dict[str, Any]]:
        return list((self.detail or {}).get("node_errors") or [])


class ExecutionError(ComfyWireError):
    """A node raised while the prompt ran."""

    @property
    def _error(self) -> Dict[str, Any]:
        if self.outcome is not None and self.outcome.error is not None:
            return self.outcome.error.__dict__
        return {}

    @property
    def node_id(self) -> Optional[str]:
        return self._error.get("node_id")

    @property
    def node_type(self) -> Optional[str]:
        return self._error.get("node_type")

    @property
    def exception_type(self) -> str:
        return str(self._error.get("exception_type", ""))

    @property
    def exception_message(self) -> str:
        return str(self._error.get("exception_message", ""))

    @property
    def traceback(self) -> List[str]:
        return list(self._error.get("traceback") or [])


class PromptInterrupted(ComfyWireError):
    """The prompt was interrupted."""


class PromptLost(ComfyWireError):
    """The server no longer knows the prompt (restart, queue cleared)."""

    @property
    def reason(self) -> str:
        if self.detail and "reason" in self.detail:
            return str(self.detail["reason"])
        if self.outcome is not None and self.outcome.lost_reason:
            return self.outcome.lost_reason
        return ""


class DeadlineExceeded(ComfyWireError, TimeoutError):
    """A deadline of ``run`` expired: ``deadline`` is ``"queue"``,
    ``"stall"`` or ``"total"``."""

    @property
    def deadline(self) -> str:
        return str((self.detail or {}).get("deadline", ""))


class WaitTimeout(ComfyWireError, TimeoutError):
    """A blocking call's own ``timeout`` ran out; the prompt goes on."""


class ConnectionFailed(ComfyWireError, ConnectionError):
    """A request got no answer (server down, network)."""


class HttpError(ComfyWireError):
    """The server answered an unexpected HTTP status."""

    @property
    def status(self) -> Optional[int]:
        return (self.detail or {}).get("status")


class ResponseTooLarge(ComfyWireError):
    """An answer was larger than its limit; `detail` has `limit` (bytes) and
    `setting` (the settings key that raises it)."""


class EventsOverflow(ComfyWireError):
    """Events nobody read passed the stream's bound and it stopped; `detail`
    has `held` and `limit` (bytes). Reading again goes on from now."""


class ClientClosed(ComfyWireError):
    """The client is closed."""


_BY_CODE = {
    1: InvalidArgument,
    2: InvalidArgument,
    3: ConnectionFailed,
    4: HttpError,
    6: ResponseTooLarge,
    7: EventsOverflow,
    10: ValidationError,
    11: ExecutionError,
    12: PromptInterrupted,
    13: PromptLost,
    14: DeadlineExceeded,
    15: WaitTimeout,
    20: ClientClosed,
}


def _from_native(
    code: int,
    code_name: str,
    message: str,
    detail: Optional[Dict[str, Any]],
    outcome: Optional[Dict[str, Any]],
) -> ComfyWireError:
    cls = _BY_CODE.get(code, ComfyWireError)
    made = None if outcome is None else _outcome_from_dict(outcome)
    return cls(message, code=code, code_name=code_name, detail=detail, outcome=made)
