"""Where settings come from, the same in every front end: an explicit
argument beats the ``COMFYWIRE_*`` environment, which beats the settings
file, which beats the default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import comfywire
from comfywire.testing import MockServer

NOTHING_LISTENS = "http://127.0.0.1:9"


def test_explicit_beats_environment_beats_file(
    mock: MockServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"url": NOTHING_LISTENS}))
    monkeypatch.setenv("COMFYWIRE_URL", NOTHING_LISTENS)
    # The url the app names wins over both.
    with comfywire.Client(mock.url, config_file=settings, connect_timeout=2) as c:
        c.wait_connected(10)
    # Without one, the environment beats the file.
    monkeypatch.setenv("COMFYWIRE_URL", mock.url)
    with comfywire.Client(config_file=settings, connect_timeout=2) as c:
        c.wait_connected(10)
    # And the file beats the default.
    monkeypatch.delenv("COMFYWIRE_URL")
    settings.write_text(json.dumps({"url": mock.url}))
    with comfywire.Client(config_file=settings, connect_timeout=2) as c:
        c.wait_connected(10)
