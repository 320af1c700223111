"""The blocking client and what it hands out: jobs, subscriptions, results."""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import warnings
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from . import _native
from ._settings import PathLike, settings_json
from ._types import ConnectionStatus, FileRef, Outcome, QueueSnapshot, _outcome_fields, _outcome_from_dict

__all__ = ["Client", "Job", "Subscription", "RunResult", "Workflow", "KindSpec"]

#: An API-format workflow: a dict (node id -> node) or its JSON text.
Workflow = Union[Mapping[str, Any], str]
#: What ``on`` accepts: a kind name, an event class, several, or ``None``
#: (every kind).
KindSpec = Union[None, str, type, Iterable[Union[str, type]]]

_LOG = logging.getLogger("comfywire")

# Native clients still open, closed at interpreter exit so their threads
# stop before Python does. Weak: this must not keep any client alive.
_OPEN: "weakref.WeakSet[_native.Client]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for native in list(_OPEN):
        try:
            native.close()
        except Exception:
            pass


def _kinds(spec: KindSpec) -> Optional[List[str]]:
    if spec is None or spec == "*":
        return None
    if isinstance(spec, (str, type)):
        spec = [spec]
    out = []
    for k in spec:
        out.append(k if isinstance(k, str) else str(getattr(k, "kind")))
    return out


@dataclass(frozen=True)
class RunResult(Outcome):
    """The outcome of a successful run, with helpers to fetch its files."""

    #: The outputs the server skipped at submission because their branch
    #: was invalid (a partially valid workflow): its ``node_errors`` by node
    #: id, empty when every output ran. A non-empty one is also reported
    #: with ``warnings.warn``.
    skipped_outputs: Dict[str, Any] = field(default_factory=dict, repr=False)
    _jobs: Any = field(default=None, repr=False, compare=False)

    def download(self, dir: PathLike) -> List[Path]:
        """Downloads every output file into ``dir``; returns the paths."""
        paths = self._jobs.download_outputs(self.prompt_id, os.fspath(dir))
        return [Path(p) for p in paths]

    def read(self, file: FileRef) -> bytes:
        """The bytes of one file (one of ``files``)."""
        return bytes(self._jobs.view(*_file(file)))


def _file(file: FileRef) -> Tuple[str, str, str]:
    return (file.filename, file.subfolder, file.type)


def _result(jobs: Any, outcome: Dict[str, Any]) -> RunResult:
    skipped = dict(outcome.get("skipped_outputs") or {})
    if skipped:
        warnings.warn(
            f"prompt {outcome.get('prompt_id')}: the server skipped the outputs of invalid branches "
            f"(nodes {', '.join(sorted(skipped))}); see RunResult.skipped_outputs",
            UserWarning,
            stacklevel=3,
        )
    return RunResult(**_outcome_fields(outcome), skipped_outputs=skipped, _jobs=jobs)


class _Callbacks(dict):  # type: ignore[type-arg]
    """A client's callables by key. The native client holds only a weak
    reference to this dict, so the garbage collector sees every callable
    here (a callback that refers back to its client is collectable), and
    removing a key releases the callable at once."""

    def _failed(self, kind: str, exc: BaseException) -> str:
        """Logs a callback's exception; answers its text for the
        ``CallbackError`` report. Called on the dispatcher thread."""
        _LOG.error("a comfywire callback for %r events raised; the client goes on", kind, exc_info=exc)
        return f"{type(exc).__name__}: {exc}"


class Subscription:
    """A registered callback; ``cancel()`` (or leaving a ``with`` block)
    unregisters it and releases the callable. It stays registered while
    this object is merely dropped."""

    __slots__ = ("_native", "_callbacks", "_key", "_id", "__weakref__")

    def __init__(self, native: Any, callbacks: _Callbacks, key: int, id: int) -> None:
        self._native = native
        self._callbacks = callbacks
        self._key = key
        self._id = id

    def cancel(self) -> bool:
        """Unregisters now; True if it was still registered. No call of the
        callback starts after this returns: a call running on the
        dispatcher thread is waited for, unless ``cancel`` is called from
        a callback (that call is the caller's own, and ends after it)."""
        released = self._callbacks.pop(self._key, None) is not None
        self._native.unsubscribe(self._id)
        return released

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()

    def __repr__(self) -> str:
        return f"Subscription(key={self._key})"


class Job:
    """A submitted prompt."""

    def __init__(self, jobs: Any, prompt_id: str, number: Optional[int]) -> None:
        self._jobs = jobs
        self.prompt_id = prompt_id
        self.number = number

    def _record(self) -> Dict[str, Any]:
        found = self._jobs.execution(self.prompt_id)
        return {} if found is None else dict(found)

    @property
    def state(self) -> str:
        """``submitted``, ``queued``, ``running``, ``succeeded``, ``failed``,
        ``interrupted`` or ``lost``."""
        return str(self._record().get("status", "submitted"))

    @property
    def progress(self) -> float:
        """Whole-prompt progress in [0, 1]."""
        return float(self._record().get("progress", 0.0))

    @property
    def outputs(self) -> Dict[str, Any]:
        """Outputs received so far, by node id."""
        return dict(self._record().get("outputs") or {})

    def wait(self, timeout: Optional[float] = None) -> RunResult:
        """Waits for success; raises the prompt's error, or ``WaitTimeout``
        after ``timeout`` seconds (the prompt goes on)."""
        return _result(self._jobs, self._jobs.wait(self.prompt_id, timeout))

    def events(self) -> "_native.EventStream":
        """An iterator over this prompt's events from its submission on,
        however late it is made: what already happened is replayed from the
        client's record of the prompt (queued, started, cached nodes,
        outputs, the end; not the progress and previews before it was
        made), then live events follow; it ends after the
        prompt's ``Finished`` (or when the client closes), so a loop over it
        always ends. ``stream.next(timeout)`` waits at most ``timeout``
        seconds."""
        return self._jobs.job_events(self.prompt_id)

    def cancel(self) -> str:
        """Removes the prompt from the server: deletes it while it waits in
        the queue, interrupts it while it runs. Answers ``"deleted"``,
        ``"interrupted"`` or ``"not_active"`` (it had ended, or the server
        does not know it)."""
        return str(self._jobs.cancel(self.prompt_id))

    def interrupt(self) -> bool:
        """Stops the prompt, as ``cancel()``: interrupted if it is running,
        deleted from the queue if it is still waiting there. True if it was
        stopped either way."""
        return self.cancel() != "not_active"

    def __repr__(self) -> str:
        return f"Job(prompt_id={self.prompt_id!r})"


class _Base:
    """Construction and the calls that never wait, shared by both clients.

    Every option is optional; each one not given comes from the
    ``COMFYWIRE_*`` environment, then the settings file (``config_file=``,
    else the user's default settings file), then the built-in default.
    Durations are in seconds, as floats.

    - ``url``: the server, ``http(s)://host:port`` (default
      ``http://127.0.0.1:8188``); a bad URL raises ``InvalidArgument``.
    - ``client_id``: the socket's ``clientId`` (default: a fresh UUID).
    - ``token``: a bearer token; ``basic_auth``: ``(user, password)``;
      ``query_token``: a token sent as ``?token=``; ``headers``: extra HTTP
      headers.
    - ``connect_timeout``: seconds to open the socket or a connection;
      ``request_timeout``: seconds for one HTTP request.
    - ``backoff_initial``, ``backoff_max``: seconds between reconnects
      (doubling from the first to the most); ``backoff_jitter``: the random
      share of each wait, 0 to 1.
    - ``polling_after_failures``: failed connects before following prompts
      by polling HTTP.
    - ``ping_interval``: seconds between pings; ``deaf_timeout``: seconds
      without any frame before the socket is deemed dead.
    - ``progress_interval``, ``preview_interval``: the least seconds
      between two progress or preview events of a node (faster ones are
      coalesced); ``progress_interval_ms`` and ``preview_interval_ms`` are
      the same in milliseconds, kept for compatibility.
    - ``history_capacity``: finished executions kept in memory.
    - ``queue_timeout``, ``stall_timeout``, ``timeout``: the default
      deadlines of ``run`` in seconds (before it starts; without any event
      while it runs; the whole run).
    - ``config_file``: a settings file to read instead of the default one.
    - ``journal``: a file where in-flight prompts are recorded, so a new
      process resumes them (``resumed``).
    """

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        client_id: Optional[str] = None,
        token: Optional[str] = None,
        basic_auth: Optional[Tuple[str, str]] = None,
        query_token: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        connect_timeout: Optional[float] = None,
        request_timeout: Optional[float] = None,
        backoff_initial: Optional[float] = None,
        backoff_max: Optional[float] = None,
        backoff_jitter: Optional[float] = None,
        polling_after_failures: Optional[int] = None,
        ping_interval: Optional[float] = None,
        deaf_timeout: Optional[float] = None,
        progress_interval: Optional[float] = None,
        preview_interval: Optional[float] = None,
        progress_interval_ms: Optional[int] = None,
        preview_interval_ms: Optional[int] = None,
        history_capacity: Optional[int] = None,
        queue_timeout: Optional[float] = None,
        stall_timeout: Optional[float] = None,
        timeout: Optional[float] = None,
        config_file: Optional[PathLike] = None,
        journal: Optional[PathLike] = None,
    ) -> None:
        if progress_interval is not None:
            progress_interval_ms = round(progress_interval * 1000)
        if preview_interval is not None:
            preview_interval_ms = round(preview_interval * 1000)
        options = dict(
            journal=None if journal is None else os.fspath(journal),
            url=url,
            client_id=client_id,
            token=token,
            query_token=query_token,
            connect_timeout=connect_timeout,
            request_timeout=request_timeout,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            backoff_jitter=backoff_jitter,
            polling_after_failures=polling_after_failures,
            ping_interval=ping_interval,
            deaf_timeout=deaf_timeout,
            progress_interval_ms=progress_interval_ms,
            preview_interval_ms=preview_interval_ms,
            history_capacity=history_capacity,
            queue_timeout=queue_timeout,
            stall_timeout=stall_timeout,
            timeout=timeout,
        )
        self._closed = False
        self._callbacks = _Callbacks()
        self._keys = itertools.count(1)
        self._native = _native.Client(
            settings_json(basic_auth, headers, options),
            None if config_file is None else os.fspath(config_file),
        )
        self._jobs = self._native.jobs()
        _OPEN.add(self._native)

    @property
    def client_id(self) -> str:
        return str(self._native.client_id)

    @property
    def status(self) -> ConnectionStatus:
        """The connection state now."""
        s = self._native.status()
        return ConnectionStatus(s["state"], s["attempt"], s["next_retry_ms"], s["last_error"])

    def stats(self) -> Dict[str, int]:
        """Counters: frames, events, reconnects, coalesced, callbacks, ..."""
        stats = dict(self._native.stats())
        stats["callbacks"] = len(self._callbacks)
        return stats

    def on(
        self,
        kind: KindSpec,
        callback: Callable[[Any], object],
        *,
        prompt_id: Optional[str] = None,
    ) -> Subscription:
        """Calls ``callback(event)`` for events of ``kind`` (a name such as
        ``"progress"``, an event class, several, or ``None`` for all),
        optionally of one prompt. Callbacks run in order on the client's
        dispatcher thread; one that raises is logged on the ``comfywire``
        logger and reported as a ``CallbackError`` event."""
        if not callable(callback):
            raise TypeError("callback must be callable")
        key = next(self._keys)
        self._callbacks[key] = callback
        try:
            id = self._native.subscribe(_kinds(kind), prompt_id, self._callbacks, key)
        except BaseException:
            del self._callbacks[key]
            raise
        return Subscription(self._native, self._callbacks, key, id)

    def on_state_change(self, callback: Callable[[Any], object]) -> Subscription:
        """Calls ``callback(event)`` with each ``ConnectionChanged``."""
        return self.on("connection", callback)

    def pause(self) -> None:
        """Disconnects and stops retrying (app in the background)."""
        self._jobs.pause()

    def resume(self) -> None:
        """Reconnects now."""
        self._jobs.resume()

    def network_changed(self) -> None:
        """The network changed: check or reconnect now."""
        self._jobs.network_changed()

    def retry_now(self) -> None:
        """Skips the backoff wait."""
        self._jobs.retry_now()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client_id={self.client_id!r}, state={self.status.state!r})"


# ``help(Client)`` and ``help(Client.__init__)`` both show every option.
_Base.__init__.__doc__ = _Base.__doc__


def _workflow(workflow: Workflow) -> Workflow:
    """``workflow`` if it is of a workflow's type (a mapping, or JSON text);
    ``TypeError`` otherwise (a bad value of the right type raises
    ``InvalidArgument`` in the core)."""
    if not isinstance(workflow, (Mapping, str)):
        raise TypeError(f"a workflow is a dict of nodes or its JSON text, not {type(workflow).__name__}")
    return workflow


def _closed_at_del(client: "_Base") -> None:
    """Closes a client dropped without ``close()`` (its threads stop) and
    says so with a ``ResourceWarning``, as an unclosed file does."""
    native = getattr(client, "_native", None)
    if native is None:
        return
    if not getattr(client, "_closed", True):
        warnings.warn(f"unclosed comfywire client {client.client_id}", ResourceWarning, source=client)
    try:
        native.close()
    except Exception:
        pass


def _upload_args(image: Union[bytes, PathLike], filename: Optional[str]) -> Tuple[str, bytes]:
    if isinstance(image, (bytes, bytearray, memoryview)):
        if not filename:
            raise ValueError("filename is required when uploading bytes")
        return filename, bytes(image)
    path = Path(os.fspath(image))
    return filename or path.name, path.read_bytes()


def _ids(prompt_ids: Union[str, Iterable[str]]) -> List[str]:
    return [prompt_ids] if isinstance(prompt_ids, str) else list(prompt_ids)


class Client(_Base):
    """A blocking ComfyUI client. Connects in the background; every call
    that waits releases the GIL and can be stopped with Ctrl-C."""

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        _closed_at_del(self)

    def close(self) -> None:
        """Closes the socket and releases every callback. Idempotent. Waits
        for a callback running on the dispatcher thread to return; called
        from a callback (or ``__del__`` there), it returns at once and the
        close completes after that callback returns."""
        self._closed = True
        self._native.close()
        self._callbacks.clear()

    def wait_connected(self, timeout: float = 10.0) -> None:
        """Waits until the socket is connected."""
        self._jobs.wait_connected(timeout)

    def events(self) -> "_native.EventStream":
        """An iterator over every event of the client from the moment it is
        made (events before that are not replayed: to follow one prompt
        without missing any, use ``Job.events()``); it ends when the client
        closes. ``stream.next(timeout)`` waits at most ``timeout`` seconds
        and answers ``None`` when nothing came."""
        return self._native.events()

    def submit(self, workflow: Workflow) -> Job:
        """Queues a workflow; answers at once with its ``Job``."""
        prompt_id, number, _partial = self._jobs.submit(_workflow(workflow))
        return Job(self._jobs, prompt_id, number)

    def run(
        self,
        workflow: Workflow,
        *,
        timeout: Optional[float] = None,
        stall_timeout: Optional[float] = None,
        queue_timeout: Optional[float] = None,
        detach: bool = False,
    ) -> RunResult:
        """Submits and waits for success. Deadlines in seconds (floats):
        ``timeout`` for the whole run, ``stall_timeout`` without any event
        while it runs, ``queue_timeout`` before it starts (``None``: the
        client's default). Raises ``ValidationError``, ``ExecutionError``,
        ``PromptInterrupted``, ``PromptLost`` or ``DeadlineExceeded``.

        The run owns its prompt: stopped by Ctrl-C (``KeyboardInterrupt``),
        out of time (``DeadlineExceeded``) or by ``close()`` from another
        thread (``ClientClosed``), it removes the prompt from
        the server (deleted while queued, interrupted while running), as
        ``Job.cancel()`` does; ``detach=True`` leaves it there instead."""
        return _result(self._jobs, self._jobs.run(_workflow(workflow), timeout, stall_timeout, queue_timeout, detach))

    def wait(self, prompt_id: str, timeout: Optional[float] = None) -> RunResult:
        """Waits for a submitted prompt, as ``Job.wait``."""
        return Job(self._jobs, prompt_id, None).wait(timeout)

    def job(self, prompt_id: str) -> Job:
        """The ``Job`` of any prompt id: one submitted here, or elsewhere
        (another process, another client id; it is attached and followed
        through the server's queue and history)."""
        return Job(self._jobs, prompt_id, None)

    @property
    def resumed(self) -> List[Job]:
        """The jobs re-attached from the journal at start: the prompts
        a previous process with the same ``journal=`` had in flight."""
        return [Job(self._jobs, prompt_id, None) for prompt_id in self._native.resumed()]

    def interrupt(self, prompt_id: str) -> bool:
        """Interrupts the prompt only if it is the one running."""
        return bool(self._jobs.interrupt(prompt_id))

    def queue(self) -> QueueSnapshot:
        """The server's queue."""
        running, pending = self._jobs.queue()
        return QueueSnapshot(tuple(running), tuple(pending))

    def delete(self, prompt_ids: Union[str, Iterable[str]]) -> None:
        """Deletes pending prompts."""
        self._jobs.delete(_ids(prompt_ids))

    def clear_queue(self) -> None:
        """Deletes every pending prompt."""
        self._jobs.clear_queue()

    def history(self) -> List[Outcome]:
        """Finished executions kept in memory (``history_capacity``),
        oldest first."""
        return [_outcome_from_dict(d) for d in self._jobs.history()]

    def server_history(self, prompt_id: str) -> Optional[Dict[str, Any]]:
        """The server's ``/history`` entry of a prompt."""
        entry = self._jobs.server_history(prompt_id)
        return None if entry is None else dict(entry)

    def system_stats(self) -> Dict[str, Any]:
        """``GET /system_stats``."""
        return dict(self._jobs.system_stats())

    def read(self, file: FileRef) -> bytes:
        """Downloads one file from ``/view``."""
        return bytes(self._jobs.view(*_file(file)))

    def upload_image(
        self,
        image: Union[bytes, PathLike],
        filename: Optional[str] = None,
        *,
        subfolder: Optional[str] = None,
        type: Optional[str] = None,
        overwrite: bool = False,
    ) -> FileRef:
        """Uploads an image (bytes with a ``filename``, or a path); answers
        where the server stored it."""
        name, data = _upload_args(image, filename)
        f, s, t = self._jobs.upload(name, data, subfolder, type, overwrite)
        return FileRef(f, s, t)

