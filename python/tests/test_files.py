"""Uploads and downloads end to end, each checked against what the server
itself serves from ``/view`` (read with urllib, sharing no code with the
client)."""

from __future__ import annotations

import asyncio
import urllib.parse
import urllib.request
from pathlib import Path
from typing import List, Tuple

import pytest

import comfywire
from comfywire.testing import MockServer

# Bytes a multipart encoder could get wrong: every byte value, CR LF and
# something that looks like a boundary.
AWKWARD = bytes(range(256)) * 8 + b"\r\n--comfywire\r\n\r\n" + b"\x00" * 16


def served(mock: MockServer, file: comfywire.FileRef) -> bytes:
    """The server's own ``/view`` of a file (never through a proxy)."""
    query = urllib.parse.urlencode({"filename": file.filename, "subfolder": file.subfolder, "type": file.type})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{mock.url}/view?{query}", timeout=10) as answer:
        return bytes(answer.read())


def test_an_upload_is_what_the_server_serves(client: comfywire.Client, mock: MockServer, tmp_path: Path) -> None:
    stored = client.upload_image(AWKWARD, "in.png", subfolder="tests")
    assert stored == comfywire.FileRef("in.png", "tests", "input")
    assert served(mock, stored) == AWKWARD
    assert client.read(stored) == AWKWARD

    # From a path; other bytes under a taken name are stored under another.
    path = tmp_path / "in.png"
    path.write_bytes(b"other bytes")
    renamed = client.upload_image(path, subfolder="tests")
    assert renamed.subfolder == "tests" and renamed.filename != "in.png"
    assert served(mock, renamed) == b"other bytes"
    assert served(mock, stored) == AWKWARD, "the first upload is untouched"

    # `overwrite` replaces; `type` picks the folder.
    replaced = client.upload_image(b"third", "in.png", subfolder="tests", overwrite=True)
    assert replaced == stored and served(mock, stored) == b"third"
    temp = client.upload_image(b"temporary", "t.png", type="temp")
    assert temp == comfywire.FileRef("t.png", "", "temp")
    assert served(mock, temp) == b"temporary"
    with pytest.raises(ValueError):
        client.upload_image(b"no name")


def test_downloads_are_the_servers_files(client: comfywire.Client, mock: MockServer, tmp_path: Path) -> None:
    result = client.run(mock.sample_workflow(), timeout=30)
    assert result.files, "the sample workflow saves an image"
    target = tmp_path / "made" / "here"
    paths = result.download(target)
    assert [p.name for p in paths] == [f.filename for f in result.files]
    for path, file in zip(paths, result.files):
        assert path.parent == target
        assert path.read_bytes() == served(mock, file)
        assert result.read(file) == served(mock, file)
    # A job attached by id downloads the same files.
    again = client.job(result.prompt_id).wait(timeout=10).download(tmp_path / "again")
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]


def test_async_upload_and_download(mock: MockServer, tmp_path: Path) -> None:
    async def main() -> Tuple[comfywire.FileRef, bytes, comfywire.RunResult, List[Path]]:
        async with comfywire.AsyncClient(mock.url) as client:
            await client.wait_connected(10)
            stored = await client.upload_image(AWKWARD, "async.png")
            read = await client.read(stored)
            result = await client.run(mock.sample_workflow(), timeout=30)
            paths = await client.download(result, tmp_path)
            unknown = comfywire.Outcome("nobody", "succeeded", {}, (), ())
            with pytest.raises(comfywire.ComfyWireError) as info:
                await client.download(unknown, tmp_path / "never")
            assert info.value.code_name == "invalid_argument"
            return stored, read, result, paths

    stored, read, result, paths = asyncio.run(main())
    assert stored == comfywire.FileRef("async.png", "", "input")
    assert read == AWKWARD == served(mock, stored)
    assert [p.read_bytes() for p in paths] == [served(mock, f) for f in result.files]
    assert not (tmp_path / "never").exists()
