"""Where xdomain keeps cached artefacts (rendered data, trained judges, pretrained f)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """`$XDOMAIN_CACHE` or `$XDG_CACHE_HOME/xdomain` or `~/.cache/xdomain`, created on demand."""
    root = os.environ.get("XDOMAIN_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(xdg) / "xdomain")
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
