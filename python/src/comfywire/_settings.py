"""Keyword options to the settings JSON the native client is built from (the
same format as the settings file the CLI uses)."""

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
}

PathLike = Union[str, "os.PathLike[str]"]


def settings_json(
    config_file: Optional[PathLike],
    basic_auth: Optional[Tuple[str, str]],
    headers: Optional[Mapping[str, str]],
    options: Dict[str, Any],
) -> str:
    """The settings file (if any) with the given keywords laid over it."""
    settings: Dict[str, Any] = {}
    if config_file is not None:
        with open(config_file, encoding="utf-8") as f:
            loaded = json.load(f)
        if not isinstance(loaded, dict):
            raise ValueError(f"{os.fspath(config_file)}: settings must be a JSON object")
        settings.update(loaded)
    for name, value in options.items():
        if value is not None:
            settings[_KEYS[name]] = value
    if basic_auth is not None:
        username, password = basic_auth
        settings["basic_auth"] = {"username": username, "password": password}
    if headers:
        merged = dict(settings.get("headers") or {})
        merged.update(headers)
        settings["headers"] = merged
    return json.dumps(settings)
