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


def test_the_default_settings_file_is_read_without_config_file(
    mock: MockServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CLI's file (`COMFYWIRE_CONFIG`, else
    # `$XDG_CONFIG_HOME/comfywire/config.json`) is the libraries' too.
    monkeypatch.delenv("COMFYWIRE_URL", raising=False)
    monkeypatch.delenv("COMFYWIRE_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "comfywire").mkdir()
    (tmp_path / "comfywire" / "config.json").write_text(json.dumps({"url": mock.url}))
    with comfywire.Client(connect_timeout=2) as c:
        c.wait_connected(10)
    # An explicit argument and the environment still beat it.
    monkeypatch.setenv("COMFYWIRE_URL", NOTHING_LISTENS)
    with comfywire.Client(mock.url, connect_timeout=2) as c:
        c.wait_connected(10)
    with comfywire.Client(connect_timeout=2) as c:
        with pytest.raises(comfywire.ComfyWireError):
            c.wait_connected(0.5)
