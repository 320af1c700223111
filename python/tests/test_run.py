"""run() and submit(): success with outputs, validation and execution errors."""

from __future__ import annotations

from pathlib import Path

import pytest

import comfywire
from comfywire.testing import MockServer


def test_success_has_outputs_timings_and_files(client: comfywire.Client, mock: MockServer, tmp_path: Path) -> None:
    result = client.run(mock.sample_workflow(), timeout=30)
    assert isinstance(result, comfywire.RunResult)
    assert result.status == "succeeded"
    assert result.outputs, "outputs"
    assert result.nodes and all(isinstance(n, comfywire.NodeTiming) for n in result.nodes)
    assert all(t >= 0 for t in result.timings.values())
    assert result.files, "the sample workflow saves an image"
    data = result.read(result.files[0])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    paths = result.download(tmp_path)
    assert [p.name for p in paths] == [f.filename for f in result.files]
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    assert client.server_history(result.prompt_id)["outputs"] == result.outputs
    assert [o.prompt_id for o in client.history()][-1] == result.prompt_id


def test_submit_and_wait_through_the_job(client: comfywire.Client, mock: MockServer) -> None:
    job = client.submit(mock.workflow("long_run"))
    assert job.state in {"submitted", "queued", "running"}
    result = job.wait(timeout=60)
    assert result.prompt_id == job.prompt_id
    assert job.state == "succeeded"
    assert job.progress == 1.0
    assert job.outputs == result.outputs


def test_wait_timeout_leaves_the_prompt_running(client: comfywire.Client, mock: MockServer) -> None:
    mock.set_speed(1.0)
    job = client.submit(mock.workflow("long_run"))
    with pytest.raises(comfywire.WaitTimeout) as info:
        job.wait(timeout=0.2)
    assert isinstance(info.value, TimeoutError)
    assert info.value.code == 15
    mock.set_speed(50.0)
    assert job.wait(timeout=60).status == "succeeded"


def test_validation_error_lists_node_errors(client: comfywire.Client, mock: MockServer) -> None:
    mock.inject("validation_error_next_prompt")
    with pytest.raises(comfywire.ValidationError) as info:
        client.run(mock.sample_workflow())
    err = info.value
    assert err.code == 10 and err.code_name == "validation"
    assert err.node_errors and all("node_id" in e for e in err.node_errors)


def test_execution_error_names_the_node(client: comfywire.Client, mock: MockServer) -> None:
    with pytest.raises(comfywire.ExecutionError) as info:
        client.run(mock.workflow("execution_error"), timeout=30)
    err = info.value
    assert err.code == 11
    assert err.node_id and err.exception_type and err.exception_message
    assert isinstance(err.traceback, list)
    assert err.outcome is not None and err.outcome.status == "failed"


def test_injected_failure_is_an_execution_error(client: comfywire.Client, mock: MockServer) -> None:
    mock.inject("fail_next_prompt")
    with pytest.raises(comfywire.ExecutionError):
        client.run(mock.sample_workflow(), timeout=30)


def test_queue_and_system_stats(client: comfywire.Client, mock: MockServer) -> None:
    q = client.queue()
    assert isinstance(q, comfywire.QueueSnapshot)
    assert isinstance(client.system_stats(), dict)
    client.clear_queue()
    client.delete([])


def test_upload_image(client: comfywire.Client) -> None:
    stored = client.upload_image(b"\x89PNG\r\n\x1a\nfake", "up.png", subfolder="tests")
    assert stored.filename == "up.png" and stored.subfolder == "tests"


def test_workflow_as_json_text(client: comfywire.Client, mock: MockServer) -> None:
    import json

    assert client.run(json.dumps(mock.sample_workflow()), timeout=30).status == "succeeded"


def test_bad_workflow_values_are_type_errors(client: comfywire.Client) -> None:
    with pytest.raises(TypeError):
        client.submit({"1": {"inputs": object()}})


def test_settings_file_and_status(mock: MockServer, tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text('{"url": "%s", "client_id": "from-file"}' % mock.url)
    with comfywire.Client(config_file=cfg, progress_interval_ms=0) as c:
        assert c.client_id == "from-file"
        c.wait_connected(10)
        assert c.status.state == "connected"
    assert c.status.state == "closed"
