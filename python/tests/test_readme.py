"""The README's Python examples, copied as they stand into a script, run to
the end against the mock (the script starts its own)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Use it from Python") :]
    section = section[: section.index("\n## ", 1)]
    return "\n".join(re.findall(r"```python\n(.*?)```", section, re.S))


@pytest.mark.skipif(not README.exists(), reason="run from a source checkout")
def test_the_readme_python_example_runs_to_the_end(tmp_path: Path) -> None:
    script = tmp_path / "readme_example.py"
    script.write_text(python_blocks(), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines.count("Finished") == 2, done.stdout  # the sync and the asyncio job streams
    assert list((tmp_path / "outputs").iterdir()), "the run's files were downloaded"
