"""Keyword options to the settings JSON the native client is built from (the
same format as the settings file the CLI uses). Precedence: explicit keyword
> ``COMFYWIRE_*`` environment > settings file > default."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Mapping, Optional, Tuple, Union

# keyword -> settings-file key
_KEYS = {
    "url": "url",
    "client_id": "client_id",
    "token": "token",
    "query_token": "query_token",
    "connect_timeout": "connect_timeout_s",
    "request_timeout": "request_timeout_s",
    "backoff_initial": "backoff_initial_s",
    "backoff_max": "backoff_max_s",
    "backoff_jitter": "backoff_jitter",
    "polling_after_failures": "polling_after_failures",
    "ping_interval": "ping_interval_s",
    "deaf_timeout": "deaf_timeout_s",
    "progress_interval_ms": "progress_interval_ms",
    "preview_interval_ms": "preview_interval_ms",
    "history_capacity": "history_capacity",
    "queue_timeout": "queue_timeout_s",
    "stall_timeout": "stall_timeout_s",
    "timeout": "timeout_s",
    "journal": "journal",
}

PathLike = Union[str, "os.PathLike[str]"]


def settings_json(
    basic_auth: Optional[Tuple[str, str]],
    headers: Optional[Mapping[str, str]],
    options: Dict[str, Any],
) -> str:
    """The keywords given, as settings JSON: the explicit layer, which beats
    the ``COMFYWIRE_*`` environment, which beats the settings file (the
    native side applies that order, the same in every front end)."""
    settings: Dict[str, Any] = {}
    for name, value in options.items():
        if value is not None:
            settings[_KEYS[name]] = value
    if basic_auth is not None:
        username, password = basic_auth
        settings["basic_auth"] = {"username": username, "password": password}
    if headers:
        settings["headers"] = dict(headers)
    return json.dumps(settings)
