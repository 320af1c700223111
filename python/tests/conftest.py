"""Every test runs against the in-process Rust mock replaying recorded
ComfyUI sessions; each gets a fresh mock on a free port."""

from __future__ import annotations

from typing import Iterator

import pytest

import comfywire
from comfywire.testing import MockServer


@pytest.fixture
def mock() -> Iterator[MockServer]:
    # 20x recorded speed: long enough runs to act mid-run, short tests.
    with MockServer(speed=20.0) as server:
        yield server


@pytest.fixture
def client(mock: MockServer) -> Iterator[comfywire.Client]:
    with comfywire.Client(mock.url, request_timeout=10) as c:
        c.wait_connected(10)
        yield c
