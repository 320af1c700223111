"""The committed stub of the native module matches the built module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_stubtest_finds_no_drift() -> None:
    here = Path(__file__).parent
    # The common allowlist, and the one of this Python version if any.
    names = ["stubtest-allowlist.txt", "stubtest-allowlist-%d.%d.txt" % sys.version_info[:2]]
    allowlists = [arg for name in names if (here / name).exists() for arg in ("--allowlist", str(here / name))]
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "comfywire", "--ignore-missing-stub", *allowlists],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
