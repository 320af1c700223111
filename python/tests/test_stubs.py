"""The committed stub of the native module matches the built module."""

from __future__ import annotations

import subprocess
import sys


def test_stubtest_finds_no_drift() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "comfywire", "--ignore-missing-stub", "--allowlist", str(__import__("pathlib").Path(__file__).with_name("stubtest-allowlist.txt"))],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
