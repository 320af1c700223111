"""Any prompt can be waited on, and an app killed mid-run and started again
with its journal gets the one outcome of every prompt it had in flight;
checked against the server's own history."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import comfywire
from comfywire.testing import MockServer


def test_a_prompt_of_another_client_is_attached_and_waited_on(
    mock: MockServer, client: comfywire.Client
) -> None:
    with comfywire.Client(mock.url) as other:
        other.wait_connected(10)
        theirs = other.submit(mock.sample_workflow())
        result = client.job(theirs.prompt_id).wait(30)
        assert result.prompt_id == theirs.prompt_id
        assert client.server_history(theirs.prompt_id)["outputs"] == result.outputs
    # An id the server never had ends as lost, not as a wait for ever.
    try:
        client.job("never-submitted").wait(30)
    except comfywire.PromptLost:
        pass
    else:
        raise AssertionError("an unknown id must end as PromptLost")


def test_a_killed_app_resumes_its_prompts_from_the_journal(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    with MockServer(speed=1.0) as mock:
        workflow = mock.workflow("long_run")
        child = textwrap.dedent(
            f"""
            import json, os, signal, sys
            import comfywire
            client = comfywire.Client({mock.url!r}, journal={str(journal)!r})
            client.wait_connected(10)
            ids = [client.submit(json.loads(sys.argv[1])).prompt_id for _ in range(2)]
            print(json.dumps(ids), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
            """
        )
        run = subprocess.run(
            [sys.executable, "-c", child, json.dumps(workflow)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == -9, run.stderr
        submitted = json.loads(run.stdout.splitlines()[0])
        with comfywire.Client(mock.url, journal=journal) as client:
            resumed = {job.prompt_id: job for job in client.resumed}
            assert sorted(resumed) == sorted(submitted)
            for prompt_id in submitted:
                result = resumed[prompt_id].wait(60)
                assert client.server_history(prompt_id)["outputs"] == result.outputs
        # Both delivered: a second restart has nothing left to resume.
        with comfywire.Client(mock.url, journal=journal) as again:
            assert again.resumed == []
