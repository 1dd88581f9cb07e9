"""What every benchmark stamps on its results: the commit it measured."""

from __future__ import annotations

import subprocess
from pathlib import Path


def commit() -> str:
    """The short hash of HEAD, or 'unknown' outside a git checkout (e.g. an sdist)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
