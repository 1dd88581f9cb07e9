"""Fixtures shared by several test files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

EXTRA_ROOT = Path("/usr/local/share/fonts")


@pytest.fixture
def install_extra_font():
    """A function that installs a real font file that is not in the manifest (as root) under
    /usr/local/share/fonts, which `digits-printed-system` searches; removed after the test."""
    from xdomain.data import fonts as fonts_mod

    pinned = {Path(e.path).name for e in fonts_mod.manifest_entries()}
    # a plain text face (a symbol or hairline font would be vetted out of the system set too)
    candidates = sorted(Path("/usr/share").rglob("*regular.otf")) + sorted(
        Path("/usr/share").rglob("*Regular.ttf")
    )
    source = next((p for p in candidates if p.name not in pinned), None)
    if source is None:
        pytest.skip("no font file outside the manifest to install")
    target_dir = EXTRA_ROOT / "xdomain-test-extra"
    created_root = not EXTRA_ROOT.exists()

    def install() -> None:
        try:
            target_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target_dir / f"zz-extra-{source.name}")
        except OSError as e:
            pytest.skip(f"cannot install a font under {EXTRA_ROOT} ({e.strerror}); needs root")

    yield install
    shutil.rmtree(target_dir, ignore_errors=True)
    if created_root:
        shutil.rmtree(EXTRA_ROOT, ignore_errors=True)
