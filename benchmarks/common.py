"""What every benchmark stamps on its results: the commit it measured and the machine."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

REPO = Path(__file__).parent.parent


def _git(*args: str) -> str:
    out = subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=REPO)
    return out.stdout.strip()


def commit() -> str:
    """The short hash of HEAD, or 'unknown' outside a git checkout (e.g. an sdist)."""
    try:
        return _git("rev-parse", "--short", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def dirty() -> bool | None:
    """Whether the checkout has uncommitted changes to tracked files (None outside git): then the
    code measured is HEAD plus those changes, not exactly `commit()`."""
    try:
        return bool(_git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return None


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """One line: CPU model, logical CPU count, OS and Python."""
    return (
        f"{cpu_name()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()},"
        f" Python {platform.python_version()}"
    )


def load1() -> float:
    """The 1-minute load average (other work running beside a timing slows it)."""
    return round(os.getloadavg()[0], 2)
